"""Whether the run store can commit, for readiness: honest, yet not a write per request.

A read says little (a full disk or a read-only database still answers reads), so readiness commits a
heartbeat row, at most once per `interval`; and a commit that failed on any request makes the server
not ready for `interval` after it, since a probe that rewrites one row in place can succeed where new
rows no longer fit. The same pass closes ended refusal windows, so their summaries are written even
when the refusals stop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from engine.errors import StoreError
from engine.run_store import REFUSAL_LIMITS, RefusalLimits, RunStore

log = logging.getLogger("runbook.server")


class CommitHealth:
    def __init__(self, store: RunStore, *, interval: float = 5.0, limits: RefusalLimits = REFUSAL_LIMITS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.interval = interval
        self.limits = limits
        self.clock = clock
        self._lock = threading.Lock()
        self._probed = -float("inf")
        self._probe_error: str | None = None
        self._failed: tuple[float, str] | None = None  # (when, why) of the last commit a request saw fail

    def failed(self, error: str) -> None:
        """A request could not commit: not ready until `interval` passes without another such failure."""
        with self._lock:
            self._failed = (self.clock(), error)

    def problem(self) -> str | None:
        """Why the store cannot commit now (None: it can)."""
        with self._lock:
            now = self.clock()
            if now - self._probed >= self.interval:
                self._probed = now
                self._probe_error = self._probe()
            if self._probe_error is not None:
                return f"the run store cannot commit: {self._probe_error}"
            if self._failed is not None and now - self._failed[0] < self.interval:
                return f"the run store could not commit {now - self._failed[0]:.0f}s ago: {self._failed[1]}"
        return None

    def _probe(self) -> str | None:
        try:
            self.store.probe_commit(time.time())
        except StoreError as exc:
            log.error("readiness: the run store cannot commit: %s", exc)
            return str(exc)
        try:
            self.store.close_refusal_windows(time.time(), self.limits)
        except StoreError as exc:
            log.warning("could not write the summaries of refused requests: %s", exc)
        return None
