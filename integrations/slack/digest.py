"""The run as a digest, not a log: one parent message (status, target, cluster, verdict, the whole plan,
links) updated in place, and one thread reply with the diagnosis (findings by severity, their evidence
readable, the kubectl command to see it yourself). Everything else is on the run page.

Slack's limits hold by construction: a section's text stays under 3,000 characters, a message under 50
blocks; logs and diffs go in code blocks with real newlines, cut with a pointer to the run page. Every
string from outside goes through `render.text` (redacted, control characters shown, `&<>` escaped) and every
link through `link` (http(s) only, `|` and `>` percent-encoded so a URL cannot close the link).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlsplit

from engine.model import Runbook
from engine.records import RunRecord
from engine.verdict import Evidence, Finding, PlanItem
from integrations.slack.render import status_label, text, trigger_text

SECTION = 3000
BLOCKS = 50
CODE_LINES = 15
CODE_CHARS = 1500
GROUP_FROM = 4  # this many findings of one id or more are shown as one grouped block
_SEVERITY = (("critical", ":red_circle:", "Critical"), ("warning", ":large_orange_circle:", "Warning"),
             ("info", ":large_blue_circle:", "Info"))
_PLAN = {"awaiting_approval": ":raising_hand:", "planned": ":clipboard:", "executed": ":white_check_mark:",
         "skipped": ":fast_forward:", "rejected": ":no_entry_sign:", "failed": ":x:", "timed_out": ":alarm_clock:",
         "effect_unknown": ":warning:"}


# small safe pieces ------------------------------------------------------------------------------------


def link(url: Any, label: str) -> str | None:
    """`<url|label>` for an http(s) URL; None for anything else (javascript:, mailto:, junk, absurd length)."""
    if not isinstance(url, str) or len(url) > 2000:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    safe = quote(url.strip(), safe=":/?#[]@!$&'()*+,;=%-._~")  # keeps a URL a URL; `|<>` and spaces encoded
    return f"<{safe.replace('&', '&amp;')}|{text(label, 80)}>"


def code(value: str, more: str | None = None, chars: int = CODE_CHARS) -> str:
    """A code block with real newlines, cut at `CODE_LINES` lines / `chars` characters."""
    lines = value.replace("\r\n", "\n").split("\n")
    body = "\n".join(lines[:CODE_LINES])
    cut = len(lines) > CODE_LINES or len(body) > chars
    body = text(body[:chars], chars + 200).replace("```", "'''")
    tail = ("\n_… cut; full text on the " + (more or "run page") + "_") if cut else ""
    return f"```{body}```{tail}"


def section(body: str) -> dict[str, Any]:
    if len(body) > SECTION:
        body = body[: SECTION - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": body or " "}}


def context(*parts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": p[:SECTION]} for p in parts[:10] if p]}


def fit(blocks: list[dict[str, Any]], more: str = "the run page") -> list[dict[str, Any]]:
    """At most `BLOCKS` blocks: the overflow becomes one line saying where the rest is."""
    if len(blocks) <= BLOCKS:
        return blocks
    return [*blocks[: BLOCKS - 1], context(f"… {len(blocks) - BLOCKS + 1} more on {more}")]


def params_text(params: dict[str, Any]) -> str:
    """`key=value` of the params that have a value: `selector=` says nothing."""
    shown = [f"{k}={v}" for k, v in params.items() if v not in (None, "", [], {})]
    return f"`{text(', '.join(shown), 500)}`" if shown else "—"


# links ------------------------------------------------------------------------------------------------


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def alert_of(run: RunRecord) -> dict[str, Any]:
    return _mapping((run.trigger or {}).get("alert"))


def silence_url(external_url: Any, labels: dict[str, Any]) -> str | None:
    if not isinstance(external_url, str) or not labels:
        return None
    matchers = ",".join(f'{k}="{str(v).replace(chr(34), chr(92) + chr(34))}"' for k, v in sorted(labels.items()))
    return f"{external_url.rstrip('/')}/#/silences/new?filter={quote('{' + matchers + '}', safe='')}"


def links(run: RunRecord, page: str | None, extra: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """The run page, the alert's source graph, its runbook_url, a pre-filled silence, and runbook `links:`."""
    alert = alert_of(run)
    annotations, labels = _mapping(alert.get("annotations")), _mapping(alert.get("labels"))
    candidates = [(page, "Run page"), (alert.get("generatorURL"), "Source"),
                  (annotations.get("runbook_url"), "Runbook doc"),
                  (silence_url((run.trigger or {}).get("external_url"), labels), "Silence"), *extra]
    return [made for url, label in candidates if (made := link(url, label))]


# the parent -------------------------------------------------------------------------------------------


def verdict_line(findings: list[Finding]) -> str:
    counts = [f"{icon} {n} {name.lower()}" for sev, icon, name in _SEVERITY
              if (n := sum(f.severity == sev for f in findings))]
    if not counts:
        return "No findings yet."
    top = next((f for sev, _, _ in _SEVERITY for f in findings if f.severity == sev), findings[0])
    return f"{' · '.join(counts)} — *{text(top.summary, 400)}*"


def plan_lines(plan: list[PlanItem]) -> list[str]:
    lines = []
    for n, item in enumerate(plan[:12], start=1):
        state = item.status.replace("_", " ")
        condition = f" — _{text(item.condition, 200)}_" if item.status == "planned" and item.condition else ""
        lines.append(f"{n}. {_PLAN.get(item.status, '')} {text(item.summary or item.step, 300)} "
                     f"(`{text(item.step, 80)}`, {state}){condition}")
    if len(plan) > 12:
        lines.append(f"… and {len(plan) - 12} more on the run page")
    return lines


