"""`create_app`: the Starlette application of `runbook serve`.

Async only at the edges: handlers read and check the request, then hand plain synchronous work
(SQLite, the executor's `start`/`decide`) to Starlette's thread pool; runs themselves execute in the
`WorkerPool`. Everything the app owns is started and stopped by its lifespan, so tests can run several
apps (one after another, on the same store) in one process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from engine.errors import StoreError
from engine.events import EventSink, Fanout
from engine.records import RunStatus
from engine.triggers import ClusterScope
from integrations.alertmanager import PayloadError, parse_payload
from integrations.app.server import pages
from integrations.app.server.chatops import ChatOps, approver_outlook
from integrations.app.server.console import ConsoleSink
from integrations.app.server.http import BodyTooLarge, check_webhook_auth, error, read_body
from integrations.app.server.intake import Intake
from integrations.app.server.metrics import Metrics, MetricsSink
from integrations.app.server.sweeper import Sweeper
from integrations.app.server.workers import WorkerPool
from integrations.app.wiring import Engine
from integrations.kubernetes.owners import OwnerResolver
from integrations.slack import Slack
from integrations.slack.directory import Directory

log = logging.getLogger("runbook.server")
RETRY_AFTER = "5"


@dataclass
class Services:
    """What one app owns; reachable as `app.state.services` (for tests and the demo)."""

    engine: Engine
    slack: Slack | None
    metrics: Metrics
    pool: WorkerPool
    sweeper: Sweeper
    intake: Intake
    chatops: ChatOps
    sink: EventSink
    previous_sink: EventSink | None = None

    def start(self) -> None:
        store = self.engine.store
        self.previous_sink = self.engine.executor.sink
        self.engine.executor.sink = Fanout([self.previous_sink, self.sink])
        interrupted = store.recover_interrupted()
        if interrupted:
            log.warning("marked %d run(s) interrupted by the last shutdown: %s", len(interrupted), interrupted)
        self.pool.start()
        # Pending runs never started; awaiting runs may hold a decision recorded just before a stop.
        for run_id in store.run_ids((RunStatus.PENDING, RunStatus.AWAITING_APPROVAL)):
            self.pool.submit(run_id, force=True)
        self.sweeper.start()
        if self.slack is not None:
            self.slack.sender.start()

    def stop(self) -> None:
        self.sweeper.stop()
        self.pool.stop()
        if self.slack is not None:
            self.slack.sender.stop()
        if self.previous_sink is not None:
            self.engine.executor.sink = self.previous_sink


def create_app(engine: Engine, *, slack: Slack | None = None, metrics: Metrics | None = None,
               directory: Directory | None = None, sweep_interval: float | None = None,
               sinks: tuple[EventSink, ...] = ()) -> Starlette:
    """The server for `engine`. `slack` (see `Slack.from_settings`) enables chat; without it runs are
    logged to the console only and the Slack endpoints answer 404. `directory` overrides Slack's user-group
    lookups; `sinks` are extra event sinks (e.g. for tests)."""
    settings = engine.settings
    metrics = metrics or Metrics()
    pool = WorkerPool(engine.executor.resume, workers=settings.workers, capacity=settings.queue_size)
    directory = directory or (slack.directory if slack else Directory(None))
    fan: list[EventSink] = [ConsoleSink(), MetricsSink(metrics), *sinks]
    if slack is not None:
        fan.append(slack.sink)
        metrics.gauge("runbook_chat_outbox_pending", "Slack messages not yet delivered.", slack.outbox.pending)
        metrics.gauge("runbook_chat_outbox_oldest_seconds", "Age of the oldest undelivered Slack message.",
                      slack.outbox.oldest_pending_age)
    metrics.watch_store(engine.store)
    metrics.gauge("runbook_queue_depth", "Runs waiting for a worker.", pool.depth)
    metrics.gauge("runbook_workers_busy", "Workers carrying a run forward.", lambda: pool.busy)

    def note(run_id: str, body: str) -> None:
        """A message in the run's thread (and the log) that is not a run event, e.g. a resolved alert."""
        log.info("run %s: %s", run_id, body)
        if slack is not None:
            slack.sink.note(run_id, body)

    lookup = OwnerResolver(engine.kube) if engine.kube is not None else None
    intake = Intake(engine.catalog, engine.executor, engine.store, pool, metrics,
                    cooldown=settings.dedup_cooldown, note=note, lookup=lookup,
                    scope=ClusterScope(settings.cluster_name, settings.cluster_label))
    chatops = ChatOps(engine.catalog, engine.executor, engine.store, pool, directory, metrics,
                      runners=settings.runners, approvers=settings.approvers,
                      channel_of=slack.sink.router.channel if slack else None,
                      identity_groups=tuple(settings.identities))
    if slack is not None and engine.executor.identities is not None:
        slack.sink.outlook = approver_outlook(engine.executor, settings)
    sweeper = Sweeper(engine.store, engine.executor, pool, lease=settings.run_lease,
                      interval=sweep_interval if sweep_interval is not None else min(5.0, settings.run_lease / 3))
    services = Services(engine, slack, metrics, pool, sweeper, intake, chatops, Fanout(fan))
    token = settings.webhook_token.get_secret_value() if settings.webhook_token else None
    basic = settings.webhook_basic_auth.get_secret_value() if settings.webhook_basic_auth else None
    if token is None and basic is None:
        log.warning("the webhook accepts unauthenticated requests (set webhook_token or webhook_basic_auth)")

    def unauthorized(request: Request, endpoint: str) -> Response | None:
        problem = check_webhook_auth(request.headers.get("authorization"), token, basic)
        if problem is None:
            return None
        metrics.refusals.inc(endpoint=endpoint, reason="auth")
        return error(401, problem, headers={"WWW-Authenticate": 'Bearer realm="runbook"'})

    async def alertmanager(request: Request) -> Response:
        began = time.perf_counter()
        try:
            if (refused := unauthorized(request, "alertmanager")) is not None:
                await run_in_threadpool(engine.store.audit, "alertmanager", "webhook.refused", None,
                                        {"reason": "authentication", "client": _client(request)})
                return refused
            try:
                payload = parse_payload(await read_body(request, settings.max_body_bytes))
            except BodyTooLarge as exc:
                metrics.refusals.inc(endpoint="alertmanager", reason="too_large")
                return error(413, str(exc))
            except PayloadError as exc:
                metrics.refusals.inc(endpoint="alertmanager", reason="bad_payload")
                return error(400, str(exc))
            # On the event loop, not a worker thread: the intake is a few hundred microseconds of SQLite (reads
            # on this thread's own connection, repeats attached without an fsync), and handing it to a
            # thread costs more than doing it; an alert storm is thousands of these.
            summary = services.intake.process(payload)
            body = summary.to_dict(len(payload.alerts))
            if summary.deferred:
                body["error"] = "deferred alerts (see their reasons) were not processed; retry later"
                return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER})
            return JSONResponse(body)
        finally:
            metrics.webhook_seconds.observe(time.perf_counter() - began)

    async def slack_request(request: Request, endpoint: str) -> dict[str, list[str]] | Response:
        """The verified form body of a Slack request, or the refusal to send back."""
        if slack is None:
            return error(404, "Slack is not configured on this server (slack_bot_token, slack_signing_secret)")
        try:
            body = await read_body(request, settings.max_body_bytes)
        except BodyTooLarge as exc:
            return error(413, str(exc))
        problem = slack.verifier.problem(body, request.headers)
        if problem is not None:
            metrics.refusals.inc(endpoint=endpoint, reason="signature")
            await run_in_threadpool(engine.store.audit, "slack", "slack.request.refused", None,
                                    {"endpoint": endpoint, "reason": problem, "client": _client(request)})
            return error(401, f"invalid Slack request: {problem}")
        return parse_qs(body.decode("utf-8", "replace"))

    async def slack_commands(request: Request) -> Response:
        form = await slack_request(request, "slack_commands")
        if isinstance(form, Response):
            return form
        user, channel = _first(form, "user_id"), _first(form, "channel_id")
        if not user:
            return error(400, "user_id missing from the slash command")
        reply = await run_in_threadpool(services.chatops.command, user, channel, _first(form, "text"))
        return JSONResponse({"response_type": "ephemeral", "text": reply.text})

    async def slack_interactions(request: Request) -> Response:
        form = await slack_request(request, "slack_interactions")
        if isinstance(form, Response):
            return form
        try:
            payload = json.loads(_first(form, "payload"))
            user = str(payload["user"]["id"])
            actions = payload.get("actions") or []
            places = [payload.get("channel") or {}, payload.get("container") or {}]
            if not isinstance(actions, list) or not all(isinstance(a, dict) for a in [*actions, *places]):
                raise TypeError("actions must be a list of objects; channel and container objects")
        except (ValueError, KeyError, TypeError, RecursionError):
            return error(400, "expected a form field 'payload' with a block_actions JSON document")
        if payload.get("type") != "block_actions":
            return Response(status_code=200)  # other interaction types are not ours; Slack needs a 200
        channel = str(places[0].get("id") or places[1].get("channel_id") or "")
        for action in actions:
            reply = await run_in_threadpool(services.chatops.click, user, str(action.get("action_id", "")),
                                            str(action.get("value", "")))
            if not reply.ok and channel and slack is not None:
                await run_in_threadpool(slack.sink.ephemeral, channel, user, reply.text, reply.run_id)
        return Response(status_code=200)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problems = []
        try:
            await run_in_threadpool(engine.store.list_runs, None, None, 1)
        except StoreError as exc:
            problems.append(f"run store unreachable: {exc}")
        if pool.alive() < pool.size:
            problems.append(f"{pool.size - pool.alive()} of {pool.size} workers are not running")
        if not services.sweeper.alive:
            problems.append("the approval-timeout sweeper is not running")
        if slack is not None and not slack.sender.alive:
            problems.append("the Slack sender is not running")
        body = {"status": "ready" if not problems else "not ready", "problems": problems,
                "queue_depth": pool.depth(), "workers": pool.alive()}
        return JSONResponse(body, status_code=200 if not problems else 503)

    async def metrics_endpoint(request: Request) -> Response:
        text = await run_in_threadpool(metrics.render)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(services.start)
        try:
            yield
        finally:
            await run_in_threadpool(services.stop)

    app = Starlette(routes=[
        Route("/hooks/alertmanager", alertmanager, methods=["POST"]),
        Route("/slack/commands", slack_commands, methods=["POST"]),
        Route("/slack/interactions", slack_interactions, methods=["POST"]),
        *pages.routes,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ], lifespan=lifespan, exception_handlers={StoreError: _store_unavailable})
    app.state.services = services
    return app


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """The store could not commit (database restarting, disk full): nothing was acknowledged, so say so
    and when to retry; Alertmanager and Slack both re-send."""
    log.error("%s %s: the run store is unavailable: %s", request.method, request.url.path, exc)
    return error(503, f"the run store is unavailable, retry later: {exc}", headers={"Retry-After": RETRY_AFTER})


def _first(form: dict[str, list[str]], key: str) -> str:
    values = form.get(key) or [""]
    return values[0]


def _client(request: Request) -> Any:
    return f"{request.client.host}:{request.client.port}" if request.client else None
