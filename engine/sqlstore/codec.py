"""Encoding records into rows and back, shared by both SQL backends (JSON text columns, epoch-second times)."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from engine.actions import Identity
from engine.records import RunRecord, RunStatus, StepRecord, StepStatus
from engine.verdict import Change, Finding, Proposal


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
