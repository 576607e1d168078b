"""Verification of Slack's request signatures (`v0=` HMAC-SHA256 over `v0:<timestamp>:<body>`).

The check itself is `slack_sdk.signature.SignatureVerifier`; this adds the reason for a refusal so the
audit log says whether a request was forged, tampered with or replayed (stale timestamp).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from slack_sdk.signature import Clock, SignatureVerifier

from engine.run_store import RunStore

WINDOW = 300  # seconds; Slack's own recommendation and SignatureVerifier's window


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class ReplayGuard:
    """Remembers the signatures of accepted requests for twice the timestamp window, so a captured request
    replayed within the window is refused too. Kept in the run store, so every replica shares it."""

    def __init__(self, store: RunStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def first_time(self, signature: str) -> bool:
        return self.store.first_seen(signature, self.clock(), 2 * WINDOW)


class Verifier:
    def __init__(self, signing_secret: str, clock: Callable[[], float] = time.time,
                 first_time: Callable[[str], bool] | None = None) -> None:
        self.clock = clock
        self.first_time = first_time
        self._verifier = SignatureVerifier(signing_secret, clock=_Clock(clock))

    def problem(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """None for an authentic request, else why it is refused."""
        timestamp = headers.get("x-slack-request-timestamp")
        signature = headers.get("x-slack-signature")
        if not timestamp or not signature:
            return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return "malformed X-Slack-Request-Timestamp"
        age = abs(self.clock() - int(timestamp))
        if age > WINDOW:
            return f"stale timestamp ({int(age)}s old; replayed?)"
        if not self._verifier.is_valid(body, timestamp, signature):
            return "signature mismatch (forged or tampered)"
        if self.first_time is not None and not self.first_time(signature):
            return "replayed request (this exact signed request was already accepted)"
        return None


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would send for `body`: for tests, the demo and local tooling."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
