"""Reusable threads for running actions under a timeout.

A step's action runs in a worker so that a hung call cannot hang the run past its timeout. Starting a
thread per step costs more than most diagnose steps, so finished workers wait for the next call; a
worker whose call outlived its timeout is simply abandoned and rejoins the pool if it ever returns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class _Call:
    __slots__ = ("done", "error", "fn", "value")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class WorkerPool:
    """Runs callables on pooled daemon threads; `call` returns (finished, value) within the timeout."""

    def __init__(self, max_idle: int = 32) -> None:
        self.max_idle = max_idle
        self._idle: list[queue.SimpleQueue[_Call]] = []
        self._lock = threading.Lock()

    def call(self, fn: Callable[[], Any], timeout: float, name: str = "step") -> tuple[bool, Any]:
        """Run `fn` on a worker. Returns (True, value) or (False, None) when the timeout passed first.
        Exceptions raised by `fn` propagate to the caller."""
        job = _Call(fn)
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._work, args=(inbox,), name=f"runbook-{name}", daemon=True).start()
        inbox.put(job)
        if not job.done.wait(timeout):
            return False, None
        if job.error is not None:
            raise job.error
        return True, job.value

    def _work(self, inbox: queue.SimpleQueue[_Call]) -> None:
        while True:
            job = inbox.get()
            try:
                job.value = job.fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who decides what it means
                job.error = exc
            with self._lock:
                if len(self._idle) >= self.max_idle:
                    job.done.set()
                    return
                self._idle.append(inbox)
            job.done.set()
