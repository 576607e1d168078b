"""The run pages: `GET /runs` (a filterable list) and `GET /runs/{id}` (a run's timeline) as server-rendered
HTML, the same URLs as JSON for `Accept: application/json`, and `GET /runs/{id}/events` (server-sent events
while a run is active). Usable without JavaScript: a small script only swaps in live updates.

Handlers are module-level and find the engine on `request.app.state.services`. Read access is checked by
`ReadAccess` (never the webhook token); every HTML answer carries a strict Content-Security-Policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from engine.errors import UnknownRunError
from engine.records import RunStatus
from engine.run_store import RunStore
from integrations.app.server import timeline
from integrations.app.server.access import PROXY_HEADER, ReadAccess, Refusal, Viewer
from integrations.app.server.http import error

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
MAX_LIST = 500
POLL_SECONDS = 1.0
STREAM_SECONDS = 900.0  # a browser's EventSource reconnects by itself after this
STATIC = {"run.css": "text/css; charset=utf-8", "live.js": "text/javascript; charset=utf-8"}


@cache
def templates() -> Environment:
    """The page templates, shipped as package data; autoescaping on for everything."""
    env = Environment(loader=PackageLoader("integrations.app.server", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["status_class"] = lambda status: "status-" + str(status).replace(" ", "-")
    return env


@cache
def _access(token: str | None, cidrs: tuple[str, ...]) -> ReadAccess:
    return ReadAccess.of(token, cidrs)


def _store(request: Request) -> RunStore:
    store: RunStore = request.app.state.services.engine.store
    return store


def wants_json(request: Request) -> bool:
    """JSON unless the client ranks text/html above application/json (browsers do; curl and scripts send
    `*/*` or ask for JSON, and keep getting the API they had)."""
    ranks: dict[str, float] = {}
    for part in request.headers.get("accept", "*/*").split(",")[:32]:
        kind, *params = (p.strip() for p in part.split(";"))
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            ranks[kind.lower()] = float(q)
        except ValueError:
            ranks[kind.lower()] = 0.0
    return ranks.get("text/html", 0.0) <= ranks.get("application/json", 0.0) or "text/html" not in ranks


def viewer(request: Request) -> Viewer | Response:
    """The reader, or the 401 that says which credential is missing."""
    settings = request.app.state.services.engine.settings
    token = settings.read_token.get_secret_value() if settings.read_token else None
    access = _access(token, tuple(settings.trusted_proxy_cidrs))
    peer = request.scope.get("client")
    outcome = access.check(peer[0] if peer else None, request.headers.get("authorization"),
                           request.headers.get(PROXY_HEADER))
    if isinstance(outcome, Viewer):
        return outcome
    request.app.state.services.metrics.refusals.inc(endpoint="runs", reason="auth")
    return _refused(request, outcome)


def _refused(request: Request, refusal: Refusal) -> Response:
    headers = {"WWW-Authenticate": refusal.challenge} if refusal.challenge else {}
    if wants_json(request):
        return error(401, refusal.reason, headers=headers)
    return PlainTextResponse(refusal.reason + "\n", status_code=401, headers=headers | SECURITY_HEADERS)


def html(template: str, code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates().get_template(template).render(**context), status_code=code,
                        headers=SECURITY_HEADERS)


# handlers -------------------------------------------------------------------------------------------


async def list_runs(request: Request) -> Response:
    who = viewer(request)
    if isinstance(who, Response):
        return who
    query = request.query_params
    runbook, status = query.get("runbook", "")[:63] or None, query.get("status", "") or None
    if status and status not in {s.value for s in RunStatus}:
        return error(400, f"unknown status {status[:40]!r}; one of {', '.join(s.value for s in RunStatus)}")
    try:
        limit = min(MAX_LIST, max(1, int(query.get("limit", "50"))))
    except ValueError:
        return error(400, "limit must be a whole number")
    runs = await run_in_threadpool(_store(request).list_runs, runbook, status, limit)
    rows = [timeline.summary(r) for r in runs]
    if wants_json(request):
        return JSONResponse({"runs": [{k: v for k, v in row.items() if k not in ("created", "took")} for row in rows]})
    catalog = request.app.state.services.engine.catalog
    return html("runs.html", runs=rows, viewer=who, runbook=runbook or "", status=status or "", limit=limit,
                runbooks=sorted(catalog.runbooks), statuses=[s.value for s in RunStatus])


def _gather(store: RunStore, run_id: str) -> timeline.RunView:
    return timeline.RunView(store.get_run(run_id), store.alerts(run_id), store.decisions(run_id),
                            store.audit_log(run_id))


async def show_run(request: Request) -> Response:
    who = viewer(request)
    if isinstance(who, Response):
        return who
    run_id = request.path_params["run_id"]
    try:
        view = await run_in_threadpool(_gather, _store(request), run_id)
    except UnknownRunError:
        if wants_json(request):
            return error(404, f"no run with id {run_id[:80]!r}")
        return html("missing.html", code=404, run_id=run_id[:80], viewer=who)
    if wants_json(request):
        body = view.run.to_dict()
        body["alerts"] = view.alerts
        return JSONResponse(body)
    context = timeline.page(view)
    events = f"/runs/{run_id}/events" if context["run"]["active"] else ""
    return html("run.html", viewer=who, events=events, **context)


def render_timeline(view: timeline.RunView) -> str:
    return templates().get_template("timeline.html").render(**timeline.page(view))


async def run_events(request: Request) -> Response:
    """Server-sent events: `update` with the re-rendered timeline whenever it changes, `end` once the run
    is finished. State is read from the store each second, so any replica can serve any run."""
    who = viewer(request)
    if isinstance(who, Response):
        return who
    run_id = request.path_params["run_id"]
    store = _store(request)
    try:
        await run_in_threadpool(store.get_run, run_id)
    except UnknownRunError:
        return error(404, f"no run with id {run_id[:80]!r}")
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(_stream(request, store, run_id), media_type="text/event-stream", headers=headers)


class OpenStreams:
    """How many live pages hold an event stream open (each is a connection and a poll a second)."""

    def __init__(self) -> None:
        self.count = 0


def open_streams(request: Request) -> OpenStreams:
    """This app's stream count, made (and exported as a gauge) with the first stream."""
    state = request.app.state
    if not hasattr(state, "page_streams"):
        state.page_streams = OpenStreams()
        state.services.metrics.gauge("runbook_page_streams_open", "Live run pages holding an event stream.",
                                     lambda: state.page_streams.count)
    streams: OpenStreams = state.page_streams
    return streams


