"""Rate-limited auditing of refused requests, in SQL, so that replicas share one budget.

A refused, unauthenticated request is cheap to send and must not buy an attacker a synced audit row
each (the disk would fill). Per source (client address and endpoint) the first refusal of a window is
audited in full and the others are counted; when the window ends, one summary row gives that count.
All sources together get at most `cap` rows per window; what the cap leaves out is counted on the
budget row and written as one row when the budget's window ends. Each refusal is thus counted in
exactly one row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.run_store import RefusalLimits, RefusedRequest

if TYPE_CHECKING:
    from engine.sqlstore.base import Db

Audit = Callable[["Db", str, str, "str | None", dict[str, Any]], None]
_CLOSE_BATCH = 1000  # expired source windows closed per call (the rest in the next one)


class Locks:
    """The backend's row-locking clauses (empty under SQLite, where a write locks the whole database)."""

    def __init__(self, for_update: str, skip_locked: str) -> None:
        self.for_update = for_update
        self.skip_locked = skip_locked


def note(db: Db, refused: RefusedRequest, now: float, limits: RefusalLimits, audit: Audit, locks: Locks) -> bool:
    """Count one refusal; True when it gets its own audit row now."""
    close(db, now, limits, audit, locks)
    row = db.execute("INSERT INTO refusals (source, actor, action, started, refused) VALUES (?,?,?,?,1)"
                     " ON CONFLICT (source) DO UPDATE SET refused = refusals.refused + 1 RETURNING refused",
                     (refused.source, refused.actor, refused.action, now)).fetchone()
    if int(row[0]) > 1:
        return False  # counted: its window's summary will say so
    if not _spend(db, limits, 1):
        return False
    audit(db, refused.actor, refused.action, None, {**refused.detail, "source": refused.source})
    return True


def close(db: Db, now: float, limits: RefusalLimits, audit: Audit, locks: Locks) -> None:
    """Roll the budget's window if it ended, then summarise and forget the source windows that ended."""
    _roll_budget(db, now, limits, audit, locks)
    ended = db.execute("SELECT source, actor, action, started, refused FROM refusals WHERE started <= ?"
                       f" ORDER BY started LIMIT {_CLOSE_BATCH}" + locks.skip_locked,
                       (now - limits.window,)).fetchall()
    for source, actor, action, started, count in ended:
        db.execute("DELETE FROM refusals WHERE source = ?", (source,))
        repeats = int(count) - 1  # the first was audited on its own or counted as left out
        if repeats > 0 and _spend(db, limits, repeats):
            audit(db, actor, f"{action}.repeated", None, {"source": source, "repeats": repeats, "since": started,
                                                          "window_seconds": limits.window})


def _spend(db: Db, limits: RefusalLimits, refusals: int) -> bool:
    """Take one row from the budget; else count `refusals` as left out."""
    row = db.execute("UPDATE refusal_budget SET audited = audited + 1 WHERE id = 1 AND audited < ? RETURNING id",
                     (limits.cap,)).fetchone()
    if row is not None:
        return True
    db.execute("UPDATE refusal_budget SET left_out = left_out + ? WHERE id = 1", (refusals,))
    return False


def _roll_budget(db: Db, now: float, limits: RefusalLimits, audit: Audit, locks: Locks) -> None:
    query = "SELECT left_out, started FROM refusal_budget WHERE id = 1 AND started <= ?"
    if db.execute(query, (now - limits.window,)).fetchone() is None:
        return  # the usual case, without taking the row's lock
    row = db.execute(query + locks.for_update, (now - limits.window,)).fetchone()
    if row is None:
        return  # another replica rolled it meanwhile
    db.execute("UPDATE refusal_budget SET started = ?, audited = 0, left_out = 0 WHERE id = 1", (now,))
    if int(row[0]) > 0:
        audit(db, "engine", "requests.refused.unaudited", None,
              {"refused": int(row[0]), "since": row[1], "cap": limits.cap, "window_seconds": limits.window})


def probe(db: Db, instance: str, now: float) -> None:
    db.execute("INSERT INTO probes (instance, at) VALUES (?, ?) ON CONFLICT (instance) DO UPDATE SET at = excluded.at",
               (instance, now))
    db.execute("DELETE FROM probes WHERE at < ?", (now - 86_400,))
