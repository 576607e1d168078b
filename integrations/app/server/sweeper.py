"""Periodic housekeeping: renew the leases of the runs this process carries (the heartbeat), take over
the runs of a dead process or replica once their lease ran out (those it left sending a change are
re-read by a worker, never re-sent: `Executor.resume` settles them), time out runs whose approval window
closed, pick up pending runs nobody queued (a crash between creating and queueing), and replace dead
workers.

Expiry emits `run_finished` like any other end, so the timeout appears in the run's thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from engine.background import Background
from engine.errors import RunbookError
from engine.executor import Executor
from engine.records import RunStatus
from engine.run_store import RunStore
from integrations.app.server.workers import RunQueue

log = logging.getLogger("runbook.server")


class Sweeper:
    def __init__(self, store: RunStore, executor: Executor, pool: RunQueue, *, interval: float = 5.0,
                 lease: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.executor = executor
        self.pool = pool
        self.interval = interval
        self.lease = lease if lease is not None else max(3 * interval, 10.0)
        executor.lease = self.lease  # the heartbeat below keeps runs in progress leased
        self.clock = clock
        self._thread = Background("runbook-sweeper", self._loop)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._thread.stop(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.alive() == 1

    def _loop(self) -> None:
        while not self._thread.wait(self.interval):
            try:
                self.sweep()
            except RunbookError as exc:
                log.error("sweep failed: %s", exc)

    def sweep(self) -> list[str]:
        """One pass; returns the ids of runs it timed out."""
        expired = []
        self.store.heartbeat(self.executor.active_runs(), self.lease)
        for run_id in self.store.take_over(lease=self.lease):
            log.warning("run %s taken over: the process carrying it stopped renewing its lease", run_id)
            self.pool.submit(run_id, force=True)
        for run_id in self.store.take_over_in_flight(lease=self.lease):  # a worker re-reads it (Executor._settle)
            log.info("run %s taken over: its process stopped while sending a change; re-reading the target", run_id)
            self.pool.submit(run_id, force=True)
        for run_id in self.store.approvals_due(self.clock()):
            try:
                self.executor.expire(run_id)
                expired.append(run_id)
            except RunbookError as exc:
                log.error("could not time out run %s: %s", run_id, exc)
        for run_id in self.store.recover_interrupted():
            log.warning("run %s was interrupted: the process running it stopped", run_id)
        for run_id in self.store.run_ids((RunStatus.PENDING,)):
            self.pool.submit(run_id)
        self.pool.ensure_alive()
        return expired
