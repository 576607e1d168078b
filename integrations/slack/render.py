"""Block Kit pieces of a run's thread: step results, proposals with Approve/Reject, decisions, the outcome
(the parent message and the diagnosis are `digest`).

Everything shown comes from the cluster, alerts or people, so every string goes through `text()`:
secrets redacted, control characters made visible, `&<>` escaped (an alert label cannot become `<!channel>`
or a fake link), and cut to Slack's limits. Actor mentions are the only markup built here, from Slack user ids.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from engine.records import RunRecord
from engine.redaction import redact
from engine.text import escape_controls

APPROVE = "runbook_approve"
REJECT = "runbook_reject"
_SECTION_LIMIT = 2900
_STATUS = {
    "pending": ":hourglass_flowing_sand: pending", "running": ":gear: running",
    "awaiting_approval": ":raising_hand: awaiting approval", "succeeded": ":white_check_mark: succeeded",
    "failed": ":x: failed", "rejected": ":no_entry_sign: rejected", "aborted": ":octagonal_sign: aborted",
    "timed_out": ":alarm_clock: timed out", "interrupted": ":warning: interrupted",
}
STEP_ICONS = {"succeeded": ":white_check_mark:", "failed": ":x:", "skipped": ":fast_forward:", "proposed": ":memo:",
              "rejected": ":no_entry_sign:", "interrupted": ":warning:", "running": ":gear:"}
SEVERITY_ICONS = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


def text(value: Any, limit: int = _SECTION_LIMIT) -> str:
    """Data made safe for mrkdwn: redacted, escaped, bounded."""
    out = escape_controls(redact(str(value)), keep_newlines=True).replace("&", "&amp;").replace("<", "&lt;").replace(
        ">", "&gt;")
    return out if len(out) <= limit else out[: limit - 1] + "…"


def who(actor: str) -> str:
    """A Slack mention for Slack user ids, the escaped name otherwise (e.g. `alertmanager`)."""
    return f"<@{actor}>" if _USER_ID.match(actor) else text(actor, 100)


def status_label(status: str) -> str:
    return _STATUS.get(status, text(status, 50))


def _section(body: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": body[:_SECTION_LIMIT] or " "}}


def _context(*lines: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": line[:_SECTION_LIMIT]} for line in lines[:10]]}


def trigger_text(run: RunRecord) -> str:
    trigger = run.trigger or {}
    if trigger.get("kind") == "alert":
        labels = (trigger.get("alert") or {}).get("labels") or {}
        severity = f" ({text(labels['severity'], 40)})" if labels.get("severity") else ""
        return f"alert *{text(labels.get('alertname', '?'), 200)}*{severity}"
    if trigger.get("kind") == "slack":
        return f"{who(run.requester)} via `/runbook`"
    return who(run.requester)


def _changes(changes: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    blocks = []
    for change in changes[:5]:
        diff = "\n".join(change.get("diff") or ()) or json.dumps(change.get("request") or {}, default=str)
        blocks.append(_section(f"{label} `{text(change.get('verb', ''), 40)} {text(change.get('target', ''), 200)}`"
                               f"{unless_applied(change)}\n```{text(diff, 2000)}```"))
    return blocks


def unless_applied(change: dict[str, Any]) -> str:
    """` (not applied)` or ` (effect unknown)` after a change that was sent but did not surely apply."""
    outcome = change.get("outcome")
    return f" ({text(outcome, 40)})" if outcome and outcome != "applied" else ""


def step_result(record: dict[str, Any]) -> dict[str, Any] | None:
    """A thread reply for a finished step that said something (a notify), changed something, or failed; None
    otherwise: findings go to the run's one diagnosis reply (`digest`), the rest is on the run page."""
    status = str(record.get("status", ""))
    said = (record.get("output") or {}).get("text") if record.get("action") == "notify" else None
    executed = [c for c in record.get("changes") or [] if not c.get("dry_run", True)]
    if not (said or executed or record.get("error")) or status in ("skipped", "proposed"):
        return None
    title = text(record.get("title") or record.get("id", ""), 200)
    blocks = [_section(f"{STEP_ICONS.get(status, '')} *{title}* (`{text(record.get('action', ''), 80)}`) "
                       f"{text(status, 40)}")]
    if said:
        blocks.append(_section(text(said)))
    blocks += _changes(executed, ":hammer_and_wrench: executed")
    if record.get("error"):
        blocks.append(_section(f"```{text(record['error'], 2000)}```"))
    return {"text": text(f"{record.get('title') or record.get('id')}: {status}", 3000), "blocks": blocks}