async def _stream(request: Request, store: RunStore, run_id: str) -> AsyncIterator[str]:
    last, deadline = "", time.monotonic() + STREAM_SECONDS
    streams = open_streams(request)
    streams.count += 1
    try:
        yield "retry: 3000\n\n"
        while time.monotonic() < deadline and not await request.is_disconnected():
            view = await run_in_threadpool(_gather, store, run_id)
            fragment = await run_in_threadpool(render_timeline, view)
            digest = hashlib.sha256(fragment.encode()).hexdigest()
            if digest != last:
                last = digest
                yield sse("update", fragment)
            if view.run.status.finished:
                yield sse("end", str(view.run.status))
                return
            await asyncio.sleep(POLL_SECONDS)
    finally:
        streams.count -= 1


def sse(event: str, data: str) -> str:
    """One event; every line of `data` gets its own `data:` field, as the format requires."""
    lines = "".join(f"data: {line}\n" for line in data.replace("\r", "").split("\n"))
    return f"event: {event}\n{lines}\n"


async def static(request: Request) -> Response:
    """The stylesheet and the live-update script (no secrets: served without a read credential)."""
    name = request.path_params["name"]
    if name not in STATIC:
        return error(404, f"no static file {name[:40]!r}")
    body = resources.files("integrations.app.server").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"Cache-Control": "max-age=300",
                                                             "X-Content-Type-Options": "nosniff"})


routes = [
    Route("/runs", list_runs, methods=["GET"]),
    Route("/runs/{run_id}", show_run, methods=["GET"]),
    Route("/runs/{run_id}/events", run_events, methods=["GET"]),
    Route("/static/{name}", static, methods=["GET"]),
]
