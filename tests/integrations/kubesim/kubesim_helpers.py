"""Helpers shared by the kubesim tests (kept out of conftest so they import by a unique name)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kubernetes.client.rest import ApiException

from tests.conftest import require_kubectl


def kubectl_path() -> str:
    return require_kubectl("the kubectl fidelity tests")


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
