"""Background threads with one start/stop/alive: the server's sweeper, the chat sender and the run workers.

Each owner gives a `body` that runs until `stopping` is set; `stop` sets it, calls the owner's `on_stop`
(to wake a thread blocked on a queue or an event), and joins every thread within one deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Background:
    def __init__(self, name: str, body: Callable[[], None], count: int = 1,
                 on_stop: Callable[[], None] = lambda: None) -> None:
        self.name = name
        self.body = body
        self.count = count
        self.on_stop = on_stop
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.stopping.clear()
        self._threads = [self._spawn(i) for i in range(self.count)]

    def _spawn(self, index: int) -> threading.Thread:
        name = self.name if self.count == 1 else f"{self.name}-{index}"
        thread = threading.Thread(target=self.body, name=name, daemon=True)
        thread.start()
        return thread

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.on_stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True as soon as a stop was asked for."""
        return self.stopping.wait(seconds)

    def alive(self) -> int:
        """How many of the threads are running."""
        return sum(t.is_alive() for t in self._threads)

    def revive(self) -> list[str]:
        """Start a new thread for each one that died (a bug that escaped its boundary); their names."""
        if self.stopping.is_set():
            return []
        dead = [i for i, thread in enumerate(self._threads) if not thread.is_alive()]
        names = [self._threads[i].name for i in dead]
        for i in dead:
            self._threads[i] = self._spawn(i)
        return names
