"""A real Prometheus (Debian's `prometheus` package) on loopback, scraping a tiny exporter the test serves.

The exporter is a plain HTTP server answering `/metrics` in the text exposition format with whatever
values the test sets, so a query's answer is known exactly. Prometheus scrapes it every second; `ready()`
waits until the first scrape is in, so tests never race the first sample.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from integrations.testing.alertmanager import free_port

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"


class Exporter:
    """`/metrics` with the gauges in `values` ({name: {labels-as-text: value}})."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, float]] = {}
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def render(self) -> str:
        lines = []
        for name, series in self.values.items():
            lines.append(f"# TYPE {name} gauge")
            lines.extend(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}"
                         for labels, value in series.items())
        return "\n".join(lines) + "\n"

    def start(self) -> Exporter:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Prometheus:
    def __init__(self, workdir: Path, targets: list[str], *, binary: str = BINARY,
                 basic_auth: tuple[str, str] | None = None) -> None:
        """`basic_auth` is (user, bcrypt hash) for Prometheus's own web config."""
        self.workdir, self.targets, self.binary, self.basic_auth = workdir, targets, binary, basic_auth
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _arguments(self) -> list[str]:
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "exporter", "static_configs": [{"targets": self.targets}]}],
        }), encoding="utf-8")
        args = [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]
        if self.basic_auth:
            web = self.workdir / "web.yml"
            web.write_text(yaml.safe_dump({"basic_auth_users": {self.basic_auth[0]: self.basic_auth[1]}}))
            args.append(f"--web.config.file={web}")
        return args

    def start(self, timeout: float = 30.0) -> Prometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self._arguments(), stdout=log, stderr=subprocess.STDOUT)
        self._wait(lambda http: http.get(f"{self.url}/-/ready").status_code in (200, 401), timeout)
        return self

    def scraped(self, auth: tuple[str, str] | None = None, timeout: float = 30.0) -> None:
        """Wait until every target has been scraped once (`up` is 1 for each)."""
        def done(http: httpx.Client) -> bool:
            answer = http.get(f"{self.url}/api/v1/query", params={"query": "sum(up)"}, auth=auth).json()
            result = answer.get("data", {}).get("result") or []
            return bool(result) and float(result[0]["value"][1]) >= len(self.targets)

        self._wait(done, timeout)

    def _wait(self, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as http:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self.log.read_text()}")
                try:
                    if check(http):
                        return
                except (httpx.TransportError, ValueError, KeyError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"prometheus not ready after {timeout}s:\n{self.log.read_text()}")
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
