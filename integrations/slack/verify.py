"""Verification of Slack's request signatures (`v0=` HMAC-SHA256 over `v0:<timestamp>:<body>`).

The check itself is `slack_sdk.signature.SignatureVerifier`; this adds the reason for a refusal so the
audit log says whether a request was forged, tampered with or replayed (stale timestamp).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from slack_sdk.signature import Clock, SignatureVerifier

WINDOW = 300  # seconds; Slack's own recommendation and SignatureVerifier's window


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class Verifier:
    def __init__(self, signing_secret: str, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._verifier = SignatureVerifier(signing_secret, clock=_Clock(clock))

    def problem(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """None for an authentic request, else why it is refused."""
        timestamp = headers.get("x-slack-request-timestamp")
        signature = headers.get("x-slack-signature")
        if not timestamp or not signature:
            return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
        try:
            age = abs(self.clock() - int(timestamp))
        except ValueError:
            return "malformed X-Slack-Request-Timestamp"
        if age > WINDOW:
            return f"stale timestamp ({int(age)}s old; replayed?)"
        if not self._verifier.is_valid(body, timestamp, signature):
            return "signature mismatch (forged or tampered)"
        return None


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would send for `body`: for tests, the demo and local tooling."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
