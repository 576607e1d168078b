"""A real Alertmanager (Debian's prometheus-alertmanager 0.25) on loopback, sending to our server."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Alertmanager:
    def __init__(self, binary: str, workdir: Path, webhook_url: str, token: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.webhook_url = webhook_url
        self.token = token
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "alertmanager.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        return {
            "route": {"receiver": "runbook", "group_by": ["alertname", "node"], "group_wait": "0s",
                      "group_interval": "1s", "repeat_interval": "5s"},
            "receivers": [{"name": "runbook", "webhook_configs": [{
                "url": self.webhook_url, "send_resolved": True,
                "http_config": {"authorization": {"type": "Bearer", "credentials": self.token}},
            }]}],
        }

    def start(self, timeout: float = 30.0) -> Alertmanager:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "alertmanager.yml"
        config.write_text(yaml.safe_dump(self.config()), encoding="utf-8")
        self.port = _free_port()
        log = self.log.open("wb")
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=info"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"alertmanager exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"alertmanager not ready after {timeout}s:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def fire(self, labels: dict[str, str], annotations: dict[str, str] | None = None) -> None:
        self._post(labels, annotations, ends=None)

    def resolve(self, labels: dict[str, str]) -> None:
        """Alertmanager resolves an alert whose endsAt has passed (as Prometheus does when it stops firing)."""
        self._post(labels, None, ends=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))

    def _post(self, labels: dict[str, str], annotations: dict[str, str] | None, ends: dt.datetime | None) -> None:
        alert: dict[str, Any] = {"labels": labels, "annotations": annotations or {},
                                 "generatorURL": "http://prometheus.test/graph"}
        if ends is not None:
            alert["startsAt"] = (ends - dt.timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
            alert["endsAt"] = ends.isoformat().replace("+00:00", "Z")
        response = httpx.post(f"{self.url}/api/v2/alerts", json=[alert], timeout=10)
        assert response.status_code == 200, response.text


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[[str, str], Alertmanager]]:
    """`alertmanager(webhook_url, token)` starts one; stopped after the test."""
    binary = require_binary()
    started: list[Alertmanager] = []

    def start(webhook_url: str, token: str) -> Alertmanager:
        am = Alertmanager(binary, tmp_path / f"am{len(started)}", webhook_url, token).start()
        started.append(am)
        return am

    yield start
    for am in started:
        am.stop()
