"""A persisted outbox of Slack API calls, kept in the run store's database.

Run events are turned into outbox rows inside one SQLite transaction and nothing else happens on the
executor's thread: Slack being slow, rate-limiting or down can delay chat but never a run, and rows
survive a restart. Rows are delivered strictly in order per run (a thread reads top to bottom), and
threaded replies name their parent by a *key* ("parent", "proposal:<step>") resolved at send time,
because the parent's `ts` is only known once Slack has accepted it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from engine.run_store import RunStore

_TABLES = (
    """CREATE TABLE IF NOT EXISTS slack_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, method TEXT NOT NULL, payload TEXT NOT NULL,
        thread TEXT, target TEXT, remember TEXT, created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'pending', error TEXT, sent_at REAL)""",
    "CREATE INDEX IF NOT EXISTS slack_outbox_pending ON slack_outbox (state, run_id, id)",
    """CREATE TABLE IF NOT EXISTS slack_messages (
        run_id TEXT NOT NULL, key TEXT NOT NULL, channel TEXT NOT NULL, ts TEXT NOT NULL,
        PRIMARY KEY (run_id, key))""",
)
_COLUMNS = "id, run_id, method, payload, thread, target, remember, attempts"


@dataclass(frozen=True)
class Message:
    """One Slack API call to make for a run.

    `thread`: key of the message to reply under; `target`: key of the message `chat.update` edits;
    `remember`: key under which to keep the posted message's channel and ts.
    """

    method: str
    payload: dict[str, Any] = field(default_factory=dict)
    thread: str | None = None
    target: str | None = None
    remember: str | None = None


@dataclass(frozen=True)
class Item:
    id: int
    run_id: str
    message: Message
    attempts: int


class Outbox:
    """The outbox and the run -> Slack message map, both tables in the run store."""

    def __init__(self, store: RunStore, clock: Any = time.time) -> None:
        self.store = store
        self.clock = clock
        with store.transaction() as db:
            for statement in _TABLES:
                db.execute(statement)

    def put(self, run_id: str, messages: list[Message]) -> None:
        """Queue messages for a run, all or none."""
        now = self.clock()
        with self.store.transaction() as db:
            db.executemany(
                "INSERT INTO slack_outbox (run_id, method, payload, thread, target, remember, created_at, next_at)"
                " VALUES (?,?,?,?,?,?,?,?)",
                [(run_id, m.method, json.dumps(m.payload, default=str), m.thread, m.target, m.remember, now, now)
                 for m in messages],
            )

    def due(self, limit: int = 50) -> list[Item]:
        """The oldest undelivered item of each run, if its retry time has come (so order per run holds)."""
        with self.store.transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM slack_outbox WHERE id IN (SELECT MIN(id) FROM slack_outbox"
                " WHERE state = 'pending' GROUP BY run_id) AND next_at <= ? ORDER BY id LIMIT ?",
                (self.clock(), limit),
            ).fetchall()
        return [Item(r[0], r[1], Message(r[2], json.loads(r[3]), r[4], r[5], r[6]), r[7]) for r in rows]

    def next_due_at(self) -> float | None:
        with self.store.transaction() as db:
            row = db.execute("SELECT MIN(next_at) FROM slack_outbox WHERE state = 'pending'").fetchone()
        return row[0] if row and row[0] is not None else None

    def delivered(self, item: Item, remember: tuple[str, str] | None = None) -> None:
        """Mark `item` sent and, in the same commit, keep the (channel, ts) it created."""
        with self.store.transaction() as db:
            db.execute("UPDATE slack_outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1 WHERE id = ?",
                       (self.clock(), item.id))
            if remember and item.message.remember:
                db.execute("INSERT OR REPLACE INTO slack_messages (run_id, key, channel, ts) VALUES (?,?,?,?)",
                           (item.run_id, item.message.remember, *remember))

    def retry_later(self, item: Item, delay: float, error: str) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE slack_outbox SET attempts = attempts + 1, next_at = ?, error = ? WHERE id = ?",
                       (self.clock() + delay, error, item.id))

    def give_up(self, item: Item, error: str) -> None:
        """Slack refused the call for good (e.g. channel_not_found); later items of the run still go."""
        with self.store.transaction() as db:
            db.execute("UPDATE slack_outbox SET state = 'dead', attempts = attempts + 1, error = ? WHERE id = ?",
                       (error, item.id))

    def message(self, run_id: str, key: str) -> tuple[str, str] | None:
        """(channel, ts) of a message posted for the run under `key`, if Slack accepted it."""
        with self.store.transaction() as db:
            row = db.execute("SELECT channel, ts FROM slack_messages WHERE run_id = ? AND key = ?",
                             (run_id, key)).fetchone()
        return (row[0], row[1]) if row else None

    def run_for_message(self, channel: str, ts: str) -> str | None:
        with self.store.transaction() as db:
            row = db.execute("SELECT run_id FROM slack_messages WHERE channel = ? AND ts = ?", (channel, ts)).fetchone()
        return row[0] if row else None

    def pending(self) -> int:
        with self.store.transaction() as db:
            return int(db.execute("SELECT COUNT(*) FROM slack_outbox WHERE state = 'pending'").fetchone()[0])

    def oldest_pending_age(self) -> float:
        """Seconds the oldest undelivered message has waited (0 when none): chat lagging behind the runs."""
        with self.store.transaction() as db:
            row = db.execute("SELECT MIN(created_at) FROM slack_outbox WHERE state = 'pending'").fetchone()
        return max(0.0, self.clock() - row[0]) if row and row[0] is not None else 0.0

    def failures(self) -> list[tuple[int, str, str]]:
        """(id, method, error) of items Slack refused for good: for the operator, not for retrying."""
        with self.store.transaction() as db:
            rows = db.execute("SELECT id, method, error FROM slack_outbox WHERE state = 'dead' ORDER BY id").fetchall()
        return [(r[0], r[1], r[2] or "") for r in rows]
