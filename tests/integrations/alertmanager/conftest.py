"""A real Alertmanager (Debian's prometheus-alertmanager 0.25) on loopback, sending to our server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from integrations.testing.alertmanager import Alertmanager


@pytest.fixture
def alertmanager(tmp_path: Path, alertmanager_binary: str) -> Iterator[Callable[[str, str], Alertmanager]]:
    """`alertmanager(webhook_url, token)` starts one; stopped after the test."""
    started: list[Alertmanager] = []

    def start(webhook_url: str, token: str) -> Alertmanager:
        am = Alertmanager(tmp_path / f"am{len(started)}", webhook_url, token, binary=alertmanager_binary).start()
        started.append(am)
        return am

    yield start
    for am in started:
        am.stop()
