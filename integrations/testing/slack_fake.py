"""A local fake of the Slack Web API: a real HTTP server on 127.0.0.1 for tests and `make demo`.

Implements `chat.postMessage`, `chat.update`, `chat.postEphemeral`, `usergroups.users.list`,
`usergroups.list` and `auth.test` closely enough for `slack_sdk.WebClient(base_url=fake.url)`; records
every request; can answer `ratelimited` (429 + Retry-After), 500, hang, hold a call and then carry it out
(`slow`), or go down (connection refused) on demand, for every call or for one channel's only; enforces
Slack's documented rate limits (see `slack_limits`); and renders the channels and threads as a readable
transcript.

The limits are on by default, everywhere, at `SUITE_TIME_SCALE` (0.02: buckets refill and `Retry-After`
elapses 50x faster than at Slack, so `chat.postMessage` allows 50 a second per channel after a burst of 5),
so every test that talks to the fake lives within Slack's tiers without waiting for them. The bench
and the dedicated rate-limit tests pass `time_scale=1.0` (real Slack speed); a test whose point needs
no limits at all passes `rate_limits=False` and says why.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from integrations.testing.slack_limits import RateLimits, retry_after_header

SUITE_TIME_SCALE = 0.02  # the fake's default pace: Slack's tiers 50x faster (see the module docstring)


@dataclass
class Recorded:
    method: str
    params: dict[str, Any]
    status: int
    at: float


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    edits: int = 0


class FakeSlack:
    def __init__(self, token: str = "xoxb-test-token", usergroups: dict[str, Iterable[str]] | None = None,
                 handles: dict[str, str] | None = None, rate_limits: bool | RateLimits = True,
                 time_scale: float = SUITE_TIME_SCALE) -> None:
        """`rate_limits=True` (the default) enforces Slack's tiers (`slack_limits.SLACK_TIERS`) at `time_scale`
        (1.0: real speed; the default `SUITE_TIME_SCALE`: 50x faster); a `RateLimits` sets its own tiers;
        `False` turns them off."""
        self.token = token
        self.usergroups = {k: list(v) for k, v in (usergroups or {}).items()}
        self.handles = dict(handles or {})  # handle (without @) -> group id
        self.unknown_channels: set[str] = set()
        self.requests: list[Recorded] = []
        self.messages: list[Posted] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.limits: RateLimits | None = (
            rate_limits if isinstance(rate_limits, RateLimits)
            else RateLimits(time_scale=time_scale) if rate_limits else None)
        self.ratelimited = 0  # 429s answered, by the limits or an injected fault
        # (mode, retry_after, channel or None: any, which calls or None: any)
        self._faults: list[tuple[str, float, str | None, Callable[[dict[str, Any]], bool] | None]] = []
        self._lock = threading.RLock()
        self._ts = itertools.count(1)
        self._release = threading.Event()
        self.holding = threading.Event()  # set once a `hang` or `slow` call is being held
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # lifecycle ------------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def go_down(self) -> None:
        """Stop listening: clients get connection refused until `come_back`."""
        self.stop()

    def come_back(self) -> None:
        self._release.clear()
        self.start()

    # faults ---------------------------------------------------------------------------------------

    def fail(self, mode: str, times: int = 1, retry_after: float = 1.0, channel: str | None = None,
             when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Answer the next `times` calls (to `channel` only, and only those whose params satisfy `when`, if
        given) with `ratelimited` (429), `error500`, `hang` (until released, then a 500) or `slow` (until
        released, then carried out as usual)."""
        assert mode in ("ratelimited", "error500", "hang", "slow"), mode
        with self._lock:
            self._faults.extend([(mode, retry_after, channel, when)] * times)

    def release(self) -> None:
        """Let hung requests answer (with a 500, as a proxy timing out would)."""
        self._release.set()

    def _next_fault(self, params: dict[str, Any]) -> tuple[str, float] | None:
        channel = str(params.get("channel") or "")
        with self._lock:
            for i, (mode, retry_after, only, when) in enumerate(self._faults):
                if only in (None, channel) and (when is None or when(params)):
                    del self._faults[i]
                    return mode, retry_after
        return None

    # queries --------------------------------------------------------------------------------------

    def calls(self, method: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method]

    def parents(self, channel: str | None = None) -> list[Posted]:
        with self._lock:
            return [m for m in self.messages if m.thread_ts is None and channel in (None, m.channel)]

    def thread(self, ts: str) -> list[Posted]:
        with self._lock:
            return [m for m in self.messages if m.thread_ts == ts]

    def find(self, predicate: Callable[[Posted], bool]) -> list[Posted]:
        with self._lock:
            return [m for m in self.messages if predicate(m)]

    def transcript(self) -> str:
        """Channels, parent messages and their threads (and ephemerals) as plain text."""
        lines: list[str] = []
        with self._lock:
            channels = list(dict.fromkeys(m.channel for m in self.messages))
            for channel in channels:
                lines.append(f"#{channel}")
                for parent in self.parents(channel):
                    edited = f" (edited {parent.edits}x)" if parent.edits else ""
                    lines.append(_indent(flatten(parent), "  ") + edited)
                    for reply in self.thread(parent.ts):
                        lines.append(_indent(flatten(reply), "    ↳ ", "      "))
                lines.append("")
            for eph in self.ephemerals:
                lines.append(f"(only visible to {eph['user']} in #{eph['channel']}) {eph.get('text', '')}")
        return "\n".join(lines).rstrip() + "\n"

    # the API --------------------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any], auth: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, body, headers) for one API call; also the entry point for in-process use."""
        fault = self._next_fault(params)
        if fault and fault[0] == "ratelimited":
            return self._ratelimited(fault[1])
        if fault and fault[0] == "error500":
            return 500, {"ok": False, "error": "fatal_error"}, {}
        if fault and fault[0] in ("hang", "slow"):
            self.holding.set()
            self._release.wait(120)
            if fault[0] == "hang":
                return 500, {"ok": False, "error": "request_timeout"}, {}
        if auth != f"Bearer {self.token}":
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        api = getattr(self, "_" + method.replace(".", "_"), None)
        if api is None:
            return 404, {"ok": False, "error": "unknown_method"}, {}
        wait = self.limits.check(method, str(params.get("channel") or "")) if self.limits else 0.0
        if wait > 0:
            return self._ratelimited(wait)
        with self._lock:
            return 200, api(params), {}

    def _ratelimited(self, retry_after: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.ratelimited += 1
        return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry_after_header(retry_after)}

    @property
    def retried_too_soon(self) -> int:
        """Calls that came before the `Retry-After` this fake announced for their bucket had elapsed."""
        return self.limits.too_soon if self.limits else 0

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://fake.slack/", "team": "Fake", "user": "runbook", "team_id": "T0FAKE",
                "user_id": "U0BOT", "bot_id": "B0BOT"}

    def _chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel") or "")
        if not channel or channel in self.unknown_channels:
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("text") and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        posted = Posted(channel, f"1700000000.{next(self._ts):06d}", str(params.get("text") or ""),
                        _blocks(params.get("blocks")), params.get("thread_ts"))
        self.messages.append(posted)
        return {"ok": True, "channel": channel, "ts": posted.ts, "message": {"text": posted.text, "ts": posted.ts}}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        for message in self.messages:
            if message.channel == params.get("channel") and message.ts == params.get("ts"):
                message.text = str(params.get("text") or message.text)
                message.blocks = _blocks(params.get("blocks")) or message.blocks
                message.edits += 1
                return {"ok": True, "channel": message.channel, "ts": message.ts, "text": message.text}
        return {"ok": False, "error": "message_not_found"}

    def _chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("channel") or not params.get("user"):
            return {"ok": False, "error": "invalid_arguments"}
        self.ephemerals.append(dict(params))
        return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}

    def _usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = str(params.get("usergroup") or "")
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    def _usergroups_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "usergroups": [{"id": gid, "handle": handle} for handle, gid in self.handles.items()]}


