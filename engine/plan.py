"""The whole plan: every remediation a run would propose after the one awaiting approval.

An approver must see step 2 and 3 before approving step 1. When a remediation is proposed, the later
remediation steps are walked as if every earlier one had been approved and succeeded: a step whose
condition is false there is not in the plan; one whose condition holds is `planned`, with a `preview`
dry-run against today's state where its arguments can be rendered now; one whose condition depends on
something not known yet (a later re-check) is `planned` with that condition spelled out. Nothing here
changes anything: previews are dry-runs, and only the engine's read of the plan is stored.
"""

from __future__ import annotations

import copy
import re
import time
from typing import Any

from engine.actions import Action, ActionContext, ActionKind, ActionRegistry, Authorized, PermissionChecker
from engine.errors import ForbiddenError, StepError
from engine.foreach import bind_item
from engine.model import Runbook, Step
from engine.proposal_scope import ProposalScope
from engine.redaction import redact
from engine.step_runner import (
    call_with_timeout,
    missing_permissions,
    redacted_change,
    refuse_redacted,
    validate_args,
)
from engine.templating import Templating
from engine.verdict import Change, PlanItem
from engine.workers import WorkerPool

PREVIEW_TIMEOUT = 10.0
PREVIEW_NOTE = "preview: dry-run against the state now, before the earlier steps change it"


class Planner:
    def __init__(self, registry: ActionRegistry, templating: Templating, pool: WorkerPool,
                 checker: PermissionChecker | None = None) -> None:
        self.registry, self.templating, self.pool, self.checker = registry, templating, pool, checker

    def after(self, run_id: str, runbook: Runbook, index: int, context: dict[str, Any],
              preview: bool = True, scope: ProposalScope | None = None) -> tuple[PlanItem, ...]:
        """The remediations after step `index`, assuming it and each planned one before them succeed.
        The previews ask and read through `scope`, the proposal's (a fresh one when None)."""
        scope = scope or ProposalScope.open(self.checker)
        hypothesis = copy.deepcopy(context)
        _assume_succeeded(hypothesis, runbook.steps[index].id)
        previous, items = runbook.steps[index].id, []
        for later in range(index + 1, len(runbook.steps)):
            step = runbook.steps[later]
            if self.registry.get(step.action).kind != ActionKind.REMEDIATE:
                continue
            try:
                has_item, _ = bind_item(self.templating, step, hypothesis)  # a foreach slot takes its item
            except StepError:
                has_item = True  # its list is not known yet: the condition below says so
            if not has_item:
                continue
            known, holds = self._condition(step, hypothesis)
            if known and not holds:
                continue
            items.append(self._item(run_id, step, later, hypothesis, previous, known, preview, scope))
            _assume_succeeded(hypothesis, step.id)
            previous = step.id
        return tuple(items)

    def _condition(self, step: Step, context: dict[str, Any]) -> tuple[bool, bool]:
        """(known now, holds): a condition naming a step that has not run yet is not known."""
        if step.when is None:
            return True, True
        try:
            return True, self.templating.evaluate(step.when, context)
        except StepError:
            return False, False

    def _item(self, run_id: str, step: Step, index: int, context: dict[str, Any], previous: str, known: bool,
              preview: bool, scope: ProposalScope) -> PlanItem:
        condition = f"after {previous} is approved and succeeds"
        if not known:
            condition += f", and only if {_one_line(step.when or '')}"
        changes: tuple[Change, ...] = ()
        note = "" if known else "decided when the earlier steps have run"
        if known and preview:
            changes, note = self._preview(run_id, step, context, scope)
        return PlanItem(step=step.id, index=index, action=step.action, summary=self._summary(step, context),
                        status="planned", condition=condition, preview=changes, note=note)

    def _summary(self, step: Step, context: dict[str, Any]) -> str:
        source = step.proposal.summary if step.proposal and step.proposal.summary else step.title
        try:
            return redact(str(self.templating.render_value(source, context)))
        except StepError:
            return step.title

    def _preview(self, run_id: str, step: Step, context: dict[str, Any],
                 scope: ProposalScope) -> tuple[tuple[Change, ...], str]:
        """The step's dry-run now, by the engine's identity; ((), why not) when it cannot be made. The cluster
        authorizes a dry-run like the real request: access reviews are asked only to name what it refused."""
        action = self.registry.get(step.action)
        try:
            inputs = self.templating.render_value(step.with_, context)
            refuse_redacted(action, inputs)
            args = validate_args(action, inputs)
            ctx = ActionContext(run_id, step.id, True, time.monotonic() + min(step.timeout, PREVIEW_TIMEOUT),
                                reads=scope.reads, authorized=set() if scope.checker is not None else None)
            try:
                call_with_timeout(self.pool, action, ctx, args, min(step.timeout, PREVIEW_TIMEOUT))
            except ForbiddenError as exc:
                return (), f"no preview: {_refused(scope, action, inputs, ctx.authorized, exc)}"
        except StepError as exc:
            return (), f"no preview: {redact(str(exc))}"
        return tuple(redacted_change(c) for c in ctx.changes), PREVIEW_NOTE


def _refused(scope: ProposalScope, action: Action[Any], inputs: dict[str, Any], proven: set[Authorized] | None,
             exc: ForbiddenError) -> str:
    """Why the cluster refused a preview: every grant the engine lacks, when the access reviews can say."""
    lacking = missing_permissions(scope.checker, action, inputs, None, proven) if scope.checker is not None else []
    if not lacking:
        return redact(str(exc))
    return f"the engine's own identity may not dry-run this step (grant {', '.join(str(p) for p in lacking)})"


def _assume_succeeded(context: dict[str, Any], step_id: str) -> None:
    context["steps"][step_id] = {"status": "succeeded", "output": {}, "error": None, "findings": []}


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
