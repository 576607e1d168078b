"""What the pure analysis functions return: the action output plus findings, emitted in one place.

Keeping analysis free of `ActionContext` lets it be unit-tested over plain dicts, and keeps actions
to "fetch, analyse, emit".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.actions import ActionContext
from engine.verdict import Evidence, Severity


@dataclass
class Found:
    id: str
    severity: Severity
    summary: str
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class Report:
    output: dict[str, Any] = field(default_factory=dict)
    findings: list[Found] = field(default_factory=list)

    def add(self, id: str, severity: Severity, summary: str, evidence: list[Evidence] | None = None) -> None:
        self.findings.append(Found(id, severity, summary, list(evidence or [])))

    def ids(self) -> list[str]:
        return [f.id for f in self.findings]

    def emit(self, ctx: ActionContext) -> dict[str, Any]:
        for found in self.findings:
            ctx.finding(found.id, found.severity, found.summary, found.evidence)
        return self.output


def ev(obj: str, field_: str, value: Any) -> Evidence:
    return Evidence(object=obj, field=field_, value=value)
