"""A run as the run page shows it: plain, redacted, bounded values the templates only have to lay out.

Everything here is data from outside (alert labels, pod logs, cluster objects): it is redacted, cut to a
bounded size and handed to templates that autoescape it; links are kept only when they are http(s).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import ValidationError

from engine.links import run_links
from engine.model import Runbook
from engine.records import AuditEntry, Decision, RunRecord, StepRecord
from engine.redaction import redact, redact_data
from engine.templating import Templating

MAX_TEXT = 20_000
MAX_URL = 2048


@dataclass(frozen=True)
class RunView:
    """Everything the run page needs, gathered in one pass over the store."""

    run: RunRecord
    alerts: list[dict[str, Any]]
    decisions: list[Decision]
    audit: list[AuditEntry]


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else ""


def iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else ""


def took(start: float | None, end: float | None) -> str:
    if not start or not end:
        return ""
    seconds = max(0.0, end - start)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def bounded(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… ({len(text) - limit} more characters not shown)"


def pretty(value: Any) -> str:
    """A value as readable text: strings as they are (real newlines), anything else as indented JSON."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True, default=str)
    return bounded(text)


def safe_url(value: Any) -> str | None:
    """The URL when it is a plain http(s) link; anything else (javascript:, data:, junk) is not a link."""
    if not isinstance(value, str) or len(value) > MAX_URL:
        return None
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    return value.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def silence_url(external_url: Any, labels: dict[str, Any]) -> str | None:
    """Alertmanager's new-silence form, pre-filled with the alert's labels."""
    base = safe_url(external_url)
    if base is None or not labels:
        return None
    matchers = ",".join(f'{k}="{_matcher_value(v)}"' for k, v in sorted(labels.items()))
    return f"{base.rstrip('/')}/#/silences/new?filter={quote('{' + matchers + '}', safe='')}"


