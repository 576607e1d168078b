"""Executes one step: condition, argument rendering, permission check, timeout and retries."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import ValidationError

from engine.actions import (
    Action,
    ActionArgs,
    ActionContext,
    ActionKind,
    ActionRegistry,
    ArgumentProblem,
    Authorized,
    Identity,
    Permission,
    PermissionChecker,
)
from engine.errors import (
    ConflictError,
    ForbiddenError,
    OutcomeUnknown,
    PermanentError,
    StepError,
    StepTimeout,
)
from engine.foreach import bind_item
from engine.model import Step
from engine.proposal_scope import SharedReads
from engine.records import RunRecord, StepRecord, StepStatus
from engine.redaction import find_marker, redact, redact_data, redact_evidence
from engine.templating import Templating
from engine.verdict import Change, Evidence, Finding
from engine.workers import WorkerPool


class ActionCrashed(PermanentError):
    """The action's code raised something it should not have: a bug, reported instead of crashing the run."""


class StartHook(Protocol):
    def __call__(self, run: RunRecord, record: StepRecord, timeout: float) -> None: ...


# Picks, from a step's rendered arguments, the identity it acts as, already checked to be allowed to;
# raises ForbiddenError when there is none.
IdentityChoice = Callable[[dict[str, Any]], Identity]


class StepRunner:
    def __init__(self, registry: ActionRegistry, templating: Templating, sleep: Callable[[float], None]) -> None:
        self.registry = registry
        self.templating = templating
        self.sleep = sleep
        self.pool = WorkerPool()

    def execute(
        self,
        run: RunRecord,
        index: int,
        step: Step,
        context: dict[str, Any],
        *,
        dry_run: bool,
        checker: PermissionChecker | None,
        on_start: StartHook,
        approved: StepRecord | None = None,
        identity: Identity | None = None,
        choose_identity: IdentityChoice | None = None,
        reads: SharedReads | None = None,
    ) -> StepRecord:
        """Run `step` and return its record; never raises for the step's own failures.

        `approved` is the proposal record of a remediation being executed after its approval: the run
        starts from it (same inputs, findings and dry-run), so even a crash mid-change leaves on record
        what was approved and where. `choose_identity` replaces `identity` when who may act depends on
        the rendered arguments (their namespace); it does the permission check itself. `reads` (the
        proposal's shared reads) reaches the action only under dry-run."""
        action = self.registry.get(step.action)
        record = StepRecord(index, step.id, step.action, StepStatus.RUNNING, title=self._title(step, context),
                            started_at=time.time())
        if approved is not None:
            record.inputs, record.findings = dict(approved.inputs), list(approved.findings)
            record.changes = list(approved.changes)
            record.proposal = approved.proposal.model_copy(update={"status": "approved"}) if approved.proposal else None
        deadline = time.monotonic() + step.timeout  # the step's timeout covers rendering its templates too
        try:
            has_item, cut = bind_item(self.templating, step, context)
            if cut is not None and approved is None:
                record.findings.append(cut)
            if step.foreach_index is not None:
                record.title = self._title(step, context) if has_item else step.title
            if approved is None and (not has_item or (step.when is not None and not self.templating.evaluate(
                    step.when, context, deadline=deadline))):
                record.status = StepStatus.SKIPPED
                record.finished_at = time.time()
                return record
            if approved is None:
                record.inputs = self.templating.render_value(step.with_, context, deadline=deadline)
                if action.kind == ActionKind.REMEDIATE:
                    refuse_redacted(action, record.inputs)
            on_start(run, record, step.timeout)
            args = validate_args(action, record.inputs)
            if choose_identity is not None:
                identity = choose_identity(record.inputs)
                checker = None  # it asked already, to choose
            if checker is None or action.kind != ActionKind.REMEDIATE:
                self._attempts(run, step, action, args, record, dry_run, identity, reads if dry_run else None)
            else:
                self._checked(run, step, action, args, record, dry_run, identity, reads, checker)
        except StepError as exc:
            _fail(record, exc)
        record.finished_at = time.time()
        return record

    def _title(self, step: Step, context: dict[str, Any]) -> str:
        """The rendered title; the raw one when it refers to something this run does not have."""
        try:
            return str(self.templating.render_value(step.title, context))
        except StepError:
            return step.title

    def _checked(self, run: RunRecord, step: Step, action: Action[Any], args: ActionArgs, record: StepRecord,
                 dry_run: bool, identity: Identity | None, reads: SharedReads | None,
                 checker: PermissionChecker) -> None:
        """A change is sent only after the access reviews say `identity` may make all of it, so nothing is
        left half-applied. A dry-run goes first instead: the cluster authorizes it like the real request, so
        what it got through needs no review; the reviews ask only the rest, and name every missing grant
        when it was refused."""
        if not dry_run:
            _check_permissions(checker, action, record.inputs, identity)
            self._attempts(run, step, action, args, record, dry_run, identity, None)
            return
        proven: set[Authorized] = set()
        try:
            self._attempts(run, step, action, args, record, dry_run, identity, reads, proven)
        except ForbiddenError:
            _check_permissions(checker, action, record.inputs, identity, proven)
            raise
        _check_permissions(checker, action, record.inputs, identity, proven)

    def _attempts(self, run: RunRecord, step: Step, action: Action[Any], args: ActionArgs, record: StepRecord,
                  dry_run: bool, identity: Identity | None, reads: SharedReads | None,
                  authorized: set[Authorized] | None = None) -> None:
        delay = step.retry.backoff
        changing = action.kind == ActionKind.REMEDIATE and not dry_run
        for attempt in range(1, step.retry.attempts + 1):
            record.attempts = attempt
            ctx = ActionContext(run.id, step.id, dry_run, time.monotonic() + step.timeout, identity, reads=reads,
                                authorized=authorized)
            try:
                output = call_with_timeout(self.pool, action, ctx, args, step.timeout)
            except StepError as exc:
                _keep(record, ctx)
                if changing and isinstance(exc, StepTimeout):
                    # the change may still be under way in the abandoned worker: never send it again
                    raise OutcomeUnknown(f"{exc}; its effect is unknown: check {action.target(args)} before "
                                         "acting again", action.target(args)) from exc
                retry = exc.transient and (not changing or isinstance(exc, ConflictError))
                if not retry or attempt == step.retry.attempts:
                    raise
                self.sleep(max(exc.retry_after or 0.0, min(delay, step.retry.max_delay)))
                delay *= step.retry.factor
                continue
            record.output = redact_data(output or {})
            _keep(record, ctx)
            record.status = StepStatus.SUCCEEDED
            return


