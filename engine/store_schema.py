"""How runs are laid out in SQLite: the schema, its in-place migration, and decoding rows into records."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from typing import Any

from engine.actions import Identity
from engine.records import RunRecord, RunStatus, StepRecord, StepStatus
from engine.verdict import Change, Finding, Proposal

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, runbook TEXT NOT NULL, status TEXT NOT NULL, params TEXT NOT NULL,
    requester TEXT NOT NULL, trigger TEXT NOT NULL, definition TEXT NOT NULL,
    auto_approve INTEGER NOT NULL, dry_run INTEGER NOT NULL, cursor INTEGER NOT NULL DEFAULT 0,
    awaiting_step TEXT, approval_deadline REAL, error TEXT, dedup_key TEXT, owner TEXT, lease_until REAL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL
);
CREATE INDEX IF NOT EXISTS runs_by_runbook ON runs (runbook, created_at);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_by_dedup ON runs (dedup_key, created_at);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL, idx INTEGER NOT NULL, step_id TEXT NOT NULL, action TEXT NOT NULL,
    title TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, inputs TEXT NOT NULL,
    output TEXT NOT NULL, findings TEXT NOT NULL, proposal TEXT, changes TEXT NOT NULL, error TEXT,
    started_at REAL, finished_at REAL, PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step_id TEXT NOT NULL,
    decision TEXT NOT NULL, actor TEXT NOT NULL, at REAL NOT NULL, reason TEXT NOT NULL, identity TEXT
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
    status TEXT NOT NULL, received_at REAL NOT NULL, payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_run ON alerts (run_id, id);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    run_id TEXT, detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


def create_or_migrate(db: sqlite3.Connection) -> None:
    """Create the tables, or bring a store made by an older version up to date, in place."""
    db.executescript(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(decisions)")}
    if "identity" not in columns:
        db.execute("ALTER TABLE decisions ADD COLUMN identity TEXT")
    if "lease_until" not in {row[1] for row in db.execute("PRAGMA table_info(runs)")}:
        db.execute("ALTER TABLE runs ADD COLUMN lease_until REAL")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def owner_is_gone(owner: str | None) -> bool:
    """An owner on this very host whose process no longer exists need not be waited for."""
    host, _, rest = (owner or "").partition("/")
    pid = rest.partition("/")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def decode_identity(raw: str | None) -> Identity | None:
    if not raw:
        return None
    data = json.loads(raw)
    return Identity(data["user"], tuple(data.get("groups", ())))


def run_from_row(row: dict[str, Any], steps: list[StepRecord]) -> RunRecord:
    return RunRecord(
        id=row["id"], runbook=row["runbook"], status=RunStatus(row["status"]), params=json.loads(row["params"]),
        requester=row["requester"], trigger=json.loads(row["trigger"]), definition=row["definition"],
        auto_approve=bool(row["auto_approve"]), dry_run=bool(row["dry_run"]), cursor=row["cursor"],
        awaiting_step=row["awaiting_step"], approval_deadline=row["approval_deadline"], error=row["error"],
        dedup_key=row["dedup_key"], created_at=row["created_at"], updated_at=row["updated_at"],
        finished_at=row["finished_at"], steps=steps,
    )


def step_from_row(row: tuple[Any, ...]) -> StepRecord:
    (_, idx, step_id, action, title, status, attempts, inputs, output, findings, proposal, changes, error,
     started, finished) = row
    return StepRecord(
        index=idx, id=step_id, action=action, title=title, status=StepStatus(status), attempts=attempts,
        inputs=json.loads(inputs), output=json.loads(output),
        findings=[Finding.model_validate(f) for f in json.loads(findings)],
        proposal=Proposal.model_validate_json(proposal) if proposal else None,
        changes=[Change.model_validate(c) for c in json.loads(changes)], error=error,
        started_at=started, finished_at=finished,
    )
