"""Running the server for real in-process: uvicorn on a loopback socket in a background thread.

For tests and `make demo`; production uses `serve`.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import uvicorn
from starlette.applications import Starlette

from engine.actions import ActionRegistry, PermissionChecker
from engine.catalog import Catalog
from engine.executor import Executor
from engine.loader import Loader
from engine.model import Runbook
from engine.records import RunRecord
from engine.settings import Settings
from integrations.app.serve import settle_heap
from integrations.app.server import Services, create_app
from integrations.app.server.metrics import Metrics
from integrations.app.stores import adopt_redaction_key, open_store
from integrations.app.wiring import Assembly, policy_from
from integrations.slack import Slack, sign
from integrations.slack.render import APPROVE, REJECT
from integrations.testing.slack_fake import FakeSlack


class ServerThread:
    """`with ServerThread(app) as server: httpx.get(server.url + "/healthz")`."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> ServerThread:
        # proto must say TCP: asyncio only sets TCP_NODELAY on such sockets, and without it every
        # response waits ~40 ms for the client's delayed ACK between headers and body
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="uvicorn",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start (see the log above)")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# A whole server for tests and demos ---------------------------------------------------------------------

SIGNING_SECRET = "test-signing-secret"
WEBHOOK_TOKEN = "test-webhook-token"
READ_TOKEN = "test-read-token"
CHANNEL = "C0INCIDENTS"


def server_settings(db: str, slack_api_url: str | None = None, **overrides: Any) -> Settings:
    """Settings for a server talking to a `FakeSlack` (`slack_api_url`), with a webhook and a read token."""
    values: dict[str, Any] = {"db": db, "webhook_token": WEBHOOK_TOKEN, "read_token": READ_TOKEN, "workers": 2,
                              "queue_size": 100, "runbook_path": (),
                              "storm_window": 0}  # one thread per run unless a test asks for storms
    if slack_api_url:
        values |= {"slack_bot_token": FakeSlack().token, "slack_signing_secret": SIGNING_SECRET,
                   "slack_api_url": slack_api_url, "slack_channel": CHANNEL}
    return Settings.model_validate(values | overrides)


def make_engine(settings: Settings, registry: ActionRegistry, runbooks: Iterable[str | Runbook] = (),
                checker: PermissionChecker | None = None, kube: Any = None) -> Assembly:
    """The engine's parts: runbooks as YAML text (or models) instead of the runbook path.

    `kube` is the cluster the server reads for owner lookups in alert triggers (the actions got theirs
    through `registry`)."""
    loader = Loader(registry)
    catalog = Catalog.load(settings.runbook_path, loader)
    for item in runbooks:
        runbook = loader.load_text(textwrap.dedent(item)) if isinstance(item, str) else item
        catalog.runbooks[runbook.name] = runbook
    store = open_store(settings, instance="test")
    adopt_redaction_key(settings, store)
    executor = Executor(registry, store, checker=checker, templating=loader.templating, policy=policy_from(settings))
    return Assembly(settings, registry, loader, catalog, store, executor, kube)


