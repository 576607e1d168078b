"""A real Alertmanager (Debian's prometheus-alertmanager) on loopback, delivering webhooks to a server.

For integration tests and benchmarks: no cluster port, `group_wait: 0s`, one group per (alertname, node) so
distinct nodes are never merged, a bearer token as `http_config` sends it, alerts injected via /api/v2.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stamp(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Alertmanager:
    def __init__(self, workdir: Path, webhook_url: str, token: str | None = None, *, binary: str = BINARY,
                 send_resolved: bool = True, repeat_interval: str = "5s") -> None:
        self.workdir = workdir
        self.webhook_url = webhook_url
        self.token = token
        self.binary = binary
        self.send_resolved = send_resolved
        self.repeat_interval = repeat_interval
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "alertmanager.log"
        self.http = httpx.Client(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        hook: dict[str, Any] = {"url": self.webhook_url, "send_resolved": self.send_resolved}
        if self.token:
            hook["http_config"] = {"authorization": {"type": "Bearer", "credentials": self.token}}
        return {
            "route": {"receiver": "runbook", "group_by": ["alertname", "node"], "group_wait": "0s",
                      "group_interval": "1s", "repeat_interval": self.repeat_interval},
            "receivers": [{"name": "runbook", "webhook_configs": [hook]}],
        }

    def start(self, timeout: float = 30.0) -> Alertmanager:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "alertmanager.yml"
        config.write_text(yaml.safe_dump(self.config()), encoding="utf-8")
        self.port = free_port()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary, f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=info"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"alertmanager exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if self.http.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"alertmanager not ready after {timeout}s:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.http.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def fire(self, labels: dict[str, str], annotations: dict[str, str] | None = None) -> float:
        """Inject a firing alert; returns the wall-clock time just before sending it."""
        return self._post(labels, annotations, ends=None)

    def resolve(self, labels: dict[str, str]) -> None:
        """Alertmanager resolves an alert whose endsAt has passed (as Prometheus does when it stops firing)."""
        self._post(labels, None, ends=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))

    def _post(self, labels: dict[str, str], annotations: dict[str, str] | None, ends: dt.datetime | None) -> float:
        alert: dict[str, Any] = {"labels": labels, "annotations": annotations or {},
                                 "generatorURL": "http://prometheus.local/graph"}
        if ends is not None:
            alert["startsAt"] = _stamp(ends - dt.timedelta(minutes=5))
            alert["endsAt"] = _stamp(ends)
        sent = time.time()
        response = self.http.post(f"{self.url}/api/v2/alerts", json=[alert])
        if response.status_code != 200:
            raise RuntimeError(f"alertmanager refused the alert: {response.status_code} {response.text}")
        return sent

    def __enter__(self) -> Alertmanager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
