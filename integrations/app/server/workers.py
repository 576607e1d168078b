"""A bounded pool of worker threads that carry runs forward, off the request path.

Requests only *enqueue* run ids; `executor.resume` runs here. Capacity is checked by reserving a slot
before a run is created, so a full queue turns into a 503 for Alertmanager (which retries) instead of
a stored run nobody executes. A run queued twice is harmless: the executor's claims are atomic.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from engine.background import Background
from engine.errors import RunbookError

log = logging.getLogger("runbook.server")


class RunQueue:
    def __init__(self, resume: Callable[[str], Any], *, workers: int, capacity: int) -> None:
        self.resume = resume
        self.size = workers
        self.capacity = capacity
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._queued: set[str] = set()
        self._reserved = 0
        self._lock = threading.Lock()
        self._threads = Background("runbook-worker", self._work, count=workers, on_stop=self._wake_all)
        self.busy = 0

    # lifecycle ------------------------------------------------------------------------------------

    @property
    def _stopping(self) -> bool:
        return self._threads.stopping.is_set()

    def start(self) -> None:
        self._threads.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work; runs in progress finish their current step sequence (bounded by `timeout`)."""
        self._threads.stop(timeout)

    def _wake_all(self) -> None:
        for _ in range(self.size):
            self._queue.put(None)

    def alive(self) -> int:
        return self._threads.alive()

    def ensure_alive(self) -> int:
        """Replace dead workers (a bug that escaped the boundary); returns how many were replaced."""
        replaced = self._threads.revive()
        for name in replaced:
            log.error("worker %s died; started a new one", name)
        return len(replaced)

    # queueing -------------------------------------------------------------------------------------

    def depth(self) -> int:
        with self._lock:
            return len(self._queued)

    def reserve(self) -> bool:
        """Hold one queue slot for a run about to be created; False when the queue is full."""
        with self._lock:
            if self._stopping or len(self._queued) + self._reserved >= self.capacity:
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        """Give back a reserved slot that was not used (the run was deduplicated or invalid)."""
        with self._lock:
            self._reserved = max(0, self._reserved - 1)

    def submit(self, run_id: str, reserved: bool = False, force: bool = False) -> bool:
        """Queue a run to be resumed. With `reserved`, uses the slot from `reserve`; `force` ignores the
        capacity (a recorded approval must be executed even during an alert storm). Both always succeed."""
        with self._lock:
            if reserved:
                self._reserved = max(0, self._reserved - 1)
            if run_id in self._queued:
                return True
            if not (reserved or force) and len(self._queued) + self._reserved >= self.capacity:
                return False
            self._queued.add(run_id)
        self._queue.put(run_id)
        return True

    # work -----------------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            run_id = self._queue.get()
            if run_id is None or self._stopping:  # queued runs stay pending in the store; the next start takes them
                return
            with self._lock:
                self._queued.discard(run_id)
                self.busy += 1
            try:
                self.resume(run_id)
            except RunbookError as exc:
                log.error("run %s could not be carried forward: %s", run_id, exc)
            finally:
                with self._lock:
                    self.busy -= 1