_DATE = re.compile(r"<!date\^[^|>]*\|([^>]*)>")


def _blocks(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        value = json.loads(value)
    return list(value or [])


def flatten(message: Posted) -> str:
    """The visible text of a message: its blocks (buttons as [Label]) or, lacking blocks, its text.
    Entities are decoded as Slack shows them; a literal `<!channel>` in the result was escaped on the wire."""
    parts: list[str] = []
    for block in message.blocks:
        if block.get("type") == "section":
            if block.get("text"):
                parts.append(block["text"]["text"])
            if block.get("fields"):
                parts.append(" | ".join(f["text"].replace("\n", ": ") for f in block["fields"]))
        elif block.get("type") == "context":
            parts.append(" ".join(e.get("text", "") for e in block.get("elements", [])))
        elif block.get("type") == "actions":
            parts.append(" ".join(f"[{e['text']['text']}]" for e in block.get("elements", []) if e.get("text")))
    shown = _DATE.sub(lambda m: m.group(1), "\n".join(parts) if parts else message.text)
    return html.unescape(shown)  # as Slack displays it: &lt; is shown as <


def _indent(text: str, first: str, rest: str | None = None) -> str:
    rest = " " * len(first) if rest is None else rest
    lines = text.splitlines() or [""]
    return "\n".join([first + lines[0], *(rest + line for line in lines[1:])])


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            self._serve(b"")

        def do_POST(self) -> None:
            self._serve(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def _serve(self, body: bytes) -> None:
            url = urlsplit(self.path)
            method = url.path.rsplit("/", 1)[-1]
            params: dict[str, Any] = dict(parse_qsl(url.query))
            if body:
                if "json" in (self.headers.get("Content-Type") or ""):
                    params.update(json.loads(body))
                else:
                    params.update(parse_qsl(body.decode()))
            status, answer, headers = fake.handle(method, params, self.headers.get("Authorization") or "")
            with fake._lock:
                fake.requests.append(Recorded(method, params, status, time.time()))
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up (timed out) while we hung

    return Handler
