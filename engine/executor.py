"""Runs runbooks step by step as a state machine persisted in the run store.

pending -> running -> awaiting_approval -> running -> succeeded | failed | rejected | aborted | timed_out.
Every transition is stored before the next one starts, so any process can resume any run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from engine.actions import Action, ActionKind, ActionRegistry, Identity, PermissionChecker
from engine.approver_dry_run import ApproverDryRun
from engine.errors import ApprovalError, RunbookError, RunStateError, StepError, StoreError
from engine.events import EventSink, RunEvent, snapshot
from engine.in_flight import LANDING_GRACE, decide, in_flight_step, landing_horizon, read_back, settled
from engine.model import Runbook, Step
from engine.params import coerce_params
from engine.plan import Planner
from engine.policy import Outlook, Policy
from engine.proposal_scope import ProposalScope
from engine.records import Decision, Freeze, RunRecord, RunStatus, StepRecord, StepStatus
from engine.redaction import redact
from engine.run_store import RunStore
from engine.step_runner import StepRunner
from engine.templating import Templating
from engine.verdict import Proposal

log = logging.getLogger("runbook.engine")
_DEFINITIONS = 64  # parsed runbooks kept (runs of one runbook share a definition)


class _NullSink:
    def emit(self, event: RunEvent) -> None:
        return None


class Executor:
    """Starts, resumes and decides runs. Stateless itself: everything lives in the store."""

    def __init__(
        self,
        registry: ActionRegistry,
        store: RunStore,
        sink: EventSink | None = None,
        checker: PermissionChecker | None = None,
        templating: Templating | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: Policy | None = None,
    ) -> None:
        """`policy` is the gate for starts and decisions (default: nobody may approve); its freeze and
        limits are counted in `store`."""
        self.registry = registry
        policy = policy or Policy()
        self.policy = policy if policy.ledger is not None else policy.with_parts(ledger=store)
        self.store = store
        self.sink: EventSink = sink or _NullSink()
        self.checker = checker
        self.templating = templating or Templating()
        self.steps = StepRunner(registry, self.templating, sleep)
        self.planner = Planner(registry, self.templating, self.steps.pool, checker)
        # With a heartbeat renewing the leases of `active_runs` (the server's), a short lease makes a dead
        # replica's runs move on quickly; without one (the CLI) a step's lease covers its whole timeout.
        self.lease: float | None = None
        self.landing_grace = LANDING_GRACE  # how long a dead owner's request may still land (engine.in_flight)
        self._active: dict[str, int] = {}  # run id -> resumes of it in progress on this executor
        self._active_lock = threading.Lock()
        self._definitions: OrderedDict[str, Runbook] = OrderedDict()  # stored definition -> parsed runbook
        self._last_definition: tuple[str, Runbook] | None = None
        self._texts: dict[int, tuple[Runbook, str]] = {}  # id(runbook) -> (runbook, its stored text)

    # starting -------------------------------------------------------------------------------------

    def start(
        self,
        runbook: Runbook,
        params: Mapping[str, Any],
        *,
        requester: str,
        trigger: dict[str, Any] | None = None,
        auto_approve: bool = False,
        dry_run: bool = False,
        dedup_key: str | None = None,
        cooldown: float = 0.0,
    ) -> tuple[str, bool]:
        """Validate params and store a pending run; (run_id, created). Raises ParamError on bad params, and
        ApprovalError when `auto_approve` is asked for but the runbook would not let the requester approve."""
        values = coerce_params(runbook, params)
        if auto_approve and not dry_run:
            self.policy.check_auto_approve(runbook, requester)
        return self.store.create_run(
            runbook.name, self._stored_text(runbook), values, requester, trigger,
            auto_approve=auto_approve, dry_run=dry_run, dedup_key=dedup_key, cooldown=cooldown,
        )

    def run(self, runbook: Runbook, params: Mapping[str, Any], **options: Any) -> RunRecord:
        run_id, _ = self.start(runbook, params, **options)
        return self.resume(run_id, runbook)

    def authorize_start(self, runbook: Runbook, actor: str, groups: frozenset[str] = frozenset()) -> None:
        """Raises NotAllowed (audited) unless `actor` may start `runbook`: for front ends where people start runs."""
        try:
            self.policy.check_run(runbook, actor, groups)
        except ApprovalError as exc:
            self.store.audit(actor, "run.refused", None, {"runbook": runbook.name, "reason": str(exc)})
            raise

    # progressing ----------------------------------------------------------------------------------

    def resume(self, run_id: str, runbook: Runbook | None = None) -> RunRecord:
        """Carry a run forward until it finishes or needs a decision. Safe to call on any run.

        `runbook`: the run's runbook when the caller has it parsed already (it is the run's stored definition).
        Whatever goes wrong inside, the run ends in a state a person can see: an engine bug fails the run
        with its reason instead of leaving it `running` with nobody working on it."""
        run = self.store.get_run(run_id)
        with self._active_lock:
            self._active[run_id] = self._active.get(run_id, 0) + 1
        try:
            return self._resume(run, runbook or self.definition(run))
        except StoreError:  # nothing can be recorded now: the run stays as stored, taken over once its lease lapses
            log.warning("run %s paused: the run store is unavailable", run_id)
            raise
        except Exception as exc:  # the boundary that keeps runs from being stranded; see the docstring
            log.exception("engine error in run %s", run_id)
            return self._crashed(run_id, exc)
        finally:
            with self._active_lock:
                self._active[run_id] -= 1
                if not self._active[run_id]:
                    del self._active[run_id]

    def definition(self, run: RunRecord) -> Runbook:
        """The run's runbook, parsed once per stored definition (a run's definition never changes).

        Every event asks with the same string object: that is answered by identity, since looking a
        definition up by value compares the whole text (hundreds of KB for a long runbook) every time."""
        text = run.definition
        with self._active_lock:
            last = self._last_definition
            if last is not None and last[0] is text:
                return last[1]
            runbook = self._definitions.get(text)
        if runbook is None:  # only a new one is stored: storing a found one compares the text once more
            runbook = Runbook.model_validate_json(text)
            with self._active_lock:
                self._keep_definition(text, runbook)
        self._last_definition = (text, runbook)  # one reference swap: readers see the old pair or the new
        return runbook

    def _stored_text(self, runbook: Runbook) -> str:
        """The runbook as each of its runs stores it, serialised once per (frozen) runbook object rather than
        at every alert; the text then finds this same object, so no run of it parses the text again."""
        known = self._texts.get(id(runbook))  # the entry holds the object, so its id is not reused meanwhile
        if known is not None and known[0] is runbook:
            return known[1]
        text = runbook.model_dump_json(by_alias=True)
        with self._active_lock:
            if len(self._texts) >= _DEFINITIONS:
                self._texts.clear()
            self._texts[id(runbook)] = (runbook, text)
            self._keep_definition(text, runbook)
        return text

    def _keep_definition(self, text: str, runbook: Runbook) -> None:
        """Under `_active_lock`: remember the parsed runbook for its stored text, the oldest going first."""
        self._definitions[text] = runbook
        while len(self._definitions) > _DEFINITIONS:
            self._definitions.popitem(last=False)

    def active_runs(self) -> list[str]:
        """Runs this executor is carrying forward right now (their leases are the heartbeat's to renew)."""
        with self._active_lock:
            return sorted(self._active)

    def _carried_elsewhere(self, run_id: str) -> bool:
        with self._active_lock:
            return self._active.get(run_id, 0) > 1

    def _claim_lease(self) -> float:
        return self.lease if self.lease is not None else 300.0

    def _crashed(self, run_id: str, exc: Exception) -> RunRecord:
        reason = redact(f"engine error: {type(exc).__name__}: {exc}")  # messages can carry URLs, headers
        run = self.store.get_run(run_id)
        for record in run.steps:
            if record.status == StepStatus.RUNNING:
                record.status, record.error, record.finished_at = StepStatus.FAILED, reason, time.time()
                self.store.save_step(run_id, record)
        if run.status.finished:
            return run
        return self._finish(run, RunStatus.FAILED, reason)

    def _resume(self, run: RunRecord, runbook: Runbook) -> RunRecord:
        if run.status == RunStatus.AWAITING_APPROVAL:
            run = self._continue_after_decision(run, runbook)
            if run.status != RunStatus.RUNNING:
                return run
        elif run.status == RunStatus.PENDING:
            if not self.store.claim(run.id, RunStatus.PENDING, RunStatus.RUNNING, lease=self._claim_lease()):
                return self.store.get_run(run.id)
            run.status = RunStatus.RUNNING  # what the claim stored: no need to read it back
            self._emit("run_started", run, data={"params": run.params, "requester": run.requester,
                                                 "trigger": run.trigger, "dry_run": run.dry_run})
        elif run.status != RunStatus.RUNNING or not self.store.holds(run.id) or self._carried_elsewhere(run.id):
            return run  # finished, or someone else carries it (this one carries on the runs it took over)
        elif in_flight_step(run) is not None and not self._settle(run):  # taken over from one that died sending
            return self.store.get_run(run.id)
        return self._advance(run, runbook)

    def _advance(self, run: RunRecord, runbook: Runbook) -> RunRecord:
        aborted = next((s for s in run.steps if s.index < run.cursor and s.status == StepStatus.FAILED
                        and runbook.steps[s.index].on_failure == "abort"), None)
        if aborted is not None:  # its process died between recording the failure and ending the run
            return self._finish(run, RunStatus.FAILED, f"step {aborted.id!r} failed: {aborted.error}")
        context = self._context(run, runbook, run.steps)
        for index in range(run.cursor, len(runbook.steps)):
            step = runbook.steps[index]
            record = self._step(run, runbook, index, context)
            _remember(context, record)
            if record.status == StepStatus.PROPOSED and not run.dry_run:
                if not run.auto_approve or self._auto_approve_blocked(record):
                    return self._await(run, runbook, step, record)
                record = self._auto_approve(run, runbook, index, record)
                _remember(context, record)
            if record.status == StepStatus.FAILED and step.on_failure == "abort":
                return self._finish(run, RunStatus.FAILED, f"step {step.id!r} failed: {record.error}")
        return self._finish(run, RunStatus.SUCCEEDED)

    def _step(self, run: RunRecord, runbook: Runbook, index: int, context: dict[str, Any]) -> StepRecord:
        """Run one step (a remediation only as a dry-run, turned into a proposal) and store its record."""
        step = runbook.steps[index]
        action = self.registry.get(step.action)
        remediation = action.kind == ActionKind.REMEDIATE
        # A remediation here is only dry-run, building its proposal: its dry-run and the plan's previews share
        # one scope (each access review and object read asked once); executing it later asks afresh.
        scope = ProposalScope.open(self.checker) if remediation else None
        as_approver = self._approver_dry_run(runbook, action, scope) if scope else None
        record = self.steps.execute(run, index, step, context, dry_run=run.dry_run or remediation,
                                    checker=scope.checker if scope else self.checker, on_start=self._on_step_start,
                                    choose_identity=as_approver, reads=scope.reads if scope else None)
        if scope and record.status == StepStatus.SUCCEEDED:
            try:
                record.proposal = self._proposal(run, runbook, step, record, context, scope,
                                                 as_approver.chosen if as_approver else None)
                record.status = StepStatus.PROPOSED
            except StepError as exc:  # a proposal nobody can read must not be approved
                record.status, record.error = StepStatus.FAILED, redact(f"cannot present the proposal: {exc}")
        self.store.save_step(run.id, record, cursor=index, durable=False)  # read-only or a dry-run
        _replace_step(run, record)
        self._emit("step_finished", run, step.id, record.to_dict())
        return record

    def _auto_approve_blocked(self, record: StepRecord) -> bool:
        """A freeze or a limit makes an auto-approved run wait for a person like any other (its proposal says why)."""
        return self.policy.blast_radius(record.proposal.target if record.proposal else "") is not None

    def _auto_approve(self, run: RunRecord, runbook: Runbook, index: int, record: StepRecord) -> StepRecord:
        """The requester approving their own run: it acts as they do."""
        identities = self.policy.identities
        identity = identities.resolve(run.requester, frozenset({run.requester})) if identities else None
        self.store.record_decision(Decision(run.id, record.id, "approved", run.requester, time.time(),
                                            "run started with auto-approve", identity), awaiting=False)
        return self._execute_remediation(run, runbook, index, record, identity)

    def _await(self, run: RunRecord, runbook: Runbook, step: Step, record: StepRecord) -> RunRecord:
        deadline = time.time() + runbook.policy.approval_timeout
        if not self.store.update_run(run.id, status=RunStatus.AWAITING_APPROVAL, awaiting_step=step.id,
                                     approval_deadline=deadline):
            return self.store.get_run(run.id)
        run.status, run.awaiting_step, run.approval_deadline = RunStatus.AWAITING_APPROVAL, step.id, deadline
        assert record.proposal is not None
        self._emit("approval_needed", run, step.id, {"proposal": record.proposal.model_dump(mode="json"),
                                                     "deadline": deadline, "requester": run.requester})
        return run

    def _continue_after_decision(self, run: RunRecord, runbook: Runbook) -> RunRecord:
        """Apply the stored decision on the awaited step: execute it, finish rejected, or time out."""
        step_id = run.awaiting_step or ""
        decision = next((d for d in reversed(self.store.decisions(run.id)) if d.step == step_id), None)
        if decision is None:
            if run.approval_deadline is not None and time.time() > run.approval_deadline:
                return self.expire(run.id)
            return run
        if not self.store.claim(run.id, RunStatus.AWAITING_APPROVAL, RunStatus.RUNNING, lease=self._claim_lease(),
                                awaiting_step=None):
            return self.store.get_run(run.id)
        if decision.decision != "approved":
            return self._close(run, decision.decision, decision.actor, decision.reason)
        run.status, run.awaiting_step = RunStatus.RUNNING, None  # what the claim stored
        index = next(i for i, s in enumerate(runbook.steps) if s.id == step_id)
        record = next(s for s in run.steps if s.index == index)
        record = self._execute_remediation(run, runbook, index, record, decision.identity)
        if record.status == StepStatus.FAILED and runbook.steps[index].on_failure == "abort":
            return self._finish(run, RunStatus.FAILED, f"step {step_id!r} failed: {record.error}")
        run.cursor = index + 1  # past the executed step: `_advance` continues there
        return run

    def _execute_remediation(self, run: RunRecord, runbook: Runbook, index: int, proposed: StepRecord,
                             identity: Identity | None = None) -> StepRecord:
        step = runbook.steps[index]
        context = self._context(run, runbook, run.steps)
        record = self.steps.execute(run, index, step, context, dry_run=False, checker=self.checker,
                                    on_start=self._on_step_start, approved=proposed, identity=identity)
        ok = record.status == StepStatus.SUCCEEDED
        record.proposal = _with_status(proposed.proposal, "executed" if ok else "failed")
        self.store.save_step(run.id, record, cursor=index + 1)
        _replace_step(run, record)
        self.store.audit("engine", "remediation.executed" if ok else "remediation.failed", run.id,
                         {"step": step.id, "as": str(identity) if identity else "engine",
                          "changes": [c.model_dump(mode="json") for c in record.changes if not c.dry_run],
                          "error": record.error})
        self._emit("step_finished", run, step.id, record.to_dict())
        return record

    def _finish(self, run: RunRecord, status: RunStatus, error: str | None = None) -> RunRecord:
        error = redact(error) if error else error  # an exception's message may quote a URL with credentials
        outcome = ("engine", f"run.{status}", {"error": error} if error else {})
        if not self.store.update_run(run.id, audit=outcome, status=status, error=error, awaiting_step=None):
            return self.store.get_run(run.id)  # another process ended it (e.g. declared it interrupted)
        finished = self.store.get_run(run.id)
        self._emit("run_finished", finished, data=finished.to_dict())
        return finished

    # a dead owner's change in flight --------------------------------------------------------------

    def settle_in_flight(self, lease: float | None = None) -> list[str]:
        """Claim the runs a dead process left sending a change, re-read their targets (never re-send) and
        record what is true (engine.in_flight). Returns the runs whose change applied: the caller carries
        them on from the next step. A run that cannot be decided yet is given back, to read again later.
        (A server instead claims them with `take_over_in_flight` and `resume`s them on its workers, which
        settle them the same way under the heartbeat.)"""
        carry = []
        for run_id in self.store.take_over_in_flight(lease=lease if lease is not None else self._claim_lease()):
            run = self.store.get_run(run_id)
            try:
                if self._settle(run):
                    carry.append(run_id)
            except StoreError:
                raise
            except Exception as exc:  # an engine bug: say so on the run rather than claim it again and again
                log.exception("engine error settling run %s", run_id)
                self._finish(run, RunStatus.INTERRUPTED, f"engine error while re-reading the change in flight: "
                             f"{type(exc).__name__}: {exc}; its effect is unknown, check the target before re-running")
        return carry

    def _settle(self, run: RunRecord) -> bool:
        record = in_flight_step(run)
        if record is None:  # settled meanwhile: carry it on like any run taken over
            return True
        runbook = self.definition(run)
        step = runbook.steps[record.index]
        action = self.registry.get(record.action) if record.action in self.registry else None
        reading = read_back(action, run, record, self.steps.pool)
        outcome = decide(reading, landing_horizon(record, step, self.landing_grace), time.time())
        if outcome is None:
            self.store.release(run.id)
            log.info("run %s: %s not visible yet, but a request may still land; reading again later", run.id, step.id)
            return False
        done = settled(record, outcome, reading.evidence, self.store.instance)
        if not self.store.save_step(run.id, done, cursor=record.index + 1):
            return False  # claimed by another process meanwhile
        _replace_step(run, done)
        run.cursor = record.index + 1
        self.store.audit("engine", "run.taken_over", run.id, {"by": self.store.instance, "in_flight": step.id,
                                                              "outcome": outcome, "evidence": reading.evidence})
        sent = [c.model_dump(mode="json") for c in done.changes if not c.dry_run]
        self.store.audit("engine", "remediation.executed" if outcome == "applied" else "remediation.failed", run.id,
                         {"step": step.id, "changes": sent, "error": done.error, "read_back": reading.evidence})
        self._emit("step_finished", run, step.id, done.to_dict())
        if outcome == "effect unknown":
            self._finish(run, RunStatus.INTERRUPTED, done.error)
        elif outcome == "not applied" and step.on_failure == "abort":
            self._finish(run, RunStatus.FAILED, f"step {step.id!r} failed: {done.error}")
        else:
            return True
        return False

    # decisions ------------------------------------------------------------------------------------

    def decide(
        self, run_id: str, approve: bool, actor: str, *, step: str | None = None,
        groups: frozenset[str] = frozenset(), reason: str = "", resume: bool = True,
    ) -> RunRecord:
        """Record an approval or rejection of the awaited remediation, then (by default) continue the run.

        The policy gate decides; every refusal is audited here. Raises ApprovalError when `actor` may not
        decide (NotAllowed) or no change may go out now (Blocked), RunStateError when nothing awaits this
        decision, and the cluster's error when it could not be asked about the approver's permissions.
        """
        run, reason = self.store.get_run(run_id), redact(reason)  # typed by a person: may paste a token
        verb = "approve" if approve else "reject"
        try:
            runbook = self.definition(run)
            identity = self._check_decision(run, runbook, approve, actor, step, groups)
            decision = Decision(run_id, run.awaiting_step or "", "approved" if approve else "rejected", actor,
                                time.time(), reason, identity)
            self._record(decision)
        except RunbookError as exc:
            self.store.audit(actor, f"step.{verb}.refused", run_id, {"step": step or run.awaiting_step,
                                                                     "reason": str(exc)})
            raise
        self._emit("approval_decided", run, decision.step, {"decision": decision.decision, "actor": actor,
                                                            "reason": reason})
        return self.resume(run_id, runbook) if resume else run

    def _record(self, decision: Decision) -> None:
        """Store the decision; the first one wins (two people clicking at once)."""
        if not self.store.record_decision(decision):
            earlier = next((d for d in self.store.decisions(decision.run_id) if d.step == decision.step), None)
            if earlier is None:
                raise RunStateError(f"run {decision.run_id} no longer awaits {decision.step!r}")
            raise RunStateError(f"{decision.step!r} of run {decision.run_id} was already {earlier.decision} by "
                                f"{earlier.actor}; a decision cannot be changed")

    def _check_decision(self, run: RunRecord, runbook: Runbook, approve: bool, actor: str, step: str | None,
                        groups: frozenset[str]) -> Identity | None:
        """The identity an approval executes as, once the run's state and the policy gate allow the decision."""
        verb = "approve" if approve else "reject"
        if run.status != RunStatus.AWAITING_APPROVAL or not run.awaiting_step:
            raise RunStateError(f"run {run.id} is {run.status}, not awaiting approval; nothing to {verb}")
        if step is not None and step != run.awaiting_step:
            raise RunStateError(f"run {run.id} awaits approval of step {run.awaiting_step!r}, not {step!r}")
        groups = self.policy.check_decision(run, runbook, actor, approve, groups)
        if run.approval_deadline is not None and time.time() > run.approval_deadline:
            self.expire(run.id)
            raise RunStateError(f"the approval window of run {run.id} has closed; the run timed out")
        if not approve:
            return None
        return self.policy.approver_identity(run, runbook, actor, groups, self._awaited_action(run), self.checker)

    def _awaited_action(self, run: RunRecord) -> Action[Any] | None:
        record = next((s for s in run.steps if s.id == run.awaiting_step), None)
        return self.registry.get(record.action) if record is not None else None

    def approval_outlook(self, run: RunRecord, runbook: Runbook) -> list[Outlook]:
        """Who could approve the awaited remediation, asked before anyone clicks (for the chat thread)."""
        return self.policy.outlook(run, runbook, self._awaited_action(run), self.checker)

    # the change freeze ----------------------------------------------------------------------------

    def control_freeze(self, actor: str, on: bool, reason: str, groups: frozenset[str] = frozenset()) -> None:
        """Freeze or unfreeze on behalf of a chat user, if the policy lets them (refusals audited)."""
        try:
            self.policy.check_freeze_control(actor, groups)
        except ApprovalError as exc:
            self.store.audit(actor, f"freeze.{'on' if on else 'off'}.refused", None, {"reason": str(exc)})
            raise
        if on:
            self.freeze(actor, reason)
        else:
            self.unfreeze(actor, reason)

    def freeze(self, actor: str, reason: str) -> Freeze:
        """Freeze changes everywhere (every replica shares the store): approvals are refused, diagnoses go on."""
        freeze = Freeze(redact(reason), actor, time.time())
        self.store.freeze_on(freeze)
        return freeze

    def unfreeze(self, actor: str, reason: str = "") -> Freeze | None:
        """End the freeze; the one that was on (None: there was none)."""
        return self.store.freeze_off(actor, redact(reason))

    def expire(self, run_id: str) -> RunRecord:
        """Time out a run whose approval window closed without a decision (a decision made meanwhile wins)."""
        run = self.store.get_run(run_id)
        expired = Decision(run_id, run.awaiting_step or "", "expired", "engine", time.time(),
                           "no decision within the approval timeout")
        if run.status == RunStatus.AWAITING_APPROVAL and self.store.record_decision(expired):
            return self.resume(run_id)
        return self.store.get_run(run_id)

    def cancel(self, run_id: str, actor: str, reason: str = "") -> RunRecord:
        """Abort a pending run, or one waiting for approval unless someone decided first."""
        run, reason = self.store.get_run(run_id), redact(reason)
        if run.status == RunStatus.AWAITING_APPROVAL:
            if self.store.record_decision(Decision(run_id, run.awaiting_step or "", "cancelled", actor, time.time(),
                                                   reason)):
                return self.resume(run_id)
        elif run.status == RunStatus.PENDING and self.store.claim(run_id, RunStatus.PENDING, RunStatus.RUNNING):
            self.store.audit(actor, "run.cancelled", run_id, {"reason": reason})
            return self._finish(run, RunStatus.ABORTED, f"cancelled by {actor}" + (f": {reason}" if reason else ""))
        run = self.store.get_run(run_id)
        raise RunStateError(f"run {run_id} is {run.status}; only pending runs or runs awaiting a decision "
                            "can be cancelled")

    def _close(self, run: RunRecord, decision: str, actor: str, reason: str) -> RunRecord:
        """End a run at its awaited remediation without executing it (rejected, expired or cancelled)."""
        outcomes = {
            "rejected": (RunStatus.REJECTED, "rejected", f"{actor} rejected {run.awaiting_step!r}"),
            "expired": (RunStatus.TIMED_OUT, "expired",
                        f"nobody approved or rejected {run.awaiting_step!r} in time; nothing was changed"),
            "cancelled": (RunStatus.ABORTED, "skipped", f"cancelled by {actor}"),
        }
        status, proposal_status, why = outcomes[decision]
        for record in [s for s in run.steps if s.id == run.awaiting_step]:
            closed = replace(record, proposal=_with_status(record.proposal, proposal_status),
                             status=StepStatus.REJECTED if decision == "rejected" else StepStatus.SKIPPED)
            self.store.save_step(run.id, closed)
            _replace_step(run, closed)
        return self._finish(run, status, why + (f": {reason}" if reason and decision != "expired" else ""))

    # helpers --------------------------------------------------------------------------------------

    def _context(self, run: RunRecord, runbook: Runbook, records: list[StepRecord]) -> dict[str, Any]:
        """What templates see. Built once per resume, then kept current step by step (`_remember`)."""
        context: dict[str, Any] = {
            "params": run.params,
            "steps": {},
            "findings": [],
            "run": {"id": run.id, "requester": run.requester, "dry_run": run.dry_run, "runbook": runbook.name,
                    "others_open": self._others_open(run)},
            "alert": run.trigger.get("alert", {}),
            "now": self.templating.now(),  # the API server's clock when a cluster is in play
        }
        for record in records:
            _remember(context, record)
        return context

    def _others_open(self, run: RunRecord) -> list[dict[str, Any]]:
        """Other unfinished runs of the same runbook for the same params: someone is already on this target,
        so a runbook can say so and propose nothing (`run.others_open`). Awaiting a decision first, then
        running, then pending; newest first within each."""
        order = (RunStatus.AWAITING_APPROVAL, RunStatus.RUNNING, RunStatus.PENDING)
        others = sorted((r for r in self.store.open_runs(run.runbook) if r.id != run.id and r.params == run.params),
                        key=lambda r: (order.index(r.status), -r.created_at))
        return [{"id": r.id, "status": str(r.status), "requester": r.requester, "created_at": r.created_at}
                for r in others]

    def _approver_dry_run(self, runbook: Runbook, action: Action[Any], scope: ProposalScope) -> ApproverDryRun | None:
        """When approvals act as the approver, the dry-run does too (None: the engine's own identity does)."""
        identities = self.policy.identities
        if identities is None or runbook.policy.fallback_to_engine:
            return None
        return ApproverDryRun(identities, scope.checker, action, self.policy.approvers_of(runbook))

    def _proposal(self, run: RunRecord, runbook: Runbook, step: Step, record: StepRecord,
                  context: dict[str, Any], scope: ProposalScope, dry_run_as: Identity | None = None) -> Proposal:
        spec = step.proposal
        rendered = self.templating.render_value(spec.model_dump(), context) if spec else {}
        action = self.registry.get(step.action)
        target = action.target(action.args.model_validate(record.inputs))
        waits = None if run.dry_run else self.policy.blast_radius(target)
        warnings = _warnings(rendered.get("warnings", ()), record.output.get("warnings"))
        return Proposal(
            id=step.id, step=step.id, action=step.action, target=target,
            summary=str(rendered.get("summary") or record.title), reason=str(rendered.get("reason", "")),
            risk=rendered.get("risk", "medium"), dry_run=tuple(record.changes),
            warnings=(*warnings, f"an approval will be refused now: {waits}") if waits else warnings,
            dry_run_as=str(dry_run_as) if dry_run_as else None,
            planned=self.planner.after(run.id, runbook, record.index, context, scope=scope),
        )

    def _on_step_start(self, run: RunRecord, record: StepRecord, timeout: float) -> None:
        changing = record.proposal is not None  # an approved remediation starts executing: keep that on disk
        lease = self.lease if self.lease is not None else timeout + self.store.LEASE_GRACE
        if not self.store.save_step(run.id, record, cursor=record.index, lease=lease, durable=changing):
            raise RunStateError(f"run {run.id} was taken over (declared interrupted) while this process worked on it")
        self._emit("step_started", run, record.id, {"title": record.title, "action": record.action})

    def _emit(self, kind: Any, run: RunRecord, step: str = "", data: dict[str, Any] | None = None) -> None:
        if isinstance(self.sink, _NullSink):  # nobody listens: no snapshot to take
            return
        try:
            self.sink.emit(RunEvent(kind, run.id, run.runbook, step, data or {}, snapshot(run),
                                    self.definition(run)))
        except Exception:  # a sink (a closed terminal, a chat bug) must never fail or strand the run
            log.exception("event sink failed on %s of run %s", kind, run.id)


def _remember(context: dict[str, Any], record: StepRecord) -> None:
    previous = context["steps"].get(record.id)
    if previous is not None:  # an approved remediation replaces its proposal record
        context["findings"] = [f for f in context["findings"] if f not in previous["findings"]]
    ids = [f.id for f in record.findings]
    context["steps"][record.id] = {"status": str(record.status), "output": record.output, "error": record.error,
                                   "findings": ids}
    context["findings"].extend(ids)


def _warnings(declared: Any, found: Any) -> tuple[str, ...]:
    """The runbook's own warnings, then those the action found (an HPA or GitOps tool will revert it)."""
    texts = [str(w) for w in [*(declared or ()), *(found if isinstance(found, list) else ())] if str(w).strip()]
    return tuple(dict.fromkeys(texts))


def _replace_step(run: RunRecord, record: StepRecord) -> None:
    """Keep the in-memory run in step with what was just stored, so nothing has to read it back.

    Steps are stored in order (each when it starts, then when it ends), so this is the last step or a new
    one at the end: constant time. Rebuilding and sorting the list made a run quadratic in its steps."""
    steps = run.steps
    if steps and steps[-1].index == record.index:
        steps[-1] = record
    elif not steps or steps[-1].index < record.index:
        steps.append(record)
    else:
        run.steps = sorted([s for s in steps if s.index != record.index] + [record], key=lambda s: s.index)


def _with_status(proposal: Proposal | None, status: str) -> Proposal | None:
    return proposal.model_copy(update={"status": status}) if proposal else None
