"""A real Alertmanager (Debian's prometheus-alertmanager) on loopback for figure 3, started the way
`tests/integrations/alertmanager/conftest.py` does it: no cluster port, `group_wait: 0s`, one group per
(alertname, node) so distinct nodes are never merged, and a webhook receiver pointed at the system under test.
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


class Alertmanager:
    def __init__(self, workdir: Path, webhook_url: str, token: str | None = None) -> None:
        self.workdir = workdir
        self.webhook_url = webhook_url
        self.token = token
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "alertmanager.log"
        self.http = httpx.Client(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        hook: dict[str, Any] = {"url": self.webhook_url, "send_resolved": False}
        if self.token:
            hook["http_config"] = {"authorization": {"type": "Bearer", "credentials": self.token}}
        return {
            "route": {"receiver": "sut", "group_by": ["alertname", "node"], "group_wait": "0s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "sut", "webhook_configs": [hook]}],
        }

    def start(self, timeout: float = 30.0) -> Alertmanager:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "alertmanager.yml"
        config.write_text(yaml.safe_dump(self.config()), encoding="utf-8")
        self.port = free_port()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [BINARY, f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"alertmanager exited with {self.process.returncode}: {self.log.read_text()}")
            try:
                if self.http.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"alertmanager not ready after {timeout}s: {self.log.read_text()}")
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

    def fire(self, labels: dict[str, str]) -> float:
        """POST one alert to /api/v2/alerts; returns the wall-clock time (time.time()) just before sending."""
        now = dt.datetime.now(dt.UTC)
        alert = {"labels": labels, "annotations": {"summary": f"{labels.get('node')} is not ready"},
                 "generatorURL": "http://prometheus.bench/graph",
                 "startsAt": now.isoformat().replace("+00:00", "Z")}
        sent = time.time()
        response = self.http.post(f"{self.url}/api/v2/alerts", json=[alert])
        if response.status_code != 200:
            raise RuntimeError(f"alertmanager refused the alert: {response.status_code} {response.text}")
        return sent

    def __enter__(self) -> Alertmanager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
