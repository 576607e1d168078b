"""The SQLite schema, version by version, and how a database file is brought up to date in place.

Version 1 is the layout from before schemas were versioned (a file without `schema_info` that has
`runs` is at version 1); each later version is a list of statements applied in one transaction.
"""

from __future__ import annotations

import sqlite3

from engine.run_store import SchemaState
from engine.sqlstore.versions import LATEST, min_engine_for, parse

V1 = (
    """CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY, runbook TEXT NOT NULL, status TEXT NOT NULL, params TEXT NOT NULL,
        requester TEXT NOT NULL, trigger TEXT NOT NULL, definition TEXT NOT NULL,
        auto_approve INTEGER NOT NULL, dry_run INTEGER NOT NULL, cursor INTEGER NOT NULL DEFAULT 0,
        awaiting_step TEXT, approval_deadline REAL, error TEXT, dedup_key TEXT, owner TEXT, lease_until REAL,
        created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL)""",
    "CREATE INDEX IF NOT EXISTS runs_by_runbook ON runs (runbook, created_at)",
    "CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status)",
    "CREATE INDEX IF NOT EXISTS runs_by_dedup ON runs (dedup_key, created_at)",
    """CREATE TABLE IF NOT EXISTS steps (
        run_id TEXT NOT NULL, idx INTEGER NOT NULL, step_id TEXT NOT NULL, action TEXT NOT NULL,
        title TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, inputs TEXT NOT NULL,
        output TEXT NOT NULL, findings TEXT NOT NULL, proposal TEXT, changes TEXT NOT NULL, error TEXT,
        started_at REAL, finished_at REAL, PRIMARY KEY (run_id, idx))""",
    """CREATE TABLE IF NOT EXISTS decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step_id TEXT NOT NULL,
        decision TEXT NOT NULL, actor TEXT NOT NULL, at REAL NOT NULL, reason TEXT NOT NULL, identity TEXT)""",
    """CREATE TABLE IF NOT EXISTS alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
        status TEXT NOT NULL, received_at REAL NOT NULL, payload TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS alerts_by_run ON alerts (run_id, id)",
    """CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        run_id TEXT, detail TEXT NOT NULL)""",
)
AUDIT_GUARDS = (
    """CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
)
V2 = (
    "ALTER TABLE runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0",
    "CREATE TABLE dedup_keys (key TEXT PRIMARY KEY, run_id TEXT)",
    """INSERT INTO dedup_keys (key, run_id) SELECT dedup_key, id FROM runs r WHERE dedup_key IS NOT NULL
       AND created_at = (SELECT MAX(created_at) FROM runs WHERE dedup_key = r.dedup_key) ON CONFLICT DO NOTHING""",
    "CREATE UNIQUE INDEX decisions_one_per_step ON decisions (run_id, step_id)",
    """CREATE TABLE chat_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, channel TEXT NOT NULL DEFAULT '',
        method TEXT NOT NULL, payload TEXT NOT NULL, thread TEXT, target TEXT, remember TEXT,
        created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'pending', error TEXT, sent_at REAL, claimed_by TEXT, claimed_until REAL)""",
    "CREATE INDEX chat_outbox_heads ON chat_outbox (state, run_id, id)",
    """CREATE TABLE chat_messages (run_id TEXT NOT NULL, key TEXT NOT NULL, channel TEXT NOT NULL,
        ts TEXT NOT NULL, PRIMARY KEY (run_id, key))""",
    "CREATE INDEX chat_messages_by_ts ON chat_messages (channel, ts)",
    "CREATE TABLE chat_senders (channel TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL)",
    "CREATE TABLE chat_seen (signature TEXT PRIMARY KEY, at REAL NOT NULL)",
    """CREATE TABLE schema_info (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL,
        min_engine TEXT NOT NULL)""",
)
# rows the Slack plug-in kept in its own tables before the store owned them
_CARRY_OVER = {
    "slack_outbox": """INSERT INTO chat_outbox (run_id, method, payload, thread, target, remember, created_at,
        attempts, next_at, state, error, sent_at) SELECT run_id, method, payload, thread, target, remember,
        created_at, attempts, next_at, state, error, sent_at FROM slack_outbox WHERE state = 'pending' ORDER BY id""",
    "slack_messages": "INSERT INTO chat_messages (run_id, key, channel, ts) SELECT run_id, key, channel, ts"
                      " FROM slack_messages WHERE true ON CONFLICT DO NOTHING",
}
V3 = ("""CREATE TABLE change_freeze (id INTEGER PRIMARY KEY CHECK (id = 1), reason TEXT NOT NULL, actor TEXT NOT NULL,
        since REAL NOT NULL)""",)
V4 = (
    """CREATE TABLE refusals (source TEXT PRIMARY KEY, actor TEXT NOT NULL, action TEXT NOT NULL, started REAL NOT NULL,
        refused INTEGER NOT NULL)""",
    """CREATE TABLE refusal_budget (id INTEGER PRIMARY KEY CHECK (id = 1), started REAL NOT NULL,
        audited INTEGER NOT NULL, left_out INTEGER NOT NULL)""",
    "INSERT INTO refusal_budget (id, started, audited, left_out) VALUES (1, 0, 0, 0)",
    "CREATE TABLE probes (instance TEXT PRIMARY KEY, at REAL NOT NULL)",
)
V5 = ("CREATE TABLE chat_pauses (scope TEXT PRIMARY KEY, until REAL NOT NULL)",)
V6 = (  # the redaction key is made here, so a replica never has to write to learn it (randomblob: OS entropy)
    "CREATE TABLE installation (id INTEGER PRIMARY KEY CHECK (id = 1), redaction_key TEXT NOT NULL)",
    "INSERT INTO installation (id, redaction_key) VALUES (1, lower(hex(randomblob(32))))",
)
STEPS = {1: V1 + AUDIT_GUARDS, 2: V2, 3: V3, 4: V4, 5: V5, 6: V6}


def tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def read_state(db: sqlite3.Connection) -> SchemaState | None:
    """The file's schema state; None for an empty file."""
    names = tables(db)
    if "schema_info" in names:
        row = db.execute("SELECT version, min_engine FROM schema_info WHERE id = 1").fetchone()
        if row:
            return SchemaState(int(row[0]), str(row[1]))
    return SchemaState(1, min_engine_for(1)) if "runs" in names else None


def migrate(db: sqlite3.Connection) -> SchemaState:
    """Apply what is missing, in the caller's write transaction; returns the new state."""
    state = read_state(db)
    version = state.version if state else 0
    if version == 1:  # columns added in place before versions existed
        if "identity" not in {r[1] for r in db.execute("PRAGMA table_info(decisions)")}:
            db.execute("ALTER TABLE decisions ADD COLUMN identity TEXT")
        if "lease_until" not in {r[1] for r in db.execute("PRAGMA table_info(runs)")}:
            db.execute("ALTER TABLE runs ADD COLUMN lease_until REAL")
    for step in range(version + 1, LATEST + 1):
        for statement in STEPS[step]:
            db.execute(statement)
    if version < 2:
        present = tables(db)
        for table, statement in _CARRY_OVER.items():
            if table in present:
                db.execute(statement)
    floor = max(min_engine_for(LATEST), state.min_engine if state else "0", key=parse)
    new = SchemaState(max(LATEST, version), floor)
    db.execute("INSERT INTO schema_info (id, version, min_engine) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE"
               " SET version = excluded.version, min_engine = excluded.min_engine", (new.version, new.min_engine))
    return new
