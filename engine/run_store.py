"""SQLite run store: runs, steps, approval decisions, attached alerts and an append-only audit log.

Every state change is committed before the engine moves on, so a killed process loses no completed
step. Several threads (and later several replicas) share it; claims are atomic updates.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.errors import UnknownRunError
from engine.records import AuditEntry, Decision, RunRecord, RunStatus, StepRecord, StepStatus
from engine.store_schema import (
    create_or_migrate,
    decode_identity,
    dumps,
    owner_is_gone,
    run_from_row,
    step_from_row,
)

_ACTIVE = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)


class RunStore:
    """Durable run state.

    A running run is owned by one process (`instance`) under a lease that it renews at every step; any
    process, on any replica, marks a run whose lease ran out as `interrupted`. Commits are fully synced:
    an approval or an executed change must survive a machine crash, not only a process crash.
    """

    LEASE_GRACE = 60.0  # seconds a run's owner may overrun its step's timeout before others give up on it

    def __init__(self, path: str | Path, instance: str | None = None) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.instance = instance or f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        create_or_migrate(self._db)
        self._columns = [c[0] for c in self._db.execute("SELECT * FROM runs LIMIT 0").description]

    def close(self) -> None:
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._db.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot to read from. Each thread reads on its own connection, so readers (request
        handlers, the sweeper) never queue behind the writer's lock or fsync; WAL keeps them consistent."""
        if self.path == ":memory:":  # one in-memory database per connection: share the writer's
            with self._lock:
                yield self._db
            return
        reader: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if reader is None:
            reader = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            reader.execute("PRAGMA query_only=ON")
            self._local.reader = reader
            with self._lock:
                self._readers.append(reader)
        reader.execute("BEGIN")
        try:
            yield reader
        finally:
            reader.execute("COMMIT")

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locking) transaction; integrations may keep their own tables in it too.

        `durable=False` skips the fsync for records that are safe to lose in a machine crash (a read-only
        step's result: the run is then declared interrupted, nothing was changed); decisions, claims and
        executed changes are always synced."""
        with self._lock:
            if not durable:
                self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                if not durable:
                    self._db.execute("PRAGMA synchronous=FULL")

    # runs -----------------------------------------------------------------------------------------

    def create_run(
        self,
        runbook: str,
        definition: str,
        params: dict[str, Any],
        requester: str,
        trigger: dict[str, Any] | None = None,
        *,
        auto_approve: bool = False,
        dry_run: bool = False,
        dedup_key: str | None = None,
        cooldown: float = 0.0,
    ) -> tuple[str, bool]:
        """Create a pending run and return (run_id, True); with `dedup_key`, return (existing_id, False)
        instead while a run with that key is active or finished less than `cooldown` seconds ago."""
        now = time.time()
        with self.transaction() as db:
            if dedup_key is not None:
                existing = self._find_by_dedup_key(db, dedup_key, cooldown)
                if existing:
                    return existing, False
            run_id = uuid.uuid4().hex[:12]
            db.execute(
                "INSERT INTO runs (id, runbook, status, params, requester, trigger, definition, auto_approve,"
                " dry_run, dedup_key, owner, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, runbook, RunStatus.PENDING, dumps(params), requester, dumps(trigger or {}),
                 definition, int(auto_approve), int(dry_run), dedup_key, self.instance, now, now),
            )
            self._audit(db, requester, "run.requested", run_id, {"runbook": runbook, "params": params})
        return run_id, True

    def find_by_dedup_key(self, key: str, cooldown: float | None = None) -> str | None:
        """The newest run with `key`; with `cooldown`, only one still active or finished less than
        `cooldown` seconds ago (the rule `create_run` deduplicates by)."""
        with self._read() as db:
            return self._find_by_dedup_key(db, key, cooldown)

    @staticmethod
    def _find_by_dedup_key(db: sqlite3.Connection, key: str, cooldown: float | None) -> str | None:
        if cooldown is None:
            row = db.execute("SELECT id FROM runs WHERE dedup_key = ? ORDER BY created_at DESC LIMIT 1",
                             (key,)).fetchone()
        else:
            row = db.execute(
                "SELECT id FROM runs WHERE dedup_key = ? AND (status IN (?, ?, ?) OR finished_at > ?)"
                " ORDER BY created_at DESC LIMIT 1",
                (key, *_ACTIVE, time.time() - cooldown),
            ).fetchone()
        return str(row[0]) if row else None

    def get_run(self, run_id: str) -> RunRecord:
        with self._read() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise UnknownRunError(f"no run with id {run_id!r}")
            steps = db.execute("SELECT * FROM steps WHERE run_id = ? ORDER BY idx", (run_id,)).fetchall()
        return run_from_row(dict(zip(self._columns, row, strict=True)), [step_from_row(s) for s in steps])

    def list_runs(
        self, runbook: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        query, args = "SELECT id FROM runs WHERE 1=1", list[Any]()
        if runbook:
            query, args = query + " AND runbook = ?", [*args, runbook]
        if status:
            query, args = query + " AND status = ?", [*args, status]
        with self._read() as db:
            ids = [r[0] for r in db.execute(query + " ORDER BY created_at DESC LIMIT ?", (*args, limit))]
        return [self.get_run(i) for i in ids]

    def run_ids(self, statuses: tuple[RunStatus, ...]) -> list[str]:
        marks = ",".join("?" * len(statuses))
        with self._read() as db:
            rows = db.execute(f"SELECT id FROM runs WHERE status IN ({marks}) ORDER BY created_at", statuses)
            return [r[0] for r in rows]

    def approvals_due(self, now: float) -> list[str]:
        """Runs still awaiting a decision whose approval window closed before `now`."""
        with self._read() as db:
            rows = db.execute("SELECT id FROM runs WHERE status = ? AND approval_deadline < ? ORDER BY id",
                                    (RunStatus.AWAITING_APPROVAL, now)).fetchall()
        return [r[0] for r in rows]

    def update_run(self, run_id: str, audit: tuple[str, str, dict[str, Any]] | None = None, **fields: Any) -> bool:
        """Update a run this process owns while it is running (and append `audit` = (actor, action, detail) in
        the same commit); False when it no longer owns it (another process declared it interrupted), so a late
        writer cannot overwrite a final state."""
        fields["updated_at"] = time.time()
        if "status" in fields and RunStatus(fields["status"]).finished:
            fields.setdefault("finished_at", fields["updated_at"])
        names = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as db:
            cur = db.execute(f"UPDATE runs SET {names} WHERE id = ? AND status = ? AND owner = ?",
                             (*fields.values(), run_id, RunStatus.RUNNING, self.instance))
            if cur.rowcount != 1:
                return False
            if audit is not None:
                self._audit(db, audit[0], audit[1], run_id, audit[2])
            return True

    def claim(self, run_id: str, expected: RunStatus, new: RunStatus, lease: float = 300.0, **fields: Any) -> bool:
        """Atomically move a run from `expected` to `new` (and own it); False when someone else got there first."""
        now = time.time()
        fields.update(status=new, updated_at=now, owner=self.instance, lease_until=now + lease)
        if new.finished:
            fields.setdefault("finished_at", now)
        names = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as db:
            cur = db.execute(f"UPDATE runs SET {names} WHERE id = ? AND status = ?",
                             (*fields.values(), run_id, expected))
            return cur.rowcount == 1

    def recover_interrupted(self) -> list[str]:
        """Mark running runs whose owner's lease ran out (a process or replica that died) as interrupted;
        runs awaiting approval keep waiting. Safe to call from any process at any time."""
        now = time.time()
        with self.transaction() as db:
            candidates = db.execute(
                "SELECT r.id, s.step_id, r.owner, r.lease_until FROM runs r"
                " LEFT JOIN steps s ON s.run_id = r.id AND s.status = ? WHERE r.status = ?",
                (StepStatus.RUNNING, RunStatus.RUNNING),
            ).fetchall()
            rows = [(run_id, step_id) for run_id, step_id, owner, lease in candidates
                    if lease is None or lease < now or owner_is_gone(owner)]
            for run_id, step_id in rows:
                reason = f"the engine stopped while step {step_id!r} was running" if step_id else "the engine stopped"
                reason += "; its effect is unknown, check the target before re-running"
                db.execute("UPDATE steps SET status = ?, error = ?, finished_at = ? WHERE run_id = ? AND status = ?",
                           (StepStatus.INTERRUPTED, reason, now, run_id, StepStatus.RUNNING))
                db.execute("UPDATE runs SET status = ?, error = ?, updated_at = ?, finished_at = ? WHERE id = ?",
                           (RunStatus.INTERRUPTED, reason, now, now, run_id))
                self._audit(db, "engine", "run.interrupted", run_id, {"reason": reason})
        return [r[0] for r in rows]

    # steps ----------------------------------------------------------------------------------------

    def save_step(self, run_id: str, step: StepRecord, cursor: int | None = None, lease: float | None = None,
                  durable: bool = True) -> bool:
        """Insert or replace a step's record in one commit. With `cursor`, also move the run's cursor and
        renew this process's lease, but only while it still owns the run: False (nothing written) when
        another process declared the run interrupted meanwhile."""
        with self.transaction(durable) as db:
            if cursor is not None:
                now = time.time()
                cur = db.execute("UPDATE runs SET cursor = ?, updated_at = ?, lease_until = COALESCE(?, lease_until)"
                                 " WHERE id = ? AND status = ? AND owner = ?",
                                 (cursor, now, now + lease if lease else None, run_id, RunStatus.RUNNING,
                                  self.instance))
                if cur.rowcount != 1:
                    return False
            db.execute(
                "INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, step.index, step.id, step.action, step.title, step.status, step.attempts,
                 dumps(step.inputs), dumps(step.output),
                 dumps([f.model_dump(mode="json") for f in step.findings]),
                 step.proposal.model_dump_json() if step.proposal else None,
                 dumps([c.model_dump(mode="json") for c in step.changes]), step.error,
                 step.started_at, step.finished_at),
            )
        return True

    # decisions, alerts, audit ---------------------------------------------------------------------

    def record_decision(self, decision: Decision, awaiting: bool = True) -> bool:
        """Store a decision unless the step already has one: the first decision wins, atomically, so two
        people clicking at once cannot have an approval overrule a rejection. With `awaiting`, also only
        while the run still waits on that step. False when refused."""
        with self.transaction() as db:
            taken = db.execute("SELECT 1 FROM decisions WHERE run_id = ? AND step_id = ?",
                               (decision.run_id, decision.step)).fetchone()
            waiting = db.execute("SELECT 1 FROM runs WHERE id = ? AND status = ? AND awaiting_step = ?",
                                 (decision.run_id, RunStatus.AWAITING_APPROVAL, decision.step)).fetchone()
            if taken or (awaiting and not waiting):
                return False
            db.execute(
                "INSERT INTO decisions (run_id, step_id, decision, actor, at, reason, identity)"
                " VALUES (?,?,?,?,?,?,?)",
                (decision.run_id, decision.step, decision.decision, decision.actor, decision.at, decision.reason,
                 dumps(asdict(decision.identity)) if decision.identity else None),
            )
            detail: dict[str, Any] = {"step": decision.step, "reason": decision.reason}
            if decision.identity:
                detail["as"] = str(decision.identity)
            self._audit(db, decision.actor, f"step.{decision.decision}", decision.run_id, detail)
        return True

    def decisions(self, run_id: str) -> list[Decision]:
        with self._read() as db:
            rows = db.execute(
                "SELECT run_id, step_id, decision, actor, at, reason, identity FROM decisions"
                " WHERE run_id = ? ORDER BY id",
                (run_id,),
            ).fetchall()
        return [Decision(r[0], r[1], r[2], r[3], r[4], r[5], decode_identity(r[6])) for r in rows]

    def attach_alert(self, run_id: str, fingerprint: str, status: str, payload: dict[str, Any]) -> None:
        """Keep an alert with the run it belongs to. Not synced to disk: the dedup decision is in the runs
        table, and an alert lost in a machine crash is re-sent by Alertmanager on its repeat interval."""
        with self.transaction(durable=False) as db:
            db.execute("INSERT INTO alerts (run_id, fingerprint, status, received_at, payload) VALUES (?,?,?,?,?)",
                       (run_id, fingerprint, status, time.time(), dumps(payload)))

    def alerts(self, run_id: str) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT fingerprint, status, received_at, payload FROM alerts WHERE run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
        return [{"fingerprint": f, "status": s, "received_at": t, "alert": json.loads(p)} for f, s, t, p in rows]

    def audit(self, actor: str, action: str, run_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
        with self.transaction() as db:
            self._audit(db, actor, action, run_id, detail or {})

    @staticmethod
    def _audit(db: sqlite3.Connection, actor: str, action: str, run_id: str | None, detail: dict[str, Any]) -> None:
        db.execute("INSERT INTO audit (at, actor, action, run_id, detail) VALUES (?,?,?,?,?)",
                   (time.time(), actor, action, run_id, dumps(detail)))

    def audit_log(self, run_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        query = "SELECT id, at, actor, action, run_id, detail FROM audit"
        args: tuple[Any, ...] = (limit,)
        if run_id:
            query, args = query + " WHERE run_id = ?", (run_id, limit)
        with self._read() as db:
            rows = db.execute(query + " ORDER BY id LIMIT ?", args).fetchall()
        return [AuditEntry(i, at, actor, action, rid, json.loads(d)) for i, at, actor, action, rid, d in rows]
