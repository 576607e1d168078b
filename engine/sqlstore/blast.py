"""The blast-radius state in SQL: the global change freeze, and the counts the change limits compare.

Kept in the store so every replica sees one freeze and one count; the policy gate decides with them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from engine.records import Freeze, RunStatus, StepStatus

if TYPE_CHECKING:
    from engine.sqlstore.base import Db

_APPROVED_STEPS = ("FROM decisions d JOIN steps s ON s.run_id = d.run_id AND s.step_id = d.step_id"
                   " WHERE d.decision = 'approved'")


def freeze_on(db: Db, freeze: Freeze) -> None:
    db.execute("INSERT INTO change_freeze (id, reason, actor, since) VALUES (1, ?, ?, ?) ON CONFLICT (id)"
               " DO UPDATE SET reason = excluded.reason, actor = excluded.actor, since = excluded.since",
               (freeze.reason, freeze.actor, freeze.since))


def freeze_off(db: Db, for_update: str) -> Freeze | None:
    was = _freeze(db, for_update)
    if was is not None:
        db.execute("DELETE FROM change_freeze WHERE id = 1")
    return was


def freeze_state(db: Db) -> Freeze | None:
    return _freeze(db, "")


def _freeze(db: Db, for_update: str) -> Freeze | None:
    row = db.execute("SELECT reason, actor, since FROM change_freeze WHERE id = 1" + for_update).fetchone()
    return Freeze(row[0], row[1], row[2]) if row else None


def changes_in_flight(db: Db) -> int:
    """Approved remediations of active runs not yet finished (waiting for a worker or executing)."""
    row = db.execute(f"SELECT COUNT(*) {_APPROVED_STEPS} AND s.status IN (?, ?)"
                     " AND d.run_id IN (SELECT id FROM runs WHERE status IN (?, ?))",
                     (StepStatus.PROPOSED, StepStatus.RUNNING, RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)
                     ).fetchone()
    return int(row[0])


def changes_to_target_since(db: Db, target: str, since: float) -> int:
    """Remediations of `target` approved since `since`. The target is inside the proposal's JSON, so it is
    matched here rather than in SQL, the same way for both backends."""
    rows = db.execute(f"SELECT s.proposal {_APPROVED_STEPS} AND d.at >= ? AND s.proposal IS NOT NULL",
                      (since,)).fetchall()
    return sum(1 for (proposal,) in rows if json.loads(proposal).get("target") == target)
