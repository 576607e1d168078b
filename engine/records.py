"""Plain records of runs and steps as the run store keeps them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from engine.actions import Identity
from engine.verdict import Change, Finding, PlanItem, PlanStatus, Proposal


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    ABORTED = "aborted"
    TIMED_OUT = "timed_out"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)


class StepStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    PROPOSED = "proposed"
    REJECTED = "rejected"
    INTERRUPTED = "interrupted"


@dataclass
class StepRecord:
    index: int
    id: str
    action: str
    status: StepStatus
    title: str = ""
    attempts: int = 0
    inputs: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    proposal: Proposal | None = None
    changes: list[Change] = field(default_factory=list)
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "id": self.id, "action": self.action, "status": str(self.status),
            "title": self.title, "attempts": self.attempts, "inputs": self.inputs, "output": self.output,
            "findings": [f.model_dump(mode="json") for f in self.findings],
            "proposal": self.proposal.model_dump(mode="json") if self.proposal else None,
            "changes": [c.model_dump(mode="json") for c in self.changes],
            "error": self.error, "started_at": self.started_at, "finished_at": self.finished_at,
        }


@dataclass
class RunRecord:
    id: str
    runbook: str
    status: RunStatus
    params: dict[str, Any]
    requester: str
    trigger: dict[str, Any]
    definition: str
    auto_approve: bool = False
    dry_run: bool = False
    cursor: int = 0
    awaiting_step: str | None = None
    approval_deadline: float | None = None
    error: str | None = None
    dedup_key: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        """The verdict's findings: every instance of an id from the first step that reported it (two
        workloads down are two findings), so a verification step that re-reads the same state does not
        repeat the diagnosis (each step's record keeps all of its own)."""
        first_step: dict[str, str] = {}
        found: list[Finding] = []
        for step in self.steps:
            for finding in step.findings:
                if first_step.setdefault(finding.id, step.id) == step.id:
                    found.append(finding)
        return found

    @property
    def proposals(self) -> list[Proposal]:
        return [s.proposal for s in self.steps if s.proposal is not None]

    @property
    def plan(self) -> list[PlanItem]:
        """Every remediation in order: those proposed so far with their outcome, then the rest as the
        latest proposal planned them (`planned` while the run goes on, `skipped` once it ended without
        reaching them, or when their condition turned false)."""
        records = {s.id: s for s in self.steps}
        items = [_proposed_item(self, s) for s in self.steps if s.proposal is not None]
        latest = next((s.proposal for s in reversed(self.steps) if s.proposal is not None), None)
        shown = {i.step for i in items}
        for planned in latest.planned if latest else ():
            if planned.step not in shown:
                items.append(planned.model_copy(update={"status": _planned_status(self, records.get(planned.step))}))
        return sorted(items, key=lambda i: i.index)

    @property
    def mutations(self) -> list[Change]:
        return [c for s in self.steps for c in s.changes if not c.dry_run]

    def to_dict(self) -> dict[str, Any]:
        """The run as one JSON document: the CLI's `--output json` contract."""
        return {
            "run_id": self.id,
            "runbook": self.runbook,
            "status": str(self.status),
            "params": self.params,
            "requester": self.requester,
            "trigger": self.trigger,
            "auto_approve": self.auto_approve,
            "dry_run": self.dry_run,
            "awaiting_step": self.awaiting_step,
            "approval_deadline": self.approval_deadline,
            "error": self.error,
            "steps": [s.to_dict() for s in self.steps],
            "findings": [f.model_dump(mode="json") for f in self.findings],
            "proposals": [p.model_dump(mode="json") for p in self.proposals],
            "plan": [i.model_dump(mode="json") for i in self.plan],
            "mutations": [c.model_dump(mode="json") for c in self.mutations],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        }


_PROPOSAL_PLAN_STATUS: dict[str, PlanStatus] = {
    "executed": "executed", "rejected": "rejected", "skipped": "skipped", "expired": "timed_out",
    "approved": "effect_unknown",  # approved but never recorded as done: it may have been sent
}


def _proposed_item(run: RunRecord, step: StepRecord) -> PlanItem:
    proposal = step.proposal
    assert proposal is not None
    if proposal.status == "pending":
        awaiting = run.status == RunStatus.AWAITING_APPROVAL and run.awaiting_step == step.id
        status: PlanStatus = "awaiting_approval" if awaiting else "planned"
    elif proposal.status == "failed":
        error = step.error or ""
        status = "effect_unknown" if "effect" in error and "unknown" in error else "failed"
    else:
        status = _PROPOSAL_PLAN_STATUS[proposal.status]
    return PlanItem(step=step.id, index=step.index, action=step.action, summary=proposal.summary, status=status)


def _planned_status(run: RunRecord, record: StepRecord | None) -> PlanStatus:
    if record is not None:
        return "failed" if record.status == StepStatus.FAILED else "skipped"
    return "skipped" if run.status.finished else "planned"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    run_id: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    run_id: str
    step: str
    decision: str
    actor: str
    at: float
    reason: str = ""
    identity: Identity | None = None


@dataclass(frozen=True)
class Freeze:
    """A global change freeze: while one is on, approvals are refused (diagnoses and proposals still run)."""

    reason: str
    actor: str
    since: float