def proposal(run_id: str, step: str, data: dict[str, Any], deadline: float | None, *,
             outcome: str | None = None) -> dict[str, Any]:
    """The approval request; with `outcome` (e.g. "approved by <@U1>") it is the same card without buttons."""
    summary = text(data.get("summary") or step, 500)
    fields = [f"*Target*\n`{text(data.get('target', ''), 200)}`", f"*Action*\n`{text(data.get('action', ''), 100)}`",
              f"*Risk*\n{text(data.get('risk', ''), 20)}"]
    if deadline:
        when = dt.datetime.fromtimestamp(deadline, dt.UTC).strftime("%H:%M UTC")
        fields.append(f"*Decide by*\n<!date^{int(deadline)}^{{time}}|{when}>")
    blocks: list[dict[str, Any]] = [
        _section(f":raising_hand: *Approval needed:* {summary}"),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if data.get("reason"):
        blocks.append(_section(f"*Why:* {text(data['reason'], 1000)}"))
    as_whom = f" as `{text(data['dry_run_as'], 200)}`" if data.get("dry_run_as") else ""
    blocks += _changes(list(data.get("dry_run") or []), f":mag: dry-run{as_whom}")
    if data.get("warnings"):
        blocks.append(_context(*(f":warning: {text(w, 500)}" for w in data["warnings"])))
    blocks += _plan(list(data.get("planned") or []))
    if outcome is None:
        value = json.dumps({"run": run_id, "step": step}, separators=(",", ":"))
        blocks.append({"type": "actions", "block_id": f"approval:{run_id}:{step}", "elements": [
            {"type": "button", "action_id": APPROVE, "style": "primary", "value": value,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": REJECT, "style": "danger", "value": value,
             "text": {"type": "plain_text", "text": "Reject"}},
        ]})
    else:
        blocks.append(_context(outcome))
    summary = text(data.get("summary") or step, 2000)  # the notification text: redacted and escaped too
    return {"text": f"Approval needed: {summary}" if outcome is None else f"{summary}: {outcome}",
            "blocks": blocks}


def _plan(planned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rest of the plan under the card, so the approver sees every step before approving the first."""
    if not planned:
        return []
    lines = [":clipboard: *Then, planned:*"]
    for n, item in enumerate(planned[:8], start=2):
        lines.append(f"{n}. {text(item.get('summary', ''), 300)} (`{text(item.get('step', ''), 80)}`) — "
                     f"_{text(item.get('condition', ''), 300)}_")
        for change in (item.get("preview") or [])[:2]:
            diff = "; ".join(change.get("diff") or ()) or text(change.get("verb", ""), 40)
            lines.append(f"    preview `{text(change.get('target', ''), 120)}`: {text(diff, 300)}")
    return [_section("\n".join(lines))]


def decision(data: dict[str, Any], step: str) -> dict[str, Any]:
    verb = "approved" if data.get("decision") == "approved" else "rejected"
    icon = ":+1:" if verb == "approved" else ":no_entry_sign:"
    reason = f": {text(data['reason'], 500)}" if data.get("reason") else ""
    return {"text": f"{verb} {step}", "blocks": [_section(f"{icon} {who(str(data.get('actor', '?')))} {verb} "
                                                           f"`{text(step, 80)}`{reason}")]}


def finished(run: dict[str, Any]) -> dict[str, Any]:
    status = str(run.get("status", ""))
    body = f"*Run {status_label(status)}*"
    if status == "timed_out":
        body = "*:alarm_clock: Approval timed out* — nobody decided in time; nothing was changed."
    if run.get("error") and status != "timed_out":
        body += f"\n```{text(run['error'], 2000)}```"
    mutations = run.get("mutations") or []
    if mutations:
        body += "\nChanged: " + ", ".join(f"`{text(c.get('verb', ''), 40)} {text(c.get('target', ''), 200)}`"
                                          f"{unless_applied(c)}" for c in mutations[:10])
    return {"text": f"run {run.get('run_id')} {status}", "blocks": [_section(body)]}


def note(body: str) -> dict[str, Any]:
    """A plain thread reply; `body` is already-safe mrkdwn built by the caller."""
    return {"text": body, "blocks": [_section(body)]}


def outlook(step: str, entries: list[Any]) -> str:
    """Who can approve `step` with their own Kubernetes permissions (entries: `identities.Outlook`)."""
    lines = [f"*Who can approve `{text(step, 80)}`* (asked the cluster's RBAC):"]
    for entry in entries:
        if entry.can:
            as_ = f"as `{text(entry.identity, 200)}`" if entry.identity else "with the engine's own role (fallback)"
            lines.append(f"• :white_check_mark: {_mention(entry.approver)} {as_}")
        else:
            lines.append(f"• :no_entry: {_mention(entry.approver)}: {text(entry.refusal, 500)}")
    if entries and not any(e.can for e in entries):
        lines.insert(0, ":warning: *Nobody listed can approve this remediation* in Kubernetes; an Approve click "
                        "will be refused until their RBAC allows it or someone else is mapped.")
    return "\n".join(lines)


def _mention(entry: str) -> str:
    if re.match(r"^S[A-Z0-9]+$", entry):
        return f"<!subteam^{entry}>"
    return who(entry)
