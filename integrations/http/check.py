"""`http.check`: one GET or HEAD, bounded, to a host the settings allow; redirects only within that host.

An allowlist because a runbook's URL may come from an alert: without it a crafted alert could make the
engine probe anything its network can reach. Following a redirect to another host would bypass the
allowlist, so redirects are followed only when they stay on the same scheme, host and port.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.actions import ActionArgs, ActionContext, ActionKind, action
from engine.errors import PermanentError, SettingsError, TransientError
from engine.model import Duration
from engine.redaction import redact

if TYPE_CHECKING:
    import httpx

MAX_BODY = 256 * 1024
MAX_REDIRECTS = 5


class HttpSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    allow_hosts: tuple[str, ...] = Field(default=(), description="Host names or patterns (*.svc.cluster.local).")

    @classmethod
    def parse(cls, section: Mapping[str, Any] | None) -> HttpSettings:
        try:
            return cls.model_validate(dict(section or {}))
        except ValidationError as exc:
            raise SettingsError(f"bad setting plugins.http: {exc.errors(include_url=False)[0]['msg']}") from None

    def allows(self, host: str) -> bool:
        return any(fnmatch.fnmatchcase(host.lower(), pattern.lower()) for pattern in self.allow_hosts)


class CheckArgs(ActionArgs):
    url: str = Field(pattern=r"^https?://", max_length=2048)
    method: Literal["GET", "HEAD"] = "GET"
    expect_status: int | list[int] = Field(default=200, description="The status (or statuses) that mean ok.")
    contains: str | None = Field(default=None, max_length=1024, description="Text the body must contain.")
    timeout: Duration = 10.0


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


class HttpActions:
    def __init__(self, settings: HttpSettings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.transport = transport

    @action("http.check", kind=ActionKind.DIAGNOSE, args=CheckArgs)
    def check(self, ctx: ActionContext, args: CheckArgs) -> dict[str, Any]:
        """Request a URL (GET or HEAD) on an allowed host and judge the answer by status and body text.

        Output: `status`, `ok`, `elapsed_ms`, `reason` (why not ok). Redirects are followed only on the
        same host; a redirect elsewhere is answered as it is (not ok unless its status is expected).
        """
        host = _origin(args.url)[1]
        if not self.settings.allows(host):
            raise PermanentError(f"http.check may not call {host}: it is not in the settings' plugins.http."
                                 "allow_hosts")
        timeout = min(args.timeout, max(0.1, ctx.remaining()))
        started = time.monotonic()
        status, body, final = self._fetch(args, timeout)
        elapsed = round((time.monotonic() - started) * 1000, 1)
        expected = args.expect_status if isinstance(args.expect_status, list) else [args.expect_status]
        reason = ""
        if status not in expected:
            reason = f"status {status}, expected {', '.join(map(str, expected))}"
        elif args.contains is not None and args.contains not in body:
            reason = f"the body does not contain {args.contains!r}"
        return {"status": status, "ok": not reason, "elapsed_ms": elapsed, "reason": reason, "url": redact(final)}

    def _fetch(self, args: CheckArgs, timeout: float) -> tuple[int, str, str]:
        import httpx  # here, not at module level: httpx pulls in its CLI (rich, click: ~10 MB) on import
        url = args.url
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, transport=self.transport) as http:
                for _ in range(MAX_REDIRECTS + 1):
                    with http.stream(args.method, url) as response:
                        location = response.headers.get("location")
                        nxt = urljoin(url, location) if response.is_redirect and location else None
                        if nxt is None or _origin(nxt) != _origin(url):
                            return response.status_code, _read(response), url
                    url = nxt
        except httpx.TimeoutException as exc:
            raise TransientError(f"{_origin(url)[1]} did not answer within {timeout:g}s") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"cannot reach {_origin(url)[1]}: {exc}") from exc
        raise PermanentError(f"more than {MAX_REDIRECTS} redirects from {args.url}")


def _read(response: httpx.Response) -> str:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY:
            break
    return b"".join(chunks)[:MAX_BODY].decode("utf-8", errors="replace")
