"""The CLI's output conventions: `--output text|json` on every command that lists or shows, one JSON
document on stdout (so `| jq` works), and timestamps people can read (UTC, second precision)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import typer

from engine.actions import Action
from engine.model import Runbook
from engine.records import AuditEntry, RunRecord

FORMATS = ("text", "json")


def check_output(value: str) -> str:
    """Typer callback of every `--output`: a clear usage error (exit 2) for anything but text or json."""
    if value not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}, not {value!r}")
    return value


def output_formats() -> list[str]:
    """What shell completion offers after `--output`."""
    return list(FORMATS)


def emit(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def when(ts: float | None) -> str:
    """`2026-12-01 16:29:41Z`: what `runbook audit`, `history` and `show` print."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else ""


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def version() -> str:
    try:
        return metadata.version("runbook")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


def run_row(run: RunRecord) -> dict[str, Any]:
    """One run of `runbook history --output json`."""
    return {"run_id": run.id, "runbook": run.runbook, "status": str(run.status), "requester": run.requester,
            "params": run.params, "created_at": run.created_at, "finished_at": run.finished_at,
            "awaiting_step": run.awaiting_step, "findings": len(run.findings), "proposals": len(run.proposals)}


def runbook_row(rb: Runbook) -> dict[str, Any]:
    """One runbook of `runbook list --output json`."""
    return {"name": rb.name, "title": rb.metadata.title, "severity": rb.metadata.severity,
            "description": rb.metadata.description.strip(),
            "params": {n: p.model_dump(mode="json", exclude_defaults=True) for n, p in rb.params.items()},
            "triggers": rb.triggers.model_dump(mode="json", exclude_defaults=True),
            "steps": [s.id for s in rb.steps]}


def action_row(action: Action[Any]) -> dict[str, Any]:
    """One action of `runbook actions --output json`."""
    arguments = {name: {"type": str(getattr(f.annotation, "__name__", f.annotation)), "required": f.is_required(),
                        **({} if f.is_required() else {"default": f.default})}
                 for name, f in action.args.model_fields.items()}
    return {"name": action.name, "kind": str(action.kind), "description": action.description,
            "permissions": [str(p) for p in action.permissions], "computed_permissions": action.permits_doc,
            "arguments": arguments}


def audit_row(entry: AuditEntry) -> dict[str, Any]:
    """One entry of `runbook audit --output json`: the epoch time and the same instant in ISO 8601."""
    return {"id": entry.id, "at": entry.at, "time": iso(entry.at), "actor": entry.actor, "action": entry.action,
            "run_id": entry.run_id, "detail": entry.detail}
