"""Plain types the client is built from: retry policy, the raw response, the shared request counter.

Kept apart from `client.py` so the client module holds only the verbs and the retry loop.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3


@dataclass
class RequestCounter:
    """Requests made, shared by every view (impersonating, deadline-bound) of one client."""

    value: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bump(self) -> None:
        with self.lock:
            self.value += 1


@dataclass
class ServerClock:
    """The API server's clock, learnt from its `Date` headers.

    Ages (a Lease renewed 45 s ago, runs missed since the last schedule) are measured against the
    control plane's time, not this process's: a skewed engine clock must not make a healthy kubelet
    look stale. Until the server has answered, the local clock stands in.
    """

    skew: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, date_header: str | None, received_at: float) -> None:
        if not date_header:
            return
        try:
            server = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError):
            return
        with self.lock:
            # `Date` has one-second resolution; keep the estimate unless it is off by more than that
            if abs(server - received_at - self.skew) >= 1.0:
                self.skew = server - received_at

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.skew, UTC)


@dataclass(frozen=True)
class Policy:
    """Timeouts and retries; defaults fit an API server under incident load."""

    call_timeout: float = 10.0
    connect_timeout: float = 5.0
    attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 8.0
    page_size: int = 2000


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    data: bytes

    def json(self) -> dict[str, Any]:
        if not self.data:
            return {}
        value = json.loads(self.data)
        return value if isinstance(value, dict) else {"items": value}


def is_read(method: str, params: Mapping[str, Any] | None) -> bool:
    """True when sending the request twice cannot change anything: a read, or a write under `dryRun=All`."""
    return method in ("GET", "HEAD") or (params or {}).get("dryRun") == "All"


def reason(exc: urllib3.exceptions.HTTPError) -> str:
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    return text.split(": ", 1)[-1][:200] if ": " in text else text[:200]
