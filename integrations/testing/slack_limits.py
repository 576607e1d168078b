"""Slack's documented Web API rate limits, as token buckets, for the Slack fake.

Slack's rate-limit guide (https://api.slack.com/docs/rate-limits, "Overview" table) says limits apply
per method per app per workspace; `chat.postMessage` is a special tier that "generally allows posting
one message per second per channel" with short bursts above one tolerated; `chat.update` is Tier 3,
"50+ per minute", sporadic bursts welcome. Beyond a limit Slack answers HTTP 429 with a `Retry-After`
header (whole seconds). The guide names no burst size, so the bursts below are our assumption.

`time_scale` shrinks time: 0.01 refills buckets 100x faster and announces a `Retry-After` 100x shorter
(then a decimal, which real Slack never sends), so the suite can exercise the limits without waiting.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    """`per_second` sustained, `burst` at once after a quiet spell; `scope` is what one bucket covers."""

    per_second: float
    burst: float
    scope: str  # "channel": one bucket per channel; "workspace": one for the whole app


SLACK_TIERS: dict[str, Tier] = {
    "chat.postMessage": Tier(per_second=1.0, burst=5, scope="channel"),
    "chat.update": Tier(per_second=50 / 60, burst=10, scope="workspace"),
}


class RateLimits:
    """Per-method token buckets; `check` answers how long to wait (0: go ahead, a token was taken).

    Also notes who ignores a `Retry-After`: a call of a method to a channel before the wait announced to
    an earlier call of it to that channel has elapsed counts in `too_soon` (Slack makes limits longer for
    clients that hammer). Per channel, as a sender paces per channel: a workspace-wide bucket (Tier 3)
    refusing a second channel is a fresh 429, not a retry too soon."""

    def __init__(self, tiers: dict[str, Tier] | None = None, time_scale: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.tiers = dict(SLACK_TIERS if tiers is None else tiers)
        self.time_scale = time_scale
        self.clock = clock
        self.too_soon = 0
        self._tokens: dict[tuple[str, str], tuple[float, float]] = {}  # bucket -> (tokens, at)
        self._blocked: dict[tuple[str, str], float] = {}  # (method, channel) -> end of the wait announced
        self._lock = threading.Lock()

    def check(self, method: str, channel: str) -> float:
        """0.0 if the call may proceed (and it is counted), else the `Retry-After` to announce, in the
        fake's (scaled) seconds."""
        tier = self.tiers.get(method)
        if tier is None:
            return 0.0
        key = (method, channel if tier.scope == "channel" else "*")
        now = self.clock()
        rate = tier.per_second / self.time_scale  # tokens per real second
        told = (method, channel)
        with self._lock:
            if now < self._blocked.get(told, -math.inf):
                self.too_soon += 1
            tokens, at = self._tokens.get(key, (tier.burst, now))
            tokens = min(tier.burst, tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._tokens[key] = (tokens - 1.0, now)
                return 0.0
            self._tokens[key] = (tokens, now)
            # Slack announces whole seconds: the wait for one token, rounded up, then scaled
            wait = max(1, math.ceil((1.0 - tokens) / tier.per_second - 1e-9)) * self.time_scale
            self._blocked[told] = max(self._blocked.get(told, -math.inf), now + wait)
            return wait


def retry_after_header(seconds: float) -> str:
    """Whole seconds as Slack sends them; a scaled (fractional) wait keeps its decimals."""
    return str(int(seconds)) if seconds == int(seconds) else f"{seconds:.6f}"
