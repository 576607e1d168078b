"""Several real `runbook serve` processes on one database, for the replica tests and the failover bench.

Each replica is its own OS process (so `kill -9` is a real crash) started with the same config file;
requests are driven over HTTP as Alertmanager and Slack would send them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from integrations.slack import sign
from integrations.slack.render import APPROVE, REJECT
from integrations.testing.server import CHANNEL, SIGNING_SECRET, WEBHOOK_TOKEN, alert_payload, wait_for

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Replica:
    """One `runbook serve` process; `kill()` is kill -9, `stop()` a graceful SIGTERM."""

    def __init__(self, name: str, config: Path, workdir: Path, env: dict[str, str] | None = None,
                 port: int = 0) -> None:
        """`port` 0 picks a free one; a successor given its predecessor's port takes its place behind
        whatever sends to that address (as a new pod behind a Service)."""
        self.name = name
        self.config = config
        self.workdir = workdir
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(timeout=30)
        self.logfile = workdir / f"{name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Replica:
        self.port = self.port or free_port()
        with self.logfile.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "integrations.app.cli", "serve", "--port", str(self.port), "--config",
                 str(self.config)], env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        wait_for(self._ready, timeout, f"replica {self.name} to be ready", interval=0.1)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"replica {self.name} exited: {self.log()[-3000:]}")
        try:
            return self.http.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown of any kind."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self, timeout: float = 30.0) -> int | None:
        """A graceful stop (what Kubernetes does first on a drain or a rolling update)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def metric(self, name: str) -> float:
        """A counter of this process's /metrics, summed over its series (0 when it has none yet)."""
        text = self.http.get(f"{self.url}/metrics", timeout=10).text
        return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
                   if line.startswith((f"{name} ", f"{name}{{")))

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    # driving it -----------------------------------------------------------------------------------

    def post_alerts(self, alerts: list[dict[str, Any]]) -> httpx.Response:
        return self.http.post(f"{self.url}/hooks/alertmanager", json=alert_payload(alerts),
                              headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"})

    def click(self, user: str, run_id: str, step: str, approve: bool = True, nonce: str = "") -> httpx.Response:
        """An Approve/Reject click; `nonce` tells two clicks apart (Slack's action_ts), so they sign differently."""
        value = json.dumps({"run": run_id, "step": step}, separators=(",", ":"))
        action = {"action_id": APPROVE if approve else REJECT, "value": value, "type": "button",
                  "action_ts": nonce or f"{time.time():.6f}"}
        payload = {"type": "block_actions", "user": {"id": user, "username": user.lower()},
                   "channel": {"id": CHANNEL}, "container": {"type": "message", "channel_id": CHANNEL},
                   "actions": [action]}
        body = urlencode({"payload": json.dumps(payload)}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SIGNING_SECRET, body)}
        return self.http.post(f"{self.url}/slack/interactions", content=body, headers=headers)

    def close(self) -> None:
        self.kill()
        self.http.close()
