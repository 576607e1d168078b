"""Small HTTP helpers shared by the routes: bounded body reads and JSON errors that say why."""

from __future__ import annotations

import base64
import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


class Refused(Exception):
    """A request the server answers with an error: the status, the reason it shows, and the refusal-metric
    labels. Raised by handlers; the app's exception handler is the one place that turns it into a response."""

    def __init__(self, status: int, reason: str, *, endpoint: str = "", metric: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.endpoint = endpoint
        self.metric = metric
        self.headers = headers


class BodyTooLarge(Exception):
    """The request body exceeds the configured limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing to buffer more than `limit` bytes (checked on Content-Length and while streaming)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit} (max_body_bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body exceeds the limit of {limit} bytes (max_body_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def error(status: int, reason: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": reason, **extra}, status_code=status, headers=headers)


def check_webhook_auth(header: str | None, token: str | None, basic: str | None) -> str | None:
    """None when the Authorization header carries the configured bearer token or basic credentials
    (either may be configured; none configured means open), else the reason for a 401."""
    if token is None and basic is None:
        return None
    if not header:
        return "missing Authorization header (configure http_config in the Alertmanager receiver)"
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and token is not None:
        return None if hmac.compare_digest(value.encode(), token.encode()) else "invalid bearer token"
    if scheme.lower() == "basic" and basic is not None:
        try:
            decoded = base64.b64decode(value, validate=True)
        except ValueError:
            return "malformed basic credentials"
        return None if hmac.compare_digest(decoded, basic.encode()) else "invalid basic credentials"
    expected = " or ".join(s for s, v in (("Bearer", token), ("Basic", basic)) if v is not None)
    return f"unsupported Authorization scheme {scheme!r}; expected {expected}"