def _matcher_value(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def diff_lines(diff: tuple[str, ...] | list[str]) -> list[dict[str, str]]:
    """Each diff line with the kind the stylesheet colours: add, remove, change (`field: old -> new`) or context."""
    lines = []
    for chunk in diff:
        for line in bounded(str(chunk)).splitlines() or [""]:
            kind = ("add" if line.startswith("+") else "remove" if line.startswith("-")
                    else "change" if " -> " in line else "context")
            lines.append({"kind": kind, "text": line})
    return lines


def alert_view(entry: dict[str, Any], external_url: Any) -> dict[str, Any]:
    alert = _mapping(entry.get("alert"))
    labels, annotations = _mapping(alert.get("labels")), _mapping(alert.get("annotations"))
    links = [("source", safe_url(alert.get("generatorURL"))), ("runbook", safe_url(annotations.get("runbook_url"))),
             ("silence", silence_url(external_url, labels))]
    return {"fingerprint": entry.get("fingerprint", ""), "status": entry.get("status", ""),
            "received": when(entry.get("received_at")), "labels": labels, "annotations": annotations,
            "starts_at": alert.get("startsAt", ""), "links": [(name, url) for name, url in links if url]}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def runbook_of(run: RunRecord) -> Runbook | None:
    try:
        return Runbook.model_validate_json(run.definition)
    except ValidationError:
        return None


def links(run: RunRecord, runbook: Runbook | None) -> list[tuple[str, str]]:
    """The runbook's own `links:` for this run (dashboards, log queries), rendered in the template sandbox."""
    return run_links(runbook, run, Templating()) if runbook is not None else []


def plan(run: RunRecord, runbook: Runbook | None) -> list[dict[str, Any]]:
    """The runbook's steps in order, each with what happened to it so far (timing, output) or `not reached`."""
    specs = runbook.steps if runbook is not None else ()
    done = {s.id: s for s in run.steps}
    rows = [step_view(run, done.pop(spec.id, None), spec.id, spec.action, spec.proposal is not None)
            for spec in specs]
    rows += [step_view(run, record, record.id, record.action, record.proposal is not None) for record in done.values()]
    for number, row in enumerate(rows, start=1):
        row["index"] = number
    return rows


def step_view(run: RunRecord, s: StepRecord | None, step_id: str, action: str, remediation: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"id": step_id, "action": action, "remediation": remediation, "title": step_id,
                           "status": "not reached", "attempts": "", "started": "", "started_iso": "", "offset": "",
                           "took": "", "error": "", "inputs": "", "output": ""}
    if s is not None:
        row |= {"title": s.title or s.id, "status": str(s.status), "attempts": s.attempts,
                "started": when(s.started_at), "started_iso": iso(s.started_at),
                "offset": took(run.created_at, s.started_at) or "0 ms", "took": took(s.started_at, s.finished_at),
                "error": s.error or "", "inputs": pretty(s.inputs) if s.inputs else "",
                "output": pretty(s.output) if s.output else ""}
    return row


def findings(run: RunRecord) -> list[dict[str, Any]]:
    order = {"critical": 0, "warning": 1, "info": 2}
    rows = []
    for f in sorted(run.findings, key=lambda f: order.get(f.severity, 3)):
        evidence = [{"object": e.object, "field": e.field, "value": pretty(e.value),
                     "block": not isinstance(e.value, str | int | float | bool) or "\n" in str(e.value)}
                    for e in f.evidence]
        rows.append({"id": f.id, "severity": f.severity, "summary": f.summary, "step": f.step,
                     "evidence": evidence})
    return rows


def change_view(change: Any) -> dict[str, Any]:
    return {"verb": change.verb, "target": change.target, "diff": diff_lines(change.diff),
            "result": pretty(change.result) if change.result else "", "dry_run": change.dry_run,
            "outcome": getattr(change, "outcome", None) or ""}


def remediations(run: RunRecord) -> list[dict[str, Any]]:
    """The whole remediation plan: what was proposed with its outcome, then what is planned after it."""
    return [{"index": number, "step": i.step, "action": i.action, "summary": i.summary, "status": i.status,
             "condition": i.condition, "note": i.note, "preview": [change_view(c) for c in i.preview]}
            for number, i in enumerate(run.plan, start=1)]


def proposals(run: RunRecord) -> list[dict[str, Any]]:
    return [{"id": p.id, "step": p.step, "action": p.action, "target": p.target, "summary": p.summary,
             "reason": p.reason, "risk": p.risk, "status": p.status, "warnings": list(p.warnings),
             "dry_run_as": p.dry_run_as or "", "changes": [change_view(c) for c in p.dry_run]}
            for p in run.proposals]


def decisions(items: list[Decision]) -> list[dict[str, Any]]:
    return [{"step": d.step, "decision": d.decision, "actor": d.actor, "at": when(d.at), "at_iso": iso(d.at),
             "reason": d.reason, "identity": str(d.identity) if d.identity else ""} for d in items]


def audit(items: list[AuditEntry]) -> list[dict[str, Any]]:
    return [{"at": when(e.at), "at_iso": iso(e.at), "actor": e.actor, "action": e.action,
             "detail": bounded(json.dumps(e.detail, sort_keys=True, default=str), 4000) if e.detail else ""}
            for e in items]


def header(run: RunRecord) -> dict[str, Any]:
    trigger = run.trigger or {}
    return {"id": run.id, "runbook": run.runbook, "status": str(run.status), "active": not run.status.finished,
            "requester": run.requester, "trigger": str(trigger.get("kind") or trigger.get("source") or "manual"),
            "params": run.params, "dry_run": run.dry_run, "auto_approve": run.auto_approve,
            "created": when(run.created_at), "created_iso": iso(run.created_at), "finished": when(run.finished_at),
            "took": took(run.created_at, run.finished_at), "awaiting_step": run.awaiting_step or "",
            "deadline": when(run.approval_deadline), "error": run.error or "",
            "cluster": str(trigger.get("cluster") or "")}


def page(view: RunView) -> dict[str, Any]:
    """The template context of one run, redacted as a whole (defence in depth: the engine redacts too)."""
    run = view.run
    runbook = runbook_of(run)
    external = (run.trigger or {}).get("external_url")
    context = {"run": header(run), "alerts": [alert_view(a, external) for a in view.alerts],
               "links": links(run, runbook), "plan": plan(run, runbook), "findings": findings(run),
               "remediations": remediations(run), "proposals": proposals(run),
               "changes": [change_view(c) for c in run.mutations], "decisions": decisions(view.decisions),
               "audit": audit(view.audit)}
    scrubbed: dict[str, Any] = redact_data(context)
    return scrubbed


def summary(run: RunRecord) -> dict[str, Any]:
    """One row of the run list (HTML) and one item of its JSON."""
    return {"run_id": run.id, "runbook": run.runbook, "status": str(run.status), "requester": redact(run.requester),
            "created_at": run.created_at, "finished_at": run.finished_at, "created": when(run.created_at),
            "took": took(run.created_at, run.finished_at), "awaiting_step": run.awaiting_step,
            "findings": len(run.findings), "proposals": len(run.proposals), "target": _target(run)}


def _target(run: RunRecord) -> str:
    values = [str(v) for v in run.params.values() if isinstance(v, str | int) and not isinstance(v, bool)]
    return redact(", ".join(values))[:200]
