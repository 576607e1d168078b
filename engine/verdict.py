"""What a run concludes: findings with evidence and proposed remediations with their exact change."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "critical"]
Risk = Literal["low", "medium", "high"]
ProposalStatus = Literal["pending", "approved", "rejected", "executed", "failed", "skipped", "expired"]
PlanStatus = Literal["awaiting_approval", "planned", "executed", "skipped", "rejected", "failed", "timed_out",
                     "effect_unknown"]
# What is true of a change sent for real: confirmed by the answer or by re-reading the target afterwards.
ChangeOutcome = Literal["applied", "not applied", "effect unknown"]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Evidence(_Data):
    """Where a finding comes from: an object, the field read, and the value seen there."""

    object: str
    field: str
    value: Any = None


class Finding(_Data):
    """One conclusion of the diagnosis. `info` findings are explicit all-clears, never alarms."""

    id: str
    severity: Severity
    summary: str
    evidence: tuple[Evidence, ...] = ()
    step: str = ""


class Change(_Data):
    """The exact request a remediation makes, as the server answered it under dry-run (or for real)."""

    verb: str
    target: str
    request: dict[str, Any] = Field(default_factory=dict)
    diff: tuple[str, ...] = ()
    dry_run: bool = True
    result: dict[str, Any] = Field(default_factory=dict)
    outcome: ChangeOutcome | None = None  # None under dry-run


class PlanItem(_Data):
    """One remediation of the whole plan, so an approver sees every step before approving the first.

    A `planned` item carries the condition it waits on and, where it could be computed, a `preview`:
    its dry-run against today's state, before the earlier steps change it (the real dry-run is made
    again when the step is reached)."""

    step: str
    index: int
    action: str
    summary: str
    status: PlanStatus
    condition: str = ""
    preview: tuple[Change, ...] = ()
    note: str = ""


class Proposal(_Data):
    """A remediation step the run wants to execute, waiting for (or past) a human decision."""

    id: str
    step: str
    action: str
    target: str
    summary: str
    reason: str
    risk: Risk
    dry_run: tuple[Change, ...] = ()
    status: ProposalStatus = "pending"
    warnings: tuple[str, ...] = ()
    dry_run_as: str | None = None  # the approver identity the dry-run impersonated; None: the engine's own
    planned: tuple[PlanItem, ...] = ()  # the remediations after this one, as planned when it was proposed
