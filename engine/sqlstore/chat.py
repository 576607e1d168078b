"""The chat outbox, the run -> chat message map and remembered request signatures, in SQL.

Delivery is at most once per claim: a sender claims a message (and the channel it goes to) in the
store before calling the chat service, so two replicas never send the same message or talk in the
same channel at once. A graceful stop marks what it sent and gives its claims back; a crash between
sending and marking leaves a claim that lapses, and the message may then be sent once more.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from engine.redaction import redact
from engine.run_store import OutboxItem, OutboxMessage

if TYPE_CHECKING:
    from engine.sqlstore.base import Db

_HEAD_COLUMNS = "o.id, o.run_id, o.method, o.payload, o.thread, o.target, o.remember, o.attempts, o.channel"
# the channel a message is paced by: its own, else its thread parent's, else its run's own lane
_LANE = ("COALESCE(NULLIF(o.channel, ''), (SELECT m.channel FROM chat_messages m WHERE m.run_id = o.run_id"
         " AND m.key = o.thread), 'run:' || o.run_id)")


def put(db: Db, run_id: str, messages: list[OutboxMessage], now: float) -> None:
    for m in messages:
        db.execute("INSERT INTO chat_outbox (run_id, channel, method, payload, thread, target, remember, created_at,"
                   " next_at) VALUES (?,?,?,?,?,?,?,?,?)",
                   (run_id, m.channel or str(m.payload.get("channel") or ""), m.method,
                    json.dumps(m.payload, default=str), m.thread, m.target, m.remember, now, now))


def claim(db: Db, owner: str, now: float, lease: float, limit: int, skip_locked: str) -> list[OutboxItem]:
    """Claim due heads of runs (oldest first) whose channel this sender holds or can take, except those of a
    method that is paused for the whole workspace (`pause`)."""
    heads = db.execute(
        f"SELECT {_HEAD_COLUMNS}, {_LANE} FROM chat_outbox o WHERE o.id IN (SELECT MIN(id) FROM chat_outbox"
        " WHERE state = 'pending' GROUP BY run_id) AND o.next_at <= ?"
        " AND o.method NOT IN (SELECT scope FROM chat_pauses WHERE until > ?)"
        " AND (o.claimed_until IS NULL OR o.claimed_until < ? OR o.claimed_by = ?) ORDER BY o.id LIMIT ?"
        + skip_locked, (now, now, now, owner, limit)).fetchall()
    lanes: dict[str, bool] = {}
    items = []
    for row in heads:
        lane = row[9]
        if lane not in lanes:
            lanes[lane] = db.execute(
                "INSERT INTO chat_senders (channel, owner, until) VALUES (?,?,?) ON CONFLICT (channel) DO UPDATE"
                " SET owner = excluded.owner, until = excluded.until"
                " WHERE chat_senders.owner = excluded.owner OR chat_senders.until < ? RETURNING channel",
                (lane, owner, now + lease, now)).fetchone() is not None
        if not lanes[lane]:
            continue
        db.execute("UPDATE chat_outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                   (owner, now + lease, row[0]))
        message = OutboxMessage(row[2], json.loads(row[3]), row[4], row[5], row[6], row[8] or "")
        items.append(OutboxItem(row[0], row[1], message, row[7], lane))
    return items


def delivered(db: Db, item: OutboxItem, remember: tuple[str, str] | None, now: float) -> None:
    db.execute("UPDATE chat_outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1, claimed_by = NULL,"
               " claimed_until = NULL WHERE id = ?", (now, item.id))
    if remember and item.message.remember:
        db.execute("INSERT INTO chat_messages (run_id, key, channel, ts) VALUES (?,?,?,?) ON CONFLICT (run_id, key)"
                   " DO UPDATE SET channel = excluded.channel, ts = excluded.ts",
                   (item.run_id, item.message.remember, *remember))


def superseded(db: Db, item: OutboxItem, now: float) -> bool:
    """Skip an edit that a later pending edit of the same message (same run and target) replaces."""
    return bool(db.execute(
        "UPDATE chat_outbox SET state = 'superseded', sent_at = ?, claimed_by = NULL, claimed_until = NULL"
        " WHERE id = ? AND method = ? AND EXISTS (SELECT 1 FROM chat_outbox l WHERE l.run_id = ? AND l.target = ?"
        " AND l.method = ? AND l.state = 'pending' AND l.id > ?)",
        (now, item.id, item.message.method, item.run_id, item.message.target, item.message.method, item.id),
    ).rowcount > 0)


def retry(db: Db, item: OutboxItem, at: float, error: str) -> None:
    """`error` is the chat backend's exception text, which may quote a token: stored redacted."""
    error = redact(error)
    db.execute("UPDATE chat_outbox SET attempts = attempts + 1, next_at = ?, error = ?, claimed_by = NULL,"
               " claimed_until = NULL WHERE id = ?", (at, error, item.id))


