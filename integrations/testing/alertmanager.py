"""A real Alertmanager (Debian's prometheus-alertmanager) on loopback, delivering webhooks to a server.

For integration tests and benchmarks: `group_wait: 0s`, one group per (alertname, node) so distinct nodes
are never merged, a bearer token as `http_config` sends it, alerts injected via /api/v2. Alone it has no
cluster port; with `Gossip` it is one member of an HA cluster (see `alertmanager_pair`).
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Gossip:
    """One member's place in an Alertmanager HA cluster on loopback.

    `peer_timeout` is how long the member at position n waits (n times) before notifying, so that the
    first member's notification log can reach it by gossip; Alertmanager's default is 15 s."""

    port: int
    peers: tuple[int, ...]
    peer_timeout: str = "15s"
    gossip_interval: str = "50ms"  # settling takes ~30 gossip intervals; 200 ms (the default) makes that 6 s

    def flags(self) -> list[str]:
        address = f"127.0.0.1:{self.port}"
        # on loopback there is no private address to discover, so the advertised one is given explicitly
        return [f"--cluster.listen-address={address}", f"--cluster.advertise-address={address}",
                *(f"--cluster.peer=127.0.0.1:{peer}" for peer in self.peers),
                f"--cluster.peer-timeout={self.peer_timeout}", f"--cluster.gossip-interval={self.gossip_interval}",
                "--cluster.pushpull-interval=5s", "--cluster.settle-timeout=20s", "--cluster.reconnect-interval=1s"]


class Alertmanager:
    def __init__(self, workdir: Path, webhook_url: str, token: str | None = None, *, binary: str = BINARY,
                 send_resolved: bool = True, repeat_interval: str = "5s", gossip: Gossip | None = None) -> None:
        self.workdir = workdir
        self.webhook_url = webhook_url
        self.token = token
        self.binary = binary
        self.send_resolved = send_resolved
        self.repeat_interval = repeat_interval
        self.gossip = gossip
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
        return self.launch().wait_ready(timeout)

    def launch(self) -> Alertmanager:
        """Start the process without waiting (cluster members wait for each other: launch all, then wait)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "alertmanager.yml"
        config.write_text(yaml.safe_dump(self.config()), encoding="utf-8")
        self.port = free_port()
        cluster = self.gossip.flags() if self.gossip else ["--cluster.listen-address="]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary, f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", *cluster, "--log.level=info"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        return self

    def wait_answering(self, timeout: float = 30.0) -> Alertmanager:
        """Until its web server answers (a cluster member has joined by then, but may not have settled)."""
        return self._wait(lambda: self.http.get(f"{self.url}/-/healthy", timeout=2).status_code == 200, timeout)

    def wait_ready(self, timeout: float = 30.0) -> Alertmanager:
        """Until it answers; a cluster member until it sees all its peers and its gossip has settled
        (before that it holds notifications back)."""
        return self._wait(self._ready, timeout)

    def _wait(self, probe: Callable[[], bool], timeout: float) -> Alertmanager:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"alertmanager exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if probe():
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"alertmanager not ready after {timeout}s:\n{self.log.read_text()}")
            time.sleep(0.1)

    def _ready(self) -> bool:
        if self.gossip is None:
            return self.http.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        cluster = self.cluster_status()
        return cluster.get("status") == "ready" and len(cluster.get("peers") or []) == 1 + len(self.gossip.peers)

    def cluster_status(self) -> dict[str, Any]:
        """The member's view of its cluster (`status`: ready / settling / disabled, and its `peers`)."""
        response = self.http.get(f"{self.url}/api/v2/status", timeout=2)
        response.raise_for_status()
        cluster: dict[str, Any] = response.json().get("cluster") or {}
        return cluster

    def notifications(self) -> dict[str, float]:
        """Its webhook notifications so far, from its own metrics: `sent` (delivered or given up), `failed`
        (given up after retrying until the flush's deadline), and each HTTP attempt (`requests`,
        `requests_failed`)."""
        counts = dict.fromkeys(("sent", "failed", "requests", "requests_failed"), 0.0)
        names = {"alertmanager_notifications_total": "sent", "alertmanager_notifications_failed_total": "failed",
                 "alertmanager_notification_requests_total": "requests",
                 "alertmanager_notification_requests_failed_total": "requests_failed"}
        for line in self.http.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            name, _, rest = line.partition("{")
            if name in names and 'integration="webhook"' in rest:
                counts[names[name]] += float(rest.rpartition(" ")[2])
        return counts

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
