"""The run store's statements, written once in the SQL both backends speak.

A backend supplies connections (`_write`, `_read`), its row-locking clauses and its schema; everything
else is here, so SQLite and PostgreSQL cannot drift apart in what a claim or a decision means. Under
SQLite a write transaction locks the whole database (so `FOR UPDATE` is empty); under PostgreSQL the
same statements lock rows, and the unique constraints decide races between replicas.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
import uuid
from abc import abstractmethod
from contextlib import AbstractContextManager
from dataclasses import asdict
from typing import Any, Protocol

from engine.errors import UnknownRunError
from engine.records import AuditEntry, Decision, Freeze, RunRecord, RunStatus, StepRecord, StepStatus
from engine.redaction import redact_values
from engine.run_store import REFUSAL_LIMITS, OpenRun, OutboxItem, OutboxMessage, RefusalLimits, RefusedRequest, RunStore
from engine.sqlstore import blast, chat, refusals
from engine.sqlstore.codec import decode_identity, dumps, owner_is_gone, run_from_row, step_from_row

ACTIVE = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)
RUN_COLUMNS = ("id", "runbook", "status", "params", "requester", "trigger", "definition", "auto_approve", "dry_run",
               "cursor", "awaiting_step", "approval_deadline", "error", "dedup_key", "created_at", "updated_at",
               "finished_at")
STEP_COLUMNS = ("run_id, idx, step_id, action, title, status, attempts, inputs, output, findings, proposal, changes,"
                " error, started_at, finished_at")
# a step is written twice (started, finished): the second write replaces the first's columns
SAVE_STEP = (f"INSERT INTO steps ({STEP_COLUMNS}) VALUES ({','.join('?' * 15)})"
             " ON CONFLICT (run_id, idx) DO UPDATE SET "
             + ", ".join(f"{c} = excluded.{c}" for c in STEP_COLUMNS.replace(" ", "").split(",")[2:]))
_RUN_FIELDS = frozenset({"status", "cursor", "awaiting_step", "approval_deadline", "error", "updated_at",
                         "finished_at", "owner", "lease_until"})
# runs whose lease lapsed, or whose owner ran on this host (then `owner_is_gone` asks the OS): only these
# rows are locked by a take-over, never the runs live replicas are carrying
_LAPSED = "(r.lease_until IS NULL OR r.lease_until < ? OR r.owner LIKE ?)"
# a run whose owner was sending an approved change: its step, started, carries the proposal
_IN_FLIGHT = "EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.id AND s.status = ? AND s.proposal IS NOT NULL)"
_MAX_EPOCHS = 10_000  # fencing tokens remembered for runs this process holds; finished runs drop out


def default_instance(replica: str | None = None) -> str:
    """host/pid/random: unique per process, and tells a same-host peer whether the process still lives.
    `replica` names the replica instead of the host (then no peer takes that shortcut)."""
    return f"{replica or socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"


class Db(Protocol):
    """A connection inside a transaction: `execute` takes `?` placeholders and returns a cursor."""

    def execute(self, sql: str, args: Any = ..., /) -> Any: ...


class SqlStore(RunStore):
    """Runs, steps, decisions, alerts and the audit log over a backend's connections."""

    FOR_UPDATE = ""  # row lock for a read that decides a write
    SKIP_LOCKED = ""  # claim rows nobody else is claiming

    def __init__(self, instance: str) -> None:
        self.instance = instance
        self._epochs: dict[str, int] = {}

    @abstractmethod
    def _write(self, durable: bool = True) -> AbstractContextManager[Db]:
        """A write transaction; `durable=False` may skip the sync (for rows that are safe to lose)."""

    @abstractmethod
    def _read(self, snapshot: bool = False) -> AbstractContextManager[Db]:
        """A read-only connection; `snapshot` when several statements must see one consistent state."""

    # runs -----------------------------------------------------------------------------------------

    def create_run(self, runbook: str, definition: str, params: dict[str, Any], requester: str,
                   trigger: dict[str, Any] | None = None, *, auto_approve: bool = False, dry_run: bool = False,
                   dedup_key: str | None = None, cooldown: float = 0.0) -> tuple[str, bool]:
        now = time.time()
        run_id = uuid.uuid4().hex[:12]
        with self._write() as db:
            if dedup_key is not None:
                # The key's row is the unique constraint two replicas meet at: the second waits here for the
                # first to commit, then sees its run.
                db.execute("INSERT INTO dedup_keys (key, run_id) VALUES (?, NULL) ON CONFLICT (key) DO NOTHING",
                           (dedup_key,))
                row = db.execute(f"SELECT run_id FROM dedup_keys WHERE key = ?{self.FOR_UPDATE}",
                                 (dedup_key,)).fetchone()
                if row and row[0] and self._still_absorbs(db, row[0], cooldown):
                    return str(row[0]), False
                db.execute("UPDATE dedup_keys SET run_id = ? WHERE key = ?", (run_id, dedup_key))
            db.execute(
                "INSERT INTO runs (id, runbook, status, params, requester, trigger, definition, auto_approve,"
                " dry_run, dedup_key, owner, epoch, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,0,?,?)",
                (run_id, runbook, RunStatus.PENDING, dumps(params), requester, dumps(trigger or {}),
                 definition, int(auto_approve), int(dry_run), dedup_key, self.instance, now, now),
            )
            self._audit(db, requester, "run.requested", run_id, {"runbook": runbook, "params": params})
        return run_id, True

    @staticmethod
    def _still_absorbs(db: Db, run_id: str, cooldown: float) -> bool:
        row = db.execute("SELECT 1 FROM runs WHERE id = ? AND (status IN (?, ?, ?) OR finished_at > ?)",
                         (run_id, *ACTIVE, time.time() - cooldown)).fetchone()
        return row is not None

    def find_by_dedup_key(self, key: str, cooldown: float | None = None) -> str | None:
        with self._read() as db:
            if cooldown is None:
                row = db.execute("SELECT id FROM runs WHERE dedup_key = ? ORDER BY created_at DESC LIMIT 1",
                                 (key,)).fetchone()
            else:
                row = db.execute(
                    "SELECT id FROM runs WHERE dedup_key = ? AND (status IN (?, ?, ?) OR finished_at > ?)"
                    " ORDER BY created_at DESC LIMIT 1", (key, *ACTIVE, time.time() - cooldown)).fetchone()
        return str(row[0]) if row else None

    def attach_by_dedup_keys(self, alerts: list[tuple[str, str, str, dict[str, Any]]],
                             cooldown: float) -> dict[str, str]:
        """A read, then a write only for what it found: in one process (SQLite) the two cost no round trip."""
        found = self._find_by_dedup_keys([key for key, *_ in alerts], cooldown)
        kept = [(found[key], fingerprint, status, payload) for key, fingerprint, status, payload in alerts
                if key in found]
        if kept:
            self.attach_alerts(kept)
        return found

    def _find_by_dedup_keys(self, keys: list[str], cooldown: float) -> dict[str, str]:
        found: dict[str, str] = {}
        unique = sorted(set(keys))
        if not unique:
            return found
        with self._read() as db:
            for chunk in (unique[i:i + 200] for i in range(0, len(unique), 200)):
                rows = db.execute(
                    f"SELECT dedup_key, id FROM runs WHERE dedup_key IN ({','.join('?' * len(chunk))})"
                    " AND (status IN (?, ?, ?) OR finished_at > ?) ORDER BY created_at",
                    (*chunk, *ACTIVE, time.time() - cooldown)).fetchall()
                found.update({str(key): str(run_id) for key, run_id in rows})  # the newest wins
        return found

    def get_run(self, run_id: str) -> RunRecord:
        runs = self._runs_where("id = ?", [run_id], 1)
        if not runs:
            raise UnknownRunError(f"no run with id {run_id!r}")
        return runs[0]

    def list_runs(self, runbook: str | None = None, status: str | None = None, limit: int = 50) -> list[RunRecord]:
        where, args = "1=1", list[Any]()
        if runbook:
            where, args = where + " AND runbook = ?", [*args, runbook]
        if status:
            where, args = where + " AND status = ?", [*args, status]
        return self._runs_where(where, args, limit)

    def _runs_where(self, where: str, args: list[Any], limit: int) -> list[RunRecord]:
        """Newest first, with their steps: two queries in one snapshot, however many runs (a run each would
        be a round trip each on a database server, and every run's start lists the runs of its runbook)."""
        with self._read(snapshot=True) as db:
            rows = db.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE {where}"
                              " ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()
            steps: dict[str, list[StepRecord]] = {row[0]: [] for row in rows}
            ids = list(steps)
            for chunk in (ids[i:i + 200] for i in range(0, len(ids), 200)):
                marks = ",".join("?" * len(chunk))
                for step in db.execute(f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id IN ({marks})"
                                       " ORDER BY run_id, idx", tuple(chunk)).fetchall():
                    steps[step[0]].append(step_from_row(tuple(step)))
        return [run_from_row(dict(zip(RUN_COLUMNS, row, strict=True)), steps[row[0]]) for row in rows]

    def open_runs(self, runbook: str, limit: int = 200) -> list[OpenRun]:
        marks = ",".join("?" * len(ACTIVE))
        with self._read() as db:
            rows = db.execute("SELECT id, status, requester, created_at, params FROM runs"
                              f" WHERE status IN ({marks}) AND runbook = ? ORDER BY created_at DESC LIMIT ?",
                              (*ACTIVE, runbook, limit)).fetchall()
        return [OpenRun(row[0], RunStatus(row[1]), row[2], row[3], json.loads(row[4])) for row in rows]

    def run_ids(self, statuses: tuple[RunStatus, ...]) -> list[str]:
        marks = ",".join("?" * len(statuses))
        with self._read() as db:
            rows = db.execute(f"SELECT id FROM runs WHERE status IN ({marks}) ORDER BY created_at",
                              tuple(statuses)).fetchall()
        return [r[0] for r in rows]

    def approvals_due(self, now: float) -> list[str]:
        with self._read() as db:
            rows = db.execute("SELECT id FROM runs WHERE status = ? AND approval_deadline < ? ORDER BY id",
                              (RunStatus.AWAITING_APPROVAL, now)).fetchall()
        return [r[0] for r in rows]

    def update_run(self, run_id: str, audit: tuple[str, str, dict[str, Any]] | None = None, **fields: Any) -> bool:
        fields["updated_at"] = time.time()
        finished = "status" in fields and RunStatus(fields["status"]).finished
        if finished:
            fields.setdefault("finished_at", fields["updated_at"])
        names = _assignments(fields)
        with self._write() as db:
            cur = db.execute(f"UPDATE runs SET {names} WHERE id = ? AND status = ? AND owner = ? AND epoch = ?",
                             (*fields.values(), run_id, RunStatus.RUNNING, self.instance, self._epoch(run_id)))
            if cur.rowcount != 1:
                return False
            if audit is not None:
                self._audit(db, audit[0], audit[1], run_id, audit[2])
        if finished:
            self._epochs.pop(run_id, None)
        return True

    def claim(self, run_id: str, expected: RunStatus, new: RunStatus, lease: float = 300.0, **fields: Any) -> bool:
        now = time.time()
        fields.update(status=new, updated_at=now, owner=self.instance, lease_until=now + lease)
        if new.finished:
            fields.setdefault("finished_at", now)
        with self._write() as db:
            row = db.execute(f"UPDATE runs SET {_assignments(fields)}, epoch = epoch + 1 WHERE id = ? AND status = ?"
                             " RETURNING epoch", (*fields.values(), run_id, expected)).fetchone()
        if row is None:
            return False
        self._hold(run_id, int(row[0]), new)
        return True

    def _hold(self, run_id: str, epoch: int, status: RunStatus) -> None:
        if status.finished:
            self._epochs.pop(run_id, None)
            return
        if len(self._epochs) >= _MAX_EPOCHS:
            self._epochs.pop(next(iter(self._epochs)))
        self._epochs[run_id] = epoch

    def _epoch(self, run_id: str) -> int:
        return self._epochs.get(run_id, -1)  # -1 matches no row: a run this process never claimed

    def recover_interrupted(self) -> list[str]:
        now = time.time()
        with self._write() as db:
            candidates = db.execute(
                f"SELECT r.id, r.owner, r.lease_until FROM runs r WHERE r.status = ? AND {_LAPSED} AND NOT"
                f" {_IN_FLIGHT} ORDER BY r.created_at" + self.SKIP_LOCKED,
                (RunStatus.RUNNING, now, _same_host(), StepStatus.RUNNING)).fetchall()
            ids = [run_id for run_id, owner, lease in candidates
                   if lease is None or lease < now or owner_is_gone(owner)]
            for run_id in ids:
                running = db.execute("SELECT step_id FROM steps WHERE run_id = ? AND status = ?",
                                     (run_id, StepStatus.RUNNING)).fetchone()
                step_id = running[0] if running else None
                reason = f"the engine stopped while step {step_id!r} was running" if step_id else "the engine stopped"
                reason += "; its effect is unknown, check the target before re-running"
                db.execute("UPDATE steps SET status = ?, error = ?, finished_at = ? WHERE run_id = ? AND status = ?",
                           (StepStatus.INTERRUPTED, reason, now, run_id, StepStatus.RUNNING))
                db.execute("UPDATE runs SET status = ?, error = ?, updated_at = ?, finished_at = ?, epoch = epoch + 1"
                           " WHERE id = ?", (RunStatus.INTERRUPTED, reason, now, now, run_id))
                self._audit(db, "engine", "run.interrupted", run_id, {"reason": reason})
        return ids

    def take_over(self, limit: int | None = None, lease: float = 300.0) -> list[str]:
        return self._take_over(limit, lease, in_flight=False)

    def take_over_in_flight(self, limit: int | None = None, lease: float = 300.0) -> list[str]:
        return self._take_over(limit, lease, in_flight=True)

    def _take_over(self, limit: int | None, lease: float, in_flight: bool) -> list[str]:
        now = time.time()
        with self._write() as db:
            candidates = db.execute(
                f"SELECT r.id, r.owner, r.lease_until FROM runs r WHERE r.status = ? AND {_LAPSED} AND"
                f" {'' if in_flight else 'NOT '}{_IN_FLIGHT} ORDER BY r.created_at" + self.SKIP_LOCKED,
                (RunStatus.RUNNING, now, _same_host(), StepStatus.RUNNING)).fetchall()
            taken: list[str] = []
            for run_id, owner, until in candidates:
                lapsed = until is None or until < now or owner_is_gone(owner)
                if not lapsed or (limit is not None and len(taken) >= limit):
                    continue
                row = db.execute("UPDATE runs SET owner = ?, lease_until = ?, updated_at = ?, epoch = epoch + 1"
                                 " WHERE id = ? RETURNING epoch", (self.instance, now + lease, now, run_id)).fetchone()
                self._hold(run_id, int(row[0]), RunStatus.RUNNING)
                if not in_flight:  # audited once its change is settled: a run may be claimed again while it waits
                    self._audit(db, "engine", "run.taken_over", run_id, {"from": owner, "by": self.instance})
                taken.append(run_id)
        return taken

    def release(self, run_id: str) -> bool:
        with self._write(durable=False) as db:  # lost in a crash, the lease lapses anyway
            cur = db.execute("UPDATE runs SET lease_until = 0 WHERE id = ? AND status = ? AND owner = ? AND epoch = ?",
                             (run_id, RunStatus.RUNNING, self.instance, self._epoch(run_id)))
        self._epochs.pop(run_id, None)
        return bool(cur.rowcount == 1)

    def heartbeat(self, run_ids: list[str], lease: float) -> list[str]:
        held = []
        now = time.time()
        with self._write(durable=False) as db:
            for run_id in run_ids:
                cur = db.execute("UPDATE runs SET lease_until = ? WHERE id = ? AND status = ? AND owner = ?"
                                 " AND epoch = ? AND lease_until < ?",
                                 (now + lease, run_id, RunStatus.RUNNING, self.instance, self._epoch(run_id),
                                  now + lease))
                if cur.rowcount == 1 or self._holds(db, run_id):
                    held.append(run_id)
        return held

    def holds(self, run_id: str) -> bool:
        with self._read() as db:
            return self._holds(db, run_id)

    def _holds(self, db: Db, run_id: str) -> bool:
        return db.execute("SELECT 1 FROM runs WHERE id = ? AND status = ? AND owner = ? AND epoch = ?",
                          (run_id, RunStatus.RUNNING, self.instance, self._epoch(run_id))).fetchone() is not None

    # steps ----------------------------------------------------------------------------------------

    def save_step(self, run_id: str, step: StepRecord, cursor: int | None = None, lease: float | None = None,
                  durable: bool = True) -> bool:
        now = time.time()
        with self._write(durable) as db:
            cur = db.execute("UPDATE runs SET updated_at = ?, cursor = COALESCE(?, cursor),"
                             " lease_until = COALESCE(?, lease_until)"
                             " WHERE id = ? AND status = ? AND owner = ? AND epoch = ?",
                             (now, cursor, now + lease if lease else None, run_id, RunStatus.RUNNING,
                              self.instance, self._epoch(run_id)))
            if cur.rowcount != 1:
                return False
            values = (run_id, step.index, step.id, step.action, step.title, step.status, step.attempts,
                      dumps(step.inputs), dumps(step.output), dumps([f.model_dump(mode="json") for f in step.findings]),
                      step.proposal.model_dump_json() if step.proposal else None,
                      dumps([c.model_dump(mode="json") for c in step.changes]), step.error, step.started_at,
                      step.finished_at)
            db.execute(SAVE_STEP, values)
        return True

    def redaction_key(self) -> bytes:
        query = "SELECT redaction_key FROM installation WHERE id = 1"
        with self._read() as db:
            row = db.execute(query).fetchone()
        if row is None:  # the migration made one; if that row was lost, the first to ask makes another
            with self._write() as db:
                db.execute("INSERT INTO installation (id, redaction_key) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
                           (secrets.token_hex(32),))
                row = db.execute(query).fetchone()
        return bytes.fromhex(str(row[0]))

    # decisions, alerts, audit ---------------------------------------------------------------------

    def record_decision(self, decision: Decision, awaiting: bool = True) -> bool:
        with self._write() as db:
            waiting = db.execute("SELECT 1 FROM runs WHERE id = ? AND status = ? AND awaiting_step = ?"
                                 + self.FOR_UPDATE,
                                 (decision.run_id, RunStatus.AWAITING_APPROVAL, decision.step)).fetchone()
            if awaiting and not waiting:
                return False
            row = db.execute(
                "INSERT INTO decisions (run_id, step_id, decision, actor, at, reason, identity) VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT (run_id, step_id) DO NOTHING RETURNING id",
                (decision.run_id, decision.step, decision.decision, decision.actor, decision.at, decision.reason,
                 dumps(asdict(decision.identity)) if decision.identity else None),
            ).fetchone()
            if row is None:  # the step already has its decision: the first one wins
                return False
            detail: dict[str, Any] = {"step": decision.step, "reason": decision.reason}
            if decision.identity:
                detail["as"] = str(decision.identity)
            self._audit(db, decision.actor, f"step.{decision.decision}", decision.run_id, detail)
        return True

    def decisions(self, run_id: str) -> list[Decision]:
        with self._read() as db:
            rows = db.execute("SELECT run_id, step_id, decision, actor, at, reason, identity FROM decisions"
                              " WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
        return [Decision(r[0], r[1], r[2], r[3], r[4], r[5], decode_identity(r[6])) for r in rows]

    def attach_alerts(self, alerts: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        now = time.time()
        with self._write(durable=False) as db:
            for chunk in (alerts[i:i + 100] for i in range(0, len(alerts), 100)):  # one statement per 100 rows
                db.execute("INSERT INTO alerts (run_id, fingerprint, status, received_at, payload) VALUES "
                           + ", ".join(["(?,?,?,?,?)"] * len(chunk)),
                           tuple(v for run_id, fp, status, payload in chunk
                                 for v in (run_id, fp, status, now, dumps(payload))))

    def alerts(self, run_id: str) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute("SELECT fingerprint, status, received_at, payload FROM alerts WHERE run_id = ?"
                              " ORDER BY id", (run_id,)).fetchall()
        return [{"fingerprint": f, "status": s, "received_at": t, "alert": json.loads(p)} for f, s, t, p in rows]

    def audit(self, actor: str, action: str, run_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
        with self._write() as db:
            self._audit(db, actor, action, run_id, detail or {})

    @staticmethod
    def _audit(db: Db, actor: str, action: str, run_id: str | None, detail: dict[str, Any]) -> None:
        """Details carry reasons and error texts (an exception's message may hold a URL with credentials):
        redacted here, where every audit entry is recorded, whoever built them."""
        db.execute("INSERT INTO audit (at, actor, action, run_id, detail) VALUES (?,?,?,?,?)",
                   (time.time(), actor, action, run_id, dumps(redact_values(detail))))

    def audit_log(self, run_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        query = "SELECT id, at, actor, action, run_id, detail FROM audit"
        args: tuple[Any, ...] = (limit,)
        if run_id:
            query, args = query + " WHERE run_id = ?", (run_id, limit)
        with self._read() as db:
            rows = db.execute(query + " ORDER BY id LIMIT ?", args).fetchall()
        return [AuditEntry(i, at, actor, action, rid, json.loads(d)) for i, at, actor, action, rid, d in rows]


    def audit_refusal(self, refused: RefusedRequest, now: float, limits: RefusalLimits = REFUSAL_LIMITS) -> bool:
        with self._write(durable=False) as db:
            return refusals.note(db, refused, now, limits, self._audit, self._locks)

    def close_refusal_windows(self, now: float, limits: RefusalLimits = REFUSAL_LIMITS) -> None:
        with self._write(durable=False) as db:
            refusals.close(db, now, limits, self._audit, self._locks)

    def probe_commit(self, now: float) -> None:
        with self._write() as db:
            refusals.probe(db, self.instance, now)

    @property
    def _locks(self) -> refusals.Locks:
        return refusals.Locks(self.FOR_UPDATE, self.SKIP_LOCKED)

    # blast radius ---------------------------------------------------------------------------------

    def freeze_on(self, freeze: Freeze) -> None:
        with self._write() as db:
            blast.freeze_on(db, freeze)
            self._audit(db, freeze.actor, "freeze.on", None, {"reason": freeze.reason})

    def freeze_off(self, actor: str, reason: str = "") -> Freeze | None:
        with self._write() as db:
            was = blast.freeze_off(db, self.FOR_UPDATE)
            if was is not None:
                self._audit(db, actor, "freeze.off", None, {"reason": reason, "was": was.reason})
        return was

    def freeze_state(self) -> Freeze | None:
        with self._read() as db:
            return blast.freeze_state(db)

    def changes_in_flight(self) -> int:
        with self._read() as db:
            return blast.changes_in_flight(db)

    def changes_to_target_since(self, target: str, since: float) -> int:
        with self._read() as db:
            return blast.changes_to_target_since(db, target, since)

    # chat outbox ----------------------------------------------------------------------------------

    def outbox_put(self, run_id: str, messages: list[OutboxMessage], now: float) -> None:
        with self._write() as db:
            chat.put(db, run_id, messages, now)
        self.hint_work()

    def outbox_claim(self, now: float, lease: float, limit: int = 50) -> list[OutboxItem]:
        with self._write(durable=False) as db:  # a claim lost in a crash lapses anyway: not worth a sync
            return chat.claim(db, self.instance, now, lease, limit, self.SKIP_LOCKED)

    def outbox_delivered(self, item: OutboxItem, remember: tuple[str, str] | None = None) -> None:
        with self._write() as db:
            chat.delivered(db, item, remember, time.time())

    def outbox_superseded(self, item: OutboxItem) -> bool:
        if not item.message.target:
            return False
        with self._write(durable=False) as db:  # lost in a crash: the edit is merely sent once more
            return chat.superseded(db, item, time.time())

    def outbox_retry(self, item: OutboxItem, at: float, error: str) -> None:
        with self._write() as db:
            chat.retry(db, item, at, error)

    def outbox_give_up(self, item: OutboxItem, error: str) -> None:
        with self._write() as db:
            chat.give_up(db, item, error)

    def outbox_pause(self, scope: str, until: float) -> None:
        with self._write(durable=False) as db:  # lost in a crash: a sender may draw one more 429
            chat.pause(db, scope, until, time.time())

    def outbox_release(self) -> None:
        with self._write() as db:
            chat.release(db, self.instance)
        self.hint_work()

    def outbox_next_at(self) -> float | None:
        with self._read() as db:
            return chat.next_at(db)

    def outbox_pending(self) -> int:
        with self._read() as db:
            return chat.pending(db)

    def outbox_oldest_pending(self) -> float | None:
        with self._read() as db:
            return chat.oldest_pending(db)

    def outbox_failures(self) -> list[tuple[int, str, str]]:
        with self._read() as db:
            return chat.failures(db)

    def chat_message(self, run_id: str, key: str) -> tuple[str, str] | None:
        with self._read() as db:
            return chat.message(db, run_id, key)

    def run_for_chat_message(self, channel: str, ts: str) -> str | None:
        with self._read() as db:
            return chat.run_for_message(db, channel, ts)

    def first_seen(self, signature: str, now: float, window: float) -> bool:
        with self._write(durable=False) as db:
            return chat.first_seen(db, signature, now, window)

    # retention ------------------------------------------------------------------------------------

    def prune(self, before: float, audit: bool = False) -> dict[str, int]:
        with self._write() as db:
            counts = chat.prune(db, before)
            if audit:
                counts["audit"] = self._delete_audit(db, before)
            self._audit(db, "engine", "store.pruned", None, {"before": before, "deleted": counts})
        return counts

    @abstractmethod
    def _delete_audit(self, db: Db, before: float) -> int:
        """Delete audit entries older than `before`, lifting the append-only guard for this transaction only."""


def _assignments(fields: dict[str, Any]) -> str:
    """`a = ?, b = ?` for run columns the engine may set; anything else is a bug, not a column name."""
    unknown = set(fields) - _RUN_FIELDS
    if unknown:
        raise ValueError(f"not a settable run field: {', '.join(sorted(unknown))}")
    return ", ".join(f"{k} = ?" for k in fields)


def _same_host() -> str:
    """A LIKE pattern for owners on this host (a `_` or `%` in the name only widens it; Python checks exactly)."""
    return socket.gethostname() + "/%"
