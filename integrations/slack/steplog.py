"""One thread reply per finished step, for teams that set `chat_detail: steps` and want a log in the thread
beside the digest (the parent and the diagnosis stay as they are; the run page has the rest).

Each reply is short by design: status, title and action on one line, then what the step found, said,
changed or why it failed, each cut to a few lines. Slack's limits hold by construction (`digest.section`
under 3,000 characters, `digest.fit` at 50 blocks) and every string from outside goes through `render.text`
(redacted, control characters shown, `&<>` escaped).
"""

from __future__ import annotations

import json
from typing import Any

from integrations.slack.digest import code, context, fit, section
from integrations.slack.render import SEVERITY_ICONS, STEP_ICONS, text, unless_applied

FINDINGS = 5  # findings listed per step; the diagnosis reply has them all
OUTPUT_CHARS = 400


def headline(record: dict[str, Any]) -> str:
    """`<icon> *title* · `action` · status`: worded apart from the run's status labels on purpose."""
    status = str(record.get("status", ""))
    title = text(record.get("title") or record.get("id", ""), 200)
    return f"{STEP_ICONS.get(status, ':grey_question:')} *{title}* · `{text(record.get('action', ''), 80)}` · " \
           f"{text(status, 40)}"


def finding_lines(findings: list[dict[str, Any]]) -> list[str]:
    lines = [f"{SEVERITY_ICONS.get(str(f.get('severity', '')), '')} {text(f.get('summary', ''), 300)} "
             f"`{text(f.get('id', ''), 80)}`" for f in findings[:FINDINGS]]
    if len(findings) > FINDINGS:
        lines.append(f"_… and {len(findings) - FINDINGS} more in the diagnosis_")
    return lines


def output_text(record: dict[str, Any]) -> str | None:
    """What a notify said, else the step's output as a few lines of JSON; None when there is none."""
    output = record.get("output") or {}
    if record.get("action") == "notify" and output.get("text"):
        return text(output["text"], 1500)
    if not output or record.get("findings"):
        return None  # the findings say what the output meant
    return code(json.dumps(output, indent=1, default=str), chars=OUTPUT_CHARS)


def change_lines(record: dict[str, Any]) -> list[str]:
    executed = [c for c in record.get("changes") or [] if not c.get("dry_run", True)]
    return [f":hammer_and_wrench: executed `{text(c.get('verb', ''), 40)} {text(c.get('target', ''), 200)}`"
            f"{unless_applied(c)}" for c in executed[:5]]


def step_reply(record: dict[str, Any]) -> dict[str, Any] | None:
    """The step's reply; None for a proposed step, whose approval card follows at once and whose executed
    result is posted when it runs (one reply per step)."""
    status = str(record.get("status", ""))
    if status == "proposed":
        return None
    blocks = [section(headline(record))]
    said = output_text(record)
    if said:
        blocks.append(section(said))
    findings = finding_lines(list(record.get("findings") or []))
    if findings:
        blocks.append(section("\n".join(findings)))
    changes = change_lines(record)
    if changes:
        blocks.append(section("\n".join(changes)))
    if record.get("error"):
        blocks.append(section(code(str(record["error"]))))
    if record.get("started_at") and record.get("finished_at"):
        blocks.append(context(f"took {float(record['finished_at']) - float(record['started_at']):.1f} s"))
    name = record.get("title") or record.get("id")
    return {"text": text(f"step {name}: {status}", 300), "blocks": fit(blocks)}
