"""A change in flight when its process died: re-read, never re-sent, and what is true recorded.

Before sending an approved change, its owner commits the intent: the step, `running`, with the approved
proposal and its dry-run. When the owner dies (its lease lapses), whoever takes the run over asks the
action's read-back what the target shows now, read-only, with the engine's own credentials, and decides
by this table (first match wins):

    read-back shows    a request sent before the death may still land   verdict
    applied            -                                                 applied: the step succeeded, the run goes on
    effect unknown     -                                                 effect unknown: the run is interrupted
    not applied        no                                                not applied: the step failed, nothing sent
    not applied        yes                                               none yet: read again at the next sweep

An action without a read-back always reads `effect unknown` (the safe default). "May still land": the
owner's client sends nothing after the step's deadline (its timeout, per attempt), and an API server
finishes or abandons a request it received within its own request timeout (`landing_grace`;
kube-apiserver's `--request-timeout` defaults to 1m); until both have passed, an unchanged target proves
nothing. The same bound covers an owner that only stalled (paused, partitioned) past its lease: once the
step's deadline passed, its client refuses to send (the Kubernetes client checks the deadline before
every request), whatever it believes it holds.
"""

from __future__ import annotations

import time
from typing import Any

from engine.actions import Action, ActionContext, ReadBack
from engine.errors import StepError
from engine.model import Step
from engine.records import RunRecord, StepRecord, StepStatus
from engine.redaction import redact
from engine.step_runner import validate_args
from engine.verdict import Change, ChangeOutcome
from engine.workers import WorkerPool

LANDING_GRACE = 60.0  # seconds an API server may still apply a request after the client's timeout
READ_SECONDS = 10.0  # a read-back's own bound


def in_flight_step(run: RunRecord) -> StepRecord | None:
    """The approved remediation the run was executing (started, with its proposal), if any."""
    return next((s for s in run.steps if s.status == StepStatus.RUNNING and s.proposal is not None), None)


def landing_horizon(record: StepRecord, step: Step, grace: float) -> float | None:
    """The time after which no request the dead owner sent for this step can still take effect (None:
    when the step started is not known)."""
    if record.started_at is None:
        return None
    attempts = step.retry.attempts
    return record.started_at + attempts * step.timeout + (attempts - 1) * step.retry.max_delay + grace


def read_back(action: Action[Any] | None, run: RunRecord, record: StepRecord, pool: WorkerPool) -> ReadBack:
    """What the action's read-back shows; `effect unknown` when it has none, fails or overruns. Never raises.
    The evidence is redacted here, whichever way it came (a crash's message may quote a URL with credentials)."""
    reading = _read_back(action, run, record, pool)
    return ReadBack(reading.outcome, redact(reading.evidence))


def _read_back(action: Action[Any] | None, run: RunRecord, record: StepRecord, pool: WorkerPool) -> ReadBack:
    if action is None or action.read_back is None:
        return ReadBack("effect unknown", f"{record.action} has no way to re-read its target")
    hook = action.read_back
    ctx = ActionContext(run.id, record.id, dry_run=True, deadline=time.monotonic() + READ_SECONDS)
    changes = tuple(c for c in record.changes if c.dry_run)
    try:
        args = validate_args(action, record.inputs)
        finished, value = pool.call(lambda: hook(ctx, args, changes), READ_SECONDS, name=f"{record.id}-read")
    except StepError as exc:
        return ReadBack("effect unknown", f"re-reading the target failed: {exc}")
    except Exception as exc:  # noqa: BLE001 - a bug in one read-back must not stop the others
        return ReadBack("effect unknown", f"the read-back of {action.name} crashed: {type(exc).__name__}: {exc}")
    if not finished:
        return ReadBack("effect unknown", f"re-reading the target took longer than {READ_SECONDS:g}s")
    if not isinstance(value, ReadBack):
        return ReadBack("effect unknown", f"the read-back of {action.name} returned {type(value).__name__}")
    return value


def decide(reading: ReadBack, horizon: float | None, now: float) -> ChangeOutcome | None:
    """The verdict by the module's table; None while a request may still land on an unchanged target."""
    if reading.outcome != "not applied":
        return reading.outcome
    if horizon is None:
        return "effect unknown"
    return "not applied" if now >= horizon else None


_ERRORS: dict[ChangeOutcome, str] = {
    "applied": "",
    "not applied": "not applied: the process carrying the run stopped before the change reached {target} "
                   "({evidence}); it was not sent again: re-run the runbook to try again",
    "effect unknown": "the engine stopped while step {step!r} was sending its change; its effect is unknown "
                      "({evidence}); it was not sent again: check {target} before re-running",
}
_STEP_STATUS = {"applied": StepStatus.SUCCEEDED, "not applied": StepStatus.FAILED,
                "effect unknown": StepStatus.INTERRUPTED}


def settled(record: StepRecord, outcome: ChangeOutcome, evidence: str, by: str) -> StepRecord:
    """The step's record with the verdict: its status, its real Change(s) and why, as the store keeps it."""
    proposal = record.proposal
    target = proposal.target if proposal else record.id
    note = f"outcome: {outcome}: re-read by {by} after the process sending it stopped: {evidence}"
    planned = [c for c in record.changes if c.dry_run] or [Change(verb=record.action, target=target)]
    real = [c.model_copy(update={"dry_run": False, "outcome": outcome, "diff": (*c.diff, note),
                                 "request": _without_dry_run(c.request), "result": {"read_back": evidence}})
            for c in planned]
    error = _ERRORS[outcome].format(target=target, evidence=evidence, step=record.id) or None
    status = "executed" if outcome == "applied" else "failed"
    return StepRecord(
        record.index, record.id, record.action, _STEP_STATUS[outcome], record.title, record.attempts,
        record.inputs, {"outcome": outcome, "read_back": evidence}, list(record.findings),
        proposal.model_copy(update={"status": status}) if proposal else None, [*record.changes, *real], error,
        record.started_at, time.time())


def _without_dry_run(request: dict[str, Any]) -> dict[str, Any]:
    """The request as the real send made it: the dry-run's, without `dryRun`."""
    query = {k: v for k, v in (request.get("query") or {}).items() if k != "dryRun"}
    body = request.get("body")
    if isinstance(body, dict) and "dryRun" in body:
        body = {k: v for k, v in body.items() if k != "dryRun"}
    return {**request, "query": query, **({"body": body} if "body" in request else {})}