def parent(run: RunRecord, runbook: Runbook, *, page: str | None = None,
           extra_links: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """The run's one top-level message, re-rendered on every change."""
    severity = dict((s, icon) for s, icon, _ in _SEVERITY).get(runbook.metadata.severity, "")
    cluster = (run.trigger or {}).get("cluster") or _mapping(alert_of(run).get("labels")).get("cluster")
    fields = [f"*Status*\n{status_label(str(run.status))}", f"*Target*\n{params_text(run.params)}",
              f"*Trigger*\n{trigger_text(run)}", f"*Run*\n`{text(run.id, 40)}`"]
    if cluster:
        fields.append(f"*Cluster*\n`{text(cluster, 100)}`")
    blocks = [section(f"{severity} *{text(runbook.metadata.title, 200)}* · `{text(runbook.name, 63)}`"),
              {"type": "section", "fields": [{"type": "mrkdwn", "text": f[:2000]} for f in fields]}]
    annotations = _mapping(alert_of(run).get("annotations"))
    about = annotations.get("description") or annotations.get("summary")
    if about:
        blocks.append(context(text(about, 600)))
    blocks.append(section(f"*Verdict:* {verdict_line(run.findings)}"))
    if run.plan:
        blocks.append(section("*Plan*\n" + "\n".join(plan_lines(run.plan))))
    if run.error and run.status.finished:
        blocks.append(section(code(str(run.error))))
    shown = links(run, page, extra_links)
    if shown:
        blocks.append(context(" · ".join(shown)))
    target = ", ".join(str(v) for v in run.params.values() if v not in (None, "", [], {}))
    summary = f"{runbook.metadata.title} ({runbook.name}) — {run.status}: {target} · run {run.id}"
    return {"text": text(summary, 300), "blocks": fit(blocks)}


# the diagnosis reply ----------------------------------------------------------------------------------


def kubectl(evidence: Evidence) -> str | None:
    """The command that shows the evidence's object, from its `Kind namespace/name` (or `Kind name`)."""
    kind, _, ref = evidence.object.partition(" ")
    if not kind or not ref or not kind[:1].isupper() or " " in ref or kind == "Event":
        return None
    namespace, _, name = ref.rpartition("/")
    where = f" -n {namespace}" if namespace else ""
    if evidence.field in ("log", "logs", "log tail"):
        return f"kubectl logs{where} {name} --previous"
    return f"kubectl get {kind.lower()}{where} {name} -o yaml"


def evidence_text(evidence: Evidence, page: str | None, chars: int = CODE_CHARS) -> str:
    value = evidence.value
    shown = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
    head = f"`{text(evidence.object, 150)}` {text(evidence.field, 100)}"
    if "\n" in shown or len(shown) > 120:
        return f"{head}\n{code(shown, link(page, 'run page') if page else None, chars)}"
    return f"{head}: `{text(shown, 200)}`"


def finding_block(finding: Finding, page: str | None) -> dict[str, Any]:
    """One finding as one section: summary, evidence, and how to look yourself; code blocks are never cut
    open: evidence that does not fit is left to the run page."""
    shown = finding.evidence[:4]
    budget = min(CODE_CHARS, 1500 // max(1, len(shown)))
    evidence = [evidence_text(e, page, budget) for e in shown]
    commands = list(dict.fromkeys(c for e in finding.evidence if (c := kubectl(e))))[:2]
    head = f"• *{text(finding.summary, 500)}* `{text(finding.id, 80)}`"
    tail = ["see it: " + " ; ".join(f"`{text(c, 200)}`" for c in commands)] if commands else []
    dropped = len(finding.evidence) - len(shown)
    while evidence and len("\n".join([head, *evidence, *tail])) > SECTION - 60:
        evidence.pop()
        dropped += 1
    more = [f"_… {dropped} more evidence on the run page_"] if dropped else []
    return section("\n".join([head, *evidence, *more, *tail]))


def group_block(same: list[Finding]) -> dict[str, Any]:
    """Many findings of one id (every workload on a dead node) as one block listing each of them."""
    lines = [f"• {text(f.summary, 300)}" for f in same[:15]]
    more = [f"… and {len(same) - 15} more on the run page"] if len(same) > 15 else []
    return section("\n".join([f"*{len(same)} × `{text(same[0].id, 80)}`*", *lines, *more]))


def severity_blocks(findings: list[Finding], page: str | None) -> list[dict[str, Any]]:
    """One block per finding, in order; an id found `GROUP_FROM` times or more is one grouped block."""
    ids = [f.id for f in findings]
    blocks, grouped = [], set()
    for finding in findings:
        if ids.count(finding.id) < GROUP_FROM:
            blocks.append(finding_block(finding, page))
        elif finding.id not in grouped:
            grouped.add(finding.id)
            blocks.append(group_block([f for f in findings if f.id == finding.id]))
    return blocks


def diagnosis(run: RunRecord, *, page: str | None = None) -> dict[str, Any] | None:
    """The findings grouped by severity (most severe first); None when there are none."""
    findings = run.findings
    if not findings:
        return None
    blocks: list[dict[str, Any]] = [section(f":stethoscope: *Diagnosis* — {verdict_line(findings)}")]
    for severity, icon, name in _SEVERITY:
        same = [f for f in findings if f.severity == severity]
        if same:
            blocks.append(context(f"{icon} *{name}* ({len(same)})"))
            blocks += severity_blocks(same, page)
    return {"text": text(f"Diagnosis of run {run.id}: {len(findings)} finding(s)", 300), "blocks": fit(blocks)}
