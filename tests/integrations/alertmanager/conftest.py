"""A real Alertmanager (Debian's prometheus-alertmanager 0.25) on loopback, sending to our server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from integrations.testing.alertmanager import BINARY, Alertmanager


def require_binary() -> str:
    """The binary, or: in CI a failure (the Makefile installs it, so absence is a broken setup), locally a skip."""
    if os.path.exists(BINARY) and os.access(BINARY, os.X_OK):
        return BINARY
    reason = (f"prometheus-alertmanager not found at {BINARY}: install it with "
              "`apt-get install -y prometheus-alertmanager` (Debian's Alertmanager 0.25)")
    if os.environ.get("CI"):
        pytest.fail(reason)
    print(f"SKIPPED: {reason}")
    pytest.skip(reason)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[[str, str], Alertmanager]]:
    """`alertmanager(webhook_url, token)` starts one; stopped after the test."""
    binary = require_binary()
    started: list[Alertmanager] = []

    def start(webhook_url: str, token: str) -> Alertmanager:
        am = Alertmanager(tmp_path / f"am{len(started)}", webhook_url, token, binary=binary).start()
        started.append(am)
        return am

    yield start
    for am in started:
        am.stop()
