"""The one start/stop/alive helper behind the sweeper, the chat sender and the run workers."""

from __future__ import annotations

import queue
import threading

from engine.background import Background


def test_threads_run_until_stopped_and_stop_wakes_blocked_ones() -> None:
    inbox: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []
    lock = threading.Lock()

    def body() -> None:
        while (item := inbox.get()) is not None:
            with lock:
                seen.append(item)

    workers = Background("test-worker", body, count=3, on_stop=lambda: [inbox.put(None) for _ in range(3)])
    workers.start()
    assert workers.alive() == 3
    for item in ("a", "b", "c"):
        inbox.put(item)
    workers.stop(timeout=5)
    assert workers.alive() == 0 and sorted(seen) == ["a", "b", "c"]


def test_wait_returns_at_once_on_stop_and_dead_threads_are_revived() -> None:
    ticks: list[int] = []
    crash = threading.Event()

    def body() -> None:
        while not loop.wait(0.01):
            ticks.append(1)
            if crash.is_set():
                return  # a bug that escaped: the thread is gone

    loop = Background("test-loop", body)
    loop.start()
    crash.set()
    loop._threads[0].join(5)
    assert loop.alive() == 0
    crash.clear()
    assert loop.revive() == ["test-loop"] and loop.alive() == 1
    loop.stop(timeout=5)
    assert loop.alive() == 0 and loop.revive() == []  # nothing is revived once stopping
