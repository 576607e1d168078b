"""`create_app`: the Starlette application of `runbook serve`.

Handlers are module-level functions that find their services on `request.app.state.services`; they raise
`Refused` (or a domain error) and the exception handlers below are the one place errors become responses.
Async only at the edges: handlers read and check the request, then hand plain synchronous work (the
store, the executor's `start`/`decide`) to Starlette's thread pool; runs themselves execute in the
`RunQueue`. Everything the app owns is started and stopped by its lifespan, so tests can run several
apps (one after another, on the same store) in one process.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from engine.chat import ChatRequestError
from engine.errors import StoreError, UnknownRunError
from engine.events import EventSink
from engine.run_store import RefusedRequest
from integrations.alertmanager import PayloadError, parse_payload
from integrations.app.server import pages
from integrations.app.server.chat import ChatBackend
from integrations.app.server.http import BodyTooLarge, Refused, check_webhook_auth, error, read_body
from integrations.app.server.metrics import Metrics
from integrations.app.server.services import Services, assemble
from integrations.app.wiring import Assembly

log = logging.getLogger("runbook.server")
RETRY_AFTER = "5"
REMOTE_INTAKES = 4  # webhooks handled at once on a database server: half its default pool, the rest is for runs


def create_app(assembly: Assembly, *, chat: ChatBackend | None = None, metrics: Metrics | None = None,
               sweep_interval: float | None = None, sinks: tuple[EventSink, ...] = ()) -> Starlette:
    """The server for `assembly`. `chat` (see `wiring.chat_backend`) enables chat and mounts its endpoints;
    without it runs are logged only. `sinks` are extra event sinks (e.g. for tests)."""
    services = assemble(assembly, chat=chat, metrics=metrics or Metrics(), sweep_interval=sweep_interval,
                        sinks=sinks)
    chat_routes = [Route(path, chat_endpoint, methods=["POST"]) for path in services.chat_endpoints]
    app = Starlette(routes=[*ROUTES, *chat_routes], exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    app.state.services = services
    return app


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    services: Services = app.state.services
    app.state.intakes = anyio.CapacityLimiter(REMOTE_INTAKES)  # made here: it belongs to this event loop
    await run_in_threadpool(services.start)
    try:
        yield
    finally:
        await run_in_threadpool(services.stop)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# endpoints --------------------------------------------------------------------------------------------

async def alertmanager(request: Request) -> Response:
    services = _services(request)
    began = time.perf_counter()
    try:
        await _authenticate(request, audit=True)
        payload = parse_payload(await read_body(request, services.settings.max_body_bytes))
        # SQLite: on the event loop, not a worker thread: the intake is a few hundred microseconds of SQLite
        # (reads on this thread's own connection, repeats attached without an fsync), and handing it to a
        # thread costs more than doing it; an alert storm is thousands of these. A database server: most
        # of a webhook is waiting for its answer, so on the loop every other request would wait too; in a
        # thread, a few webhooks overlap their round trips (bounded, so runs keep pool connections).
        if services.store.remote:
            summary = await anyio.to_thread.run_sync(services.intake.process, payload,
                                                     limiter=request.app.state.intakes)
        else:
            summary = services.intake.process(payload)
        body = summary.to_dict(len(payload.alerts))
        if summary.deferred:
            body["error"] = "deferred alerts (see their reasons) were not processed; retry later"
            return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER})
        return JSONResponse(body)
    finally:
        services.metrics.webhook_seconds.observe(time.perf_counter() - began)


async def chat_endpoint(request: Request) -> Response:
    """Any endpoint of the chat backend: bounded, verified (refusals audited), then handed to the backend."""
    services = _services(request)
    chat, handler = services.chat, services.chat_endpoints[request.url.path]
    assert chat is not None and services.chatops is not None
    body = await read_body(request, services.settings.max_body_bytes)
    problem = chat.verify(body, request.headers)
    if problem is not None:
        await _audit_refusal(request, chat.name, f"{chat.name}.request.refused", problem)
        raise Refused(401, f"invalid {chat.name} request: {problem}", metric="signature")
    answer = await run_in_threadpool(handler, body, services.chatops)
    if answer.body is None:
        return Response(status_code=answer.status)
    return JSONResponse(answer.body, status_code=answer.status)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = _services(request)
    problems = await run_in_threadpool(services.problems)
    body = {"status": "ready" if not problems else "not ready", "problems": problems,
            "queue_depth": services.queue.depth(), "workers": services.queue.alive()}
    return JSONResponse(body, status_code=200 if not problems else 503)


async def metrics_endpoint(request: Request) -> Response:
    text = await run_in_threadpool(_services(request).metrics.render)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


ROUTES = [
    Route("/hooks/alertmanager", alertmanager, methods=["POST"]),
    *pages.routes,  # the run pages: GET /runs, /runs/{id} (HTML or JSON), /runs/{id}/events
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
]


# errors -> responses ----------------------------------------------------------------------------------

async def _authenticate(request: Request, audit: bool = False) -> None:
    """Raises Refused(401) unless the request carries the webhook token or basic credentials (if configured)."""
    services = _services(request)
    problem = check_webhook_auth(request.headers.get("authorization"), services.token, services.basic)
    if problem is None:
        return
    if audit:
        await _audit_refusal(request, "alertmanager", "webhook.refused", "authentication")
    raise Refused(401, problem, metric="auth", headers={"WWW-Authenticate": 'Bearer realm="runbook"'})


async def _audit_refusal(request: Request, actor: str, action: str, reason: str) -> None:
    """Audit a refused request, rate-limited per source (client address and path) in the store: anyone can
    send these, and a synced row each would let them fill the disk. The refusal metric counts every one.
    A store that cannot commit does not change the answer: the request is still refused (401), not a 503."""
    services = _services(request)
    host = request.client.host if request.client else "unknown"
    refused = RefusedRequest(actor, action, f"{host} {request.url.path}",
                             {"endpoint": request.url.path, "reason": reason, "client": _client(request)})
    try:
        await run_in_threadpool(services.store.audit_refusal, refused, time.time(), services.refusal_limits)
    except StoreError as exc:
        services.health.failed(str(exc))
        log.warning("could not audit a refused request to %s: %s", request.url.path, exc)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    if exc.metric:
        _services(request).metrics.refusals.inc(endpoint=exc.endpoint or _endpoint(request), reason=exc.metric)
    return error(exc.status, exc.reason, headers=exc.headers)


async def _too_large(request: Request, exc: Exception) -> Response:
    return await _refused(request, Refused(413, str(exc), metric="too_large"))


async def _bad_payload(request: Request, exc: Exception) -> Response:
    return await _refused(request, Refused(400, str(exc), metric="bad_payload"))


async def _unknown_run(request: Request, exc: Exception) -> Response:
    return error(404, f"no run with id {request.path_params.get('run_id', '')!r}")


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """The store could not commit (database restarting, disk full): nothing was acknowledged, so say so
    and when to retry; Alertmanager and Slack both re-send."""
    log.error("%s %s: the run store is unavailable: %s", request.method, request.url.path, exc)
    _services(request).health.failed(str(exc))
    return error(503, f"the run store is unavailable, retry later: {exc}", headers={"Retry-After": RETRY_AFTER})


EXCEPTION_HANDLERS: dict[Any, Any] = {
    Refused: _refused,
    BodyTooLarge: _too_large,
    PayloadError: _bad_payload,
    ChatRequestError: _bad_payload,
    UnknownRunError: _unknown_run,
    StoreError: _store_unavailable,
}


def _endpoint(request: Request) -> str:
    path = request.url.path
    if path == "/hooks/alertmanager":
        return "alertmanager"
    return "runs" if path.startswith("/runs/") else path.strip("/").replace("/", "_")


def _client(request: Request) -> Any:
    return f"{request.client.host}:{request.client.port}" if request.client else None