class Harness:
    """An engine served for real on loopback, with a Slack fake, driven over HTTP as Slack and
    Alertmanager would drive it. `restart()` replaces the app (and optionally the engine) on the same store.
    `settle_heap` freezes the heap once started, as `runbook serve` does (the bench; tests leave theirs alone)."""

    def __init__(self, engine: Assembly, fake: FakeSlack | None, *, groups: dict[str, list[str]] | None = None,
                 sweep_interval: float = 0.2, backoff: float = 0.05, max_backoff: float = 0.5,
                 settle_heap: bool = False) -> None:
        self.engine = engine
        self.settle_heap = settle_heap
        self.fake = fake
        self.groups = groups
        self.sweep_interval = sweep_interval
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.metrics = Metrics()
        self.slack: Slack | None = None
        self.server: ServerThread | None = None
        self.http = httpx.Client(timeout=30)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def services(self) -> Services:
        assert self.server is not None
        services: Services = self.server.app.state.services
        return services

    def start(self) -> Harness:
        self.metrics = Metrics()
        slack = Slack.from_settings(self.engine.settings, self.engine.store, groups=self.groups,
                                    on_error=lambda reason: self.metrics.chat_errors.inc(reason=reason),
                                    timeout=2, backoff=self.backoff, max_backoff=self.max_backoff)
        if slack is not None:
            slack.sender.poll = 0.05
        self.slack = slack
        app = create_app(self.engine, chat=slack, metrics=self.metrics, sweep_interval=self.sweep_interval)
        self.server = ServerThread(app).start()
        if self.settle_heap:
            settle_heap()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def restart(self, engine: Assembly | None = None) -> None:
        self.stop()
        if engine is not None:
            self.engine.close()
            self.engine = engine
        self.start()

    def close(self) -> None:
        self.stop()
        self.http.close()
        self.engine.close()

    # driving it -----------------------------------------------------------------------------------

    def post_alerts(self, alerts: list[dict[str, Any]], token: str | None = WEBHOOK_TOKEN,
                    **payload: Any) -> httpx.Response:
        body = alert_payload(alerts, **payload)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.post(f"{self.url}/hooks/alertmanager", json=body, headers=headers)

    def signed_post(self, path: str, form: dict[str, str], secret: str = SIGNING_SECRET,
                    timestamp: int | None = None) -> httpx.Response:
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(secret, body, timestamp)}
        return self.http.post(f"{self.url}{path}", content=body, headers=headers)

    def command(self, user: str, text: str, channel: str = CHANNEL, **kw: Any) -> httpx.Response:
        form = {"command": "/runbook", "text": text, "user_id": user, "user_name": user.lower(),
                "channel_id": channel, "team_id": "T0FAKE", "response_url": "http://127.0.0.1:9/unused"}
        return self.signed_post("/slack/commands", form, **kw)

    def click(self, user: str, run_id: str, step: str, approve: bool = True, channel: str = CHANNEL,
              **kw: Any) -> httpx.Response:
        value = json.dumps({"run": run_id, "step": step}, separators=(",", ":"))
        payload = {"type": "block_actions", "user": {"id": user, "username": user.lower()},
                   "channel": {"id": channel}, "container": {"type": "message", "channel_id": channel},
                   "actions": [{"action_id": APPROVE if approve else REJECT, "value": value, "type": "button"}]}
        return self.signed_post("/slack/interactions", {"payload": json.dumps(payload)}, **kw)

    def run(self, run_id: str) -> RunRecord:
        return self.engine.store.get_run(run_id)

    def wait_status(self, run_id: str, *statuses: str, timeout: float = 30.0) -> RunRecord:
        def probe() -> RunRecord | None:
            run = self.run(run_id)
            return run if run.status in statuses else None

        return wait_for(probe, timeout, f"run {run_id} to reach {statuses}")


def alert(name: str, labels: dict[str, str] | None = None, status: str = "firing",
          fingerprint: str | None = None) -> dict[str, Any]:
    """One alert as Alertmanager sends it."""
    labels = {"alertname": name, **(labels or {})}
    fp = fingerprint or hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    return {"status": status, "labels": labels, "annotations": {"summary": f"{name} {status}"},
            "startsAt": "2026-11-22T12:47:56.684Z",
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-22T13:07:56.684Z",
            "generatorURL": "http://prometheus.example:9090/graph", "fingerprint": fp}


def alert_payload(alerts: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """A version-4 webhook payload around `alerts`."""
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    common = alerts[0]["labels"] if alerts else {}
    return {"receiver": "runbook", "status": status, "alerts": alerts, "groupLabels": {},
            "commonLabels": common, "commonAnnotations": {}, "externalURL": "http://alertmanager.example:9093",
            "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0} | overrides


T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float = 30.0, what: str = "a condition",
             interval: float = 0.05) -> T:
    """Poll `probe` until it returns something truthy; bounded, and says what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def wait_serving(url: str, process: subprocess.Popen[bytes], log: Path, path: str = "/readyz",
                 timeout: float = 60.0) -> None:
    """Wait until a `runbook serve` process answers `path` with 200; its log is the failure if it exits first."""
    def answering() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"{url}{path}", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answering, timeout=timeout, what=f"the server to answer {path}")