def give_up(db: Db, item: OutboxItem, error: str) -> None:
    error = redact(error)
    db.execute("UPDATE chat_outbox SET state = 'dead', attempts = attempts + 1, error = ?, claimed_by = NULL,"
               " claimed_until = NULL WHERE id = ?", (error, item.id))


def pause(db: Db, scope: str, until: float, now: float) -> None:
    db.execute("DELETE FROM chat_pauses WHERE until < ?", (now,))
    db.execute("INSERT INTO chat_pauses (scope, until) VALUES (?, ?) ON CONFLICT (scope) DO UPDATE SET until ="
               " CASE WHEN excluded.until > chat_pauses.until THEN excluded.until ELSE chat_pauses.until END",
               (scope, until))


def release(db: Db, owner: str) -> None:
    db.execute("UPDATE chat_outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ?", (owner,))
    db.execute("DELETE FROM chat_senders WHERE owner = ?", (owner,))


def next_at(db: Db) -> float | None:
    row = db.execute("SELECT MIN(next_at) FROM chat_outbox WHERE state = 'pending'").fetchone()
    return float(row[0]) if row and row[0] is not None else None


def pending(db: Db) -> int:
    return int(db.execute("SELECT COUNT(*) FROM chat_outbox WHERE state = 'pending'").fetchone()[0])


def oldest_pending(db: Db) -> float | None:
    row = db.execute("SELECT MIN(created_at) FROM chat_outbox WHERE state = 'pending'").fetchone()
    return float(row[0]) if row and row[0] is not None else None


def failures(db: Db) -> list[tuple[int, str, str]]:
    rows = db.execute("SELECT id, method, error FROM chat_outbox WHERE state = 'dead' ORDER BY id").fetchall()
    return [(int(r[0]), str(r[1]), str(r[2] or "")) for r in rows]


def message(db: Db, run_id: str, key: str) -> tuple[str, str] | None:
    row = db.execute("SELECT channel, ts FROM chat_messages WHERE run_id = ? AND key = ?", (run_id, key)).fetchone()
    return (str(row[0]), str(row[1])) if row else None


def run_for_message(db: Db, channel: str, ts: str) -> str | None:
    row = db.execute("SELECT run_id FROM chat_messages WHERE channel = ? AND ts = ?", (channel, ts)).fetchone()
    return str(row[0]) if row else None


def first_seen(db: Db, signature: str, now: float, window: float) -> bool:
    db.execute("DELETE FROM chat_seen WHERE at < ?", (now - window,))
    row = db.execute("INSERT INTO chat_seen (signature, at) VALUES (?, ?) ON CONFLICT (signature) DO NOTHING"
                     " RETURNING signature", (signature, now)).fetchone()
    return row is not None


def prune(db: Db, before: float) -> dict[str, int]:
    """Delete what belongs to runs that finished before `before` (never the audit log: see the store)."""
    old = "SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?"
    counts: dict[str, int] = {}
    for table, column in (("chat_outbox", "run_id"), ("chat_messages", "run_id"), ("alerts", "run_id"),
                          ("decisions", "run_id"), ("steps", "run_id"), ("dedup_keys", "run_id"), ("runs", "id")):
        counts[table] = db.execute(f"DELETE FROM {table} WHERE {column} IN ({old})", (before,)).rowcount
    counts["chat_outbox"] += db.execute("DELETE FROM chat_outbox WHERE state <> 'pending' AND created_at < ?",
                                        (before,)).rowcount
    counts["chat_seen"] = db.execute("DELETE FROM chat_seen WHERE at < ?", (before,)).rowcount
    return counts