def _keep(record: StepRecord, ctx: ActionContext) -> None:
    """Add what an attempt reported, once (a retried attempt repeats the same findings), redacted: changes
    carry request bodies (a Job's env) that the store, the CLI's JSON and chat would otherwise show."""
    seen = {(f.id, f.summary) for f in record.findings}
    record.findings.extend(f for f in map(_redacted, ctx.findings) if (f.id, f.summary) not in seen)
    record.changes.extend(redacted_change(c) for c in ctx.changes)


def redacted_change(change: Change) -> Change:
    return change.model_copy(update={"request": redact_data(change.request), "result": redact_data(change.result),
                                     "diff": tuple(redact(d) for d in change.diff)})


def refuse_redacted(action: Action[Any], inputs: dict[str, Any]) -> None:
    """A redaction marker stands for a value the engine never kept: sending it would change the cluster
    with text nobody meant."""
    where = find_marker(inputs)
    if where is not None:
        raise PermanentError(f"argument {where!r} of {action.name} contains a redacted value ([REDACTED:...]); "
                             "the real value is never stored, so it cannot be sent to the cluster: pass it as a "
                             "param or refer to where it lives (a Secret) instead")


def validate_args(action: Action[Any], inputs: dict[str, Any]) -> ActionArgs:
    try:
        args: ActionArgs = action.args.model_validate(inputs)
        return args
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors(include_url=False)
        )
        raise PermanentError(f"arguments for {action.name} are invalid after rendering: {problems}") from None


def _check_permissions(checker: PermissionChecker, action: Action[Any], inputs: dict[str, Any],
                       identity: Identity | None, proven: set[Authorized] | None = None) -> None:
    missing = missing_permissions(checker, action, inputs, identity, proven)
    if missing:
        who = f"{identity.user} may not" if identity else "the engine may not"
        grants = ", ".join(str(p) for p in missing)
        raise ForbiddenError(f"forbidden: {who} run {action.name}; grant {grants}", permission=grants)


def missing_permissions(checker: PermissionChecker, action: Action[Any], inputs: dict[str, Any],
                        identity: Identity | None, proven: set[Authorized] | None = None) -> list[Permission]:
    """What `identity` (the engine when None) lacks to run `action` with these rendered arguments (which
    decide the permissions of a generic action, e.g. its `kind`). The `proven` ones (its dry-run got them
    through the cluster's authorizer) are not asked."""
    try:
        needed = action.needed(inputs)
    except ArgumentProblem as exc:
        raise PermanentError(f"{action.name}: argument {exc.argument}: {exc.message}") from None
    namespace = inputs.get("namespace")
    where = namespace if isinstance(namespace, str) else None
    if proven:
        needed = tuple(p for p in needed if Authorized.needed(p, where) not in proven)
    return checker.missing(needed, where, identity) if needed else []


def call_with_timeout(
    pool: WorkerPool, action: Action[Any], ctx: ActionContext, args: ActionArgs, timeout: float
) -> dict[str, Any] | None:
    """Run the action on a pooled worker so a hung call cannot hang the run past its timeout."""

    def call() -> Any:
        try:
            return action.func(ctx, args)
        except StepError:
            raise
        except Exception as exc:  # a bug in one action fails its step, not the engine
            raise ActionCrashed(f"{action.name} crashed: {type(exc).__name__}: {exc}") from exc

    finished, value = pool.call(call, timeout, name=ctx.step)
    if not finished:
        raise StepTimeout(f"{action.name} did not finish within its {timeout:g}s timeout")
    if value is not None and not isinstance(value, dict):
        raise ActionCrashed(f"{action.name} returned {type(value).__name__}, not a dict of outputs")
    return value


def _fail(record: StepRecord, exc: StepError) -> None:
    record.status = StepStatus.FAILED
    record.error = redact(str(exc))
    if isinstance(exc, ForbiddenError):
        evidence = (Evidence(object="RBAC", field="permission", value=exc.permission),) if exc.permission else ()
        record.findings.append(Finding(id="permission-missing", severity="warning", summary=record.error,
                                       evidence=evidence, step=record.id))


def _redacted(finding: Finding) -> Finding:
    return finding.model_copy(update={
        "summary": redact(finding.summary),
        "evidence": tuple(e.model_copy(update={"value": redact_evidence(e.field, e.value)}) for e in finding.evidence),
    })
