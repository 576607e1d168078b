"""Helpers shared by the kubesim tests (kept out of conftest so they import by a unique name)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from kubernetes.client.rest import ApiException


def kubectl_path() -> str:
    """kubectl binary, or skip (fail under CI, where it must be installed)."""
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is required in CI but was not found on PATH")
        print("kubectl not found on PATH: skipping kubectl fidelity test")
        pytest.skip("kubectl not found on PATH")
    return path


def kubectl(
    kubeconfig: Path, *args: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [kubectl_path(), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def status_of(exc: ApiException) -> dict:
    """The Status object the server sent with an error."""
    return json.loads(exc.body)
