"""Executor behaviours: conditions, retries, timeouts, failure policy, approvals across restarts."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.actions import ActionRegistry
from engine.errors import ApprovalError, ParamError, RunStateError
from engine.events import RunEvent
from engine.executor import Executor
from engine.loader import Loader
from engine.model import Runbook
from engine.policy import Policy
from engine.records import RunStatus, StepStatus
from engine.run_store import RunStore
from tests.conftest import TEAM, StoreFactory, Toy

TEAM_POLICY = Policy(approvers=TEAM)

Write = Callable[[str, str], Path]

HEADER = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: toy, title: Toy}
params:
  key: {type: string, required: true}
"""

FIX = HEADER + """
policy: {approval_timeout: 1h}
steps:
  - id: look
    title: Look
    action: toy.get
    with: {key: "{{ params.key }}"}
  - id: broken
    title: Say it is broken
    action: finding
    when: steps.look.output.value != 'ok'
    with: {id: toy-broken, severity: critical, summary: "{{ params.key }} is {{ steps.look.output.value }}"}
  - id: fix
    title: Set it to ok
    action: toy.set
    when: "'toy-broken' in findings"
    with: {key: "{{ params.key }}", value: ok}
    proposal: {summary: "set {{ params.key }} to ok", reason: it is broken, risk: low}
  - id: verify
    title: Verify
    action: toy.get
    with: {key: "{{ params.key }}"}
"""


class Recorder:
    def __init__(self) -> None:
        self.events: list[RunEvent] = []

    def emit(self, event: RunEvent) -> None:
        self.events.append(event)


def load(loader: Loader, write: Write, text: str) -> Runbook:
    return loader.load_file(write(text))


def test_when_skips_steps_and_healthy_runs_propose_nothing(executor: Executor, loader: Loader, write: Write,
                                                          toy: Toy) -> None:
    toy.values["a"] = "ok"
    run = executor.run(load(loader, write, FIX), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.SUCCEEDED
    assert [s.status for s in run.steps] == ["succeeded", "skipped", "skipped", "succeeded"]
    assert run.findings == [] and run.proposals == [] and run.mutations == []


def test_remediation_pauses_with_a_dry_run_and_changes_nothing(executor: Executor, loader: Loader, write: Write,
                                                               toy: Toy) -> None:
    toy.values["a"] = "broken"
    run = executor.run(load(loader, write, FIX), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.AWAITING_APPROVAL and run.awaiting_step == "fix"
    assert toy.values["a"] == "broken"
    [proposal] = run.proposals
    assert (proposal.summary, proposal.reason, proposal.risk, proposal.status) == ("set a to ok", "it is broken",
                                                                                 "low", "pending")
    assert proposal.dry_run[0].dry_run and proposal.dry_run[0].diff == ("a: broken -> ok",)
    assert [f.id for f in run.findings] == ["toy-broken"] and run.mutations == []


def test_approval_resumes_after_a_restart_of_the_store(registry: ActionRegistry, loader: Loader, write: Write,
                                                       toy: Toy, make_store: StoreFactory) -> None:
    toy.values["a"] = "broken"
    first = make_store("one")
    run = Executor(registry, first, policy=TEAM_POLICY).run(load(loader, write, FIX), {"key": "a"}, requester="alice")
    first.close()

    second = make_store("two")
    assert second.recover_interrupted() == []
    executor = Executor(registry, second, policy=TEAM_POLICY)
    assert second.get_run(run.id).status == RunStatus.AWAITING_APPROVAL
    done = executor.decide(run.id, True, "bob", step="fix")
    assert done.status == RunStatus.SUCCEEDED and toy.values["a"] == "ok"
    assert done.steps[-1].output == {"value": "ok"}
    assert [m.diff for m in done.mutations] == [("a: broken -> ok",)]
    assert done.proposals[0].status == "executed"
    actions = [(e.actor, e.action) for e in second.audit_log(run.id)]
    assert ("alice", "run.requested") in actions and ("bob", "step.approved") in actions
    assert ("engine", "remediation.executed") in actions


def test_self_approval_is_forbidden_and_audited(executor: Executor, loader: Loader, write: Write, toy: Toy,
                                                store: RunStore) -> None:
    toy.values["a"] = "broken"
    run = executor.run(load(loader, write, FIX), {"key": "a"}, requester="alice")
    with pytest.raises(ApprovalError, match="forbids approving your own request"):
        executor.decide(run.id, True, "alice")
    assert store.get_run(run.id).status == RunStatus.AWAITING_APPROVAL
    assert ("alice", "step.approve.refused") in [(e.actor, e.action) for e in store.audit_log(run.id)]


def test_only_listed_approvers_may_decide(executor: Executor, loader: Loader, write: Write, toy: Toy) -> None:
    toy.values["a"] = "broken"
    text = FIX.replace("policy: {approval_timeout: 1h}", "policy: {approvers: [carol, '@sre']}")
    run = executor.run(load(loader, write, text), {"key": "a"}, requester="alice")
    with pytest.raises(ApprovalError, match="not an approver"):
        executor.decide(run.id, True, "bob")
    assert executor.decide(run.id, True, "dave", groups=frozenset({"@sre"})).status == RunStatus.SUCCEEDED


def test_rejection_ends_the_run_without_changes(executor: Executor, loader: Loader, write: Write, toy: Toy) -> None:
    toy.values["a"] = "broken"
    run = executor.run(load(loader, write, FIX), {"key": "a"}, requester="alice")
    done = executor.decide(run.id, False, "bob", reason="not during the freeze")
    assert done.status == RunStatus.REJECTED and toy.values["a"] == "broken"
    assert "not during the freeze" in (done.error or "") and done.proposals[0].status == "rejected"
    with pytest.raises(RunStateError, match="not awaiting approval"):
        executor.decide(run.id, True, "bob")


def test_wrong_step_name_is_refused(executor: Executor, loader: Loader, write: Write, toy: Toy) -> None:
    toy.values["a"] = "broken"
    run = executor.run(load(loader, write, FIX), {"key": "a"}, requester="alice")
    with pytest.raises(RunStateError, match="awaits approval of step 'fix', not 'verify'"):
        executor.decide(run.id, True, "bob", step="verify")


def test_approval_expires(executor: Executor, loader: Loader, write: Write, toy: Toy, store: RunStore) -> None:
    toy.values["a"] = "broken"
    run = executor.run(load(loader, write, FIX.replace("approval_timeout: 1h", "approval_timeout: 50ms")),
                       {"key": "a"}, requester="alice")
    time.sleep(0.1)
    with pytest.raises(RunStateError, match="approval window"):
        executor.decide(run.id, True, "bob")
    done = store.get_run(run.id)
    assert done.status == RunStatus.TIMED_OUT and toy.values["a"] == "broken"
    assert done.proposals[0].status == "expired"


def test_auto_approve_executes_and_records_who(executor: Executor, loader: Loader, write: Write, toy: Toy,
                                               store: RunStore) -> None:
    toy.values["a"] = "broken"
    with pytest.raises(ApprovalError, match="forbids approving your own request, so it cannot be auto-approved"):
        executor.run(load(loader, write, FIX), {"key": "a"}, requester="alice", auto_approve=True)
    lenient = FIX.replace("policy: {approval_timeout: 1h}", "policy: {approval_timeout: 1h, allow_self_approval: true}")
    run = executor.run(load(loader, write, lenient), {"key": "a"}, requester="alice", auto_approve=True)
    assert run.status == RunStatus.SUCCEEDED and toy.values["a"] == "ok"
    assert [(d.actor, d.reason) for d in store.decisions(run.id)] == [("alice", "run started with auto-approve")]


def test_dry_run_proposes_without_pausing_or_changing(executor: Executor, loader: Loader, write: Write,
                                                      toy: Toy) -> None:
    toy.values["a"] = "broken"
    run = executor.run(load(loader, write, FIX), {"key": "a"}, requester="alice", dry_run=True)
    assert run.status == RunStatus.SUCCEEDED and toy.values["a"] == "broken"
    assert [p.id for p in run.proposals] == ["fix"] and run.mutations == []


def test_transient_failures_are_retried_with_backoff(executor: Executor, loader: Loader, write: Write, toy: Toy,
                                                     sleeps: list[float]) -> None:
    toy.failures["a"] = 2
    text = HEADER + """
steps:
  - id: flaky
    title: Flaky
    action: toy.flaky
    with: {key: "{{ params.key }}"}
    retry: {attempts: 3, backoff: 1s, factor: 2}
"""
    run = executor.run(load(loader, write, text), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.SUCCEEDED
    assert run.steps[0].attempts == 3 and run.steps[0].output == {"calls": 3}
    assert sleeps == [1.0, 2.0]


def test_retries_give_up_and_abort(executor: Executor, loader: Loader, write: Write, toy: Toy) -> None:
    toy.failures["a"] = 5
    text = HEADER + """
steps:
  - id: flaky
    title: Flaky
    action: toy.flaky
    with: {key: "{{ params.key }}"}
    retry: {attempts: 2}
  - id: never
    title: Never runs
    action: noop
"""
    run = executor.run(load(loader, write, text), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.FAILED and "server busy" in (run.error or "")
    assert [s.id for s in run.steps] == ["flaky"] and run.steps[0].attempts == 2


def test_timeout_then_continue(executor: Executor, loader: Loader, write: Write) -> None:
    text = HEADER + """
steps:
  - id: slow
    title: Slow
    action: toy.slow
    with: {seconds: 2}
    timeout: 100ms
    on_failure: continue
  - id: after
    title: After
    action: noop
    with: {value: "{{ steps.slow.status }}"}
"""
    run = executor.run(load(loader, write, text), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.SUCCEEDED
    assert run.steps[0].status == StepStatus.FAILED and "within its 0.1s timeout" in (run.steps[0].error or "")
    assert run.steps[1].output == {"value": "failed"}


def test_a_crashing_action_fails_its_step_with_a_reason(executor: Executor, loader: Loader, write: Write) -> None:
    text = HEADER + """
steps:
  - id: boom
    title: Boom
    action: toy.crash
    with: {key: "{{ params.key }}"}
"""
    run = executor.run(load(loader, write, text), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.FAILED and "toy.crash crashed: KeyError" in (run.error or "")


def test_params_are_validated_before_a_run_exists(executor: Executor, loader: Loader, write: Write,
                                                  store: RunStore) -> None:
    runbook = load(loader, write, FIX)
    with pytest.raises(ParamError, match="missing required param 'key'"):
        executor.start(runbook, {}, requester="alice")
    with pytest.raises(ParamError, match="unknown param 'kye'"):
        executor.start(runbook, {"key": "a", "kye": "b"}, requester="alice")
    assert store.list_runs() == []


def test_alert_label_templates_stay_literal(executor: Executor, loader: Loader, write: Write, toy: Toy) -> None:
    toy.values["{{ 7 * 7 }}"] = "x"
    run = executor.run(load(loader, write, FIX), {"key": "{{ 7 * 7 }}"}, requester="alertmanager",
                       dry_run=True)
    assert run.steps[0].inputs == {"key": "{{ 7 * 7 }}"}
    assert run.findings[0].summary == "{{ 7 * 7 }} is x"


def test_sandbox_escape_fails_the_step_clearly(executor: Executor, loader: Loader, write: Write) -> None:
    text = HEADER + """
steps:
  - id: escape
    title: Escape
    action: noop
    with: {value: "{{ params.key | attr('__class__') }}"}
"""
    run = executor.run(load(loader, write, text), {"key": "a"}, requester="mallory")
    assert run.status == RunStatus.FAILED
    assert "SecurityError" in (run.error or "") and "unsafe" in (run.error or "")


def test_events_tell_the_story_in_order(registry: ActionRegistry, store: RunStore, loader: Loader, write: Write,
                                        toy: Toy) -> None:
    toy.values["a"] = "broken"
    sink = Recorder()
    executor = Executor(registry, store, sink=sink, policy=TEAM_POLICY)
    run = executor.run(load(loader, write, FIX), {"key": "a"}, requester="alice")
    executor.decide(run.id, True, "bob")
    kinds = [e.kind for e in sink.events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.index("approval_needed") < kinds.index("approval_decided")
    assert sink.events[-1].data["status"] == "succeeded"


def test_a_run_killed_mid_step_is_marked_interrupted(registry: ActionRegistry, loader: Loader, write: Write,
                                                     make_store: StoreFactory) -> None:
    store = make_store(f"{socket.gethostname()}/{2**22 + 12345}/dead")  # no such pid
    executor = Executor(registry, store, policy=TEAM_POLICY)
    run_id, _ = executor.start(load(loader, write, FIX), {"key": "a"}, requester="alice")
    assert store.claim(run_id, RunStatus.PENDING, RunStatus.RUNNING)
    from engine.records import StepRecord

    store.save_step(run_id, StepRecord(0, "look", "toy.get", StepStatus.RUNNING, started_at=time.time()), cursor=0)
    store.close()
    restarted = make_store()
    assert restarted.recover_interrupted() == [run_id]
    run = restarted.get_run(run_id)
    assert run.status == RunStatus.INTERRUPTED and "'look' was running" in (run.error or "")
    assert run.steps[0].status == StepStatus.INTERRUPTED


def test_deduplicated_start_returns_the_active_run(executor: Executor, loader: Loader, write: Write,
                                                   toy: Toy) -> None:
    toy.values["a"] = "broken"
    runbook = load(loader, write, FIX)
    first, created = executor.start(runbook, {"key": "a"}, requester="am", dedup_key="fp1", cooldown=60)
    again, created_again = executor.start(runbook, {"key": "a"}, requester="am", dedup_key="fp1", cooldown=60)
    assert created and not created_again and first == again


def test_the_first_decision_wins(executor: Executor, loader: Loader, write: Write, toy: Toy) -> None:
    toy.values["a"] = "broken"
    run = executor.run(load(loader, write, FIX), {"key": "a"}, requester="alice")
    executor.decide(run.id, False, "carol", reason="freeze", resume=False)
    with pytest.raises(RunStateError, match="already rejected by carol; a decision cannot be changed"):
        executor.decide(run.id, True, "bob")
    assert executor.resume(run.id).status == RunStatus.REJECTED and toy.values["a"] == "broken"


def test_cancel_a_waiting_run_changes_nothing(executor: Executor, loader: Loader, write: Write, toy: Toy) -> None:
    toy.values["a"] = "broken"
    run = executor.run(load(loader, write, FIX), {"key": "a"}, requester="alice")
    done = executor.cancel(run.id, "bob", "handled by hand")
    assert done.status == RunStatus.ABORTED and "cancelled by bob: handled by hand" in (done.error or "")
    assert done.proposals[0].status == "skipped" and toy.values["a"] == "broken"


def test_a_timed_out_remediation_is_not_sent_again(executor: Executor, loader: Loader, write: Write,
                                                   registry: ActionRegistry) -> None:
    calls: list[str] = []

    from engine.actions import ActionKind
    from tests.conftest import SetArgs

    @registry.register("toy.hang", kind=ActionKind.REMEDIATE, args=SetArgs)
    def hang(ctx, args):  # type: ignore[no-untyped-def]
        """Hangs when executed for real."""
        if not ctx.dry_run:
            calls.append(args.key)
            time.sleep(0.5)
        return {}

    text = HEADER + """
steps:
  - id: fix
    title: Fix
    action: toy.hang
    with: {key: "{{ params.key }}", value: ok}
    timeout: 100ms
    retry: {attempts: 3}
"""
    run = executor.run(load(loader, write, text), {"key": "a"}, requester="alice", dry_run=False)
    done = executor.decide(run.id, True, "bob")
    assert done.status == RunStatus.FAILED and calls == ["a"]
    assert "its effect is unknown: check" in (done.error or "")
    assert done.steps[0].proposal is not None and done.steps[0].proposal.status == "failed"


def test_engine_errors_fail_the_run_instead_of_stranding_it(executor: Executor, loader: Loader, write: Write) -> None:
    text = HEADER + """
steps:
  - id: a
    title: A
    action: noop
    with: {value: 3}
  - id: fix
    title: Fix
    action: toy.set
    with: {key: "{{ params.key }}", value: ok}
    proposal: {reason: "{{ steps.a.output.value }}", summary: "{{- params.key -}}"}
"""
    run = executor.run(load(loader, write, text), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert run.proposals[0].reason == "3" and run.proposals[0].summary == "a"


def test_a_broken_sink_never_strands_a_run(registry: ActionRegistry, store: RunStore, loader: Loader,
                                           write: Write) -> None:
    class Broken:
        def emit(self, event: RunEvent) -> None:
            raise BrokenPipeError("stderr closed")

    text = HEADER + "\nsteps:\n  - {id: a, title: A, action: noop}\n"
    executor = Executor(registry, store, sink=Broken(), policy=TEAM_POLICY)
    run = executor.run(load(loader, write, text), {"key": "a"}, requester="x")
    assert run.status == RunStatus.SUCCEEDED


def test_another_replica_recovers_a_run_whose_lease_ran_out(registry: ActionRegistry, loader: Loader,
                                                             write: Write, make_store: StoreFactory) -> None:
    replica_a = make_store("pod-a/1/x")
    run_id, _ = Executor(registry, replica_a).start(load(loader, write, FIX), {"key": "a"}, requester="alice")
    assert replica_a.claim(run_id, RunStatus.PENDING, RunStatus.RUNNING, lease=30)
    replica_b = make_store("pod-b/1/y")
    assert replica_b.recover_interrupted() == []  # pod-a still holds a valid lease
    assert replica_a.claim(run_id, RunStatus.RUNNING, RunStatus.RUNNING, lease=-1)  # pod-a dies; its lease lapses
    assert replica_b.recover_interrupted() == [run_id]
    assert not replica_a.update_run(run_id, status=RunStatus.SUCCEEDED)  # a late pod-a cannot overwrite it
    assert replica_b.get_run(run_id).status == RunStatus.INTERRUPTED


def test_a_runbook_is_serialised_once_and_its_runs_never_parse_it(registry: ActionRegistry, store: RunStore,
                                                                   loader: Loader, write: Write) -> None:
    """Every alert starts a run storing the runbook's text: written once per runbook object, and a worker
    resuming any of its runs (by id, as the server's do) finds that same object rather than parsing."""
    runbook = load(loader, write, FIX)
    executor = Executor(registry, store, policy=TEAM_POLICY)
    first, _ = executor.start(runbook, {"key": "a"}, requester="alice")
    second, _ = executor.start(runbook, {"key": "b"}, requester="alice")
    texts = [store.get_run(run_id).definition for run_id in (first, second)]
    assert texts[0] == texts[1] == runbook.model_dump_json(by_alias=True)
    assert all(executor.definition(store.get_run(run_id)) is runbook for run_id in (first, second))
    other = load(loader, write, FIX)  # loaded again, as by a catalog reload: another object
    third, _ = executor.start(other, {"key": "c"}, requester="alice")
    assert executor.definition(store.get_run(third)) is other


def test_events_carry_a_snapshot_of_the_run_and_its_parsed_runbook(registry: ActionRegistry, store: RunStore,
                                                                   loader: Loader, write: Write, toy: Toy) -> None:
    """Sinks render from the event alone: the run as it was at that moment, and the runbook already parsed."""
    toy.values["a"] = "broken"
    sink = Recorder()
    executor = Executor(registry, store, sink=sink, policy=TEAM_POLICY)
    run = executor.run(load(loader, write, FIX), {"key": "a"}, requester="alice")
    executor.decide(run.id, True, "bob", step="fix")
    by_kind = {e.kind: e for e in sink.events}
    assert all(e.run is not None and e.run.id == run.id and e.definition is not None for e in sink.events)
    assert len({id(e.definition) for e in sink.events}) == 1  # parsed once, shared by every event
    waiting = by_kind["approval_needed"].run
    assert waiting is not None and waiting.status == RunStatus.AWAITING_APPROVAL  # not changed by what followed
    assert [s.status for s in waiting.steps if s.id == "fix"] == [StepStatus.PROPOSED]
    finished = by_kind["run_finished"].run
    assert finished is not None and finished.status == RunStatus.SUCCEEDED and finished.finished_at


OTHERS = HEADER + """
steps:
  - id: who
    title: Who else is on it
    action: finding
    when: run.others_open
    with:
      id: already
      severity: info
      summary: >-
        {{ run.others_open | map(attribute='status') | join(',') }}
        {{ run.others_open | map(attribute='id') | join(',') }}
"""


def test_templates_see_the_other_unfinished_runs_of_the_same_runbook_and_params(
        executor: Executor, loader: Loader, write: Write, toy: Toy, store: RunStore) -> None:
    toy.values["a"] = "broken"
    waiting = executor.run(load(loader, write, FIX), {"key": "a"}, requester="alice")
    assert waiting.status == RunStatus.AWAITING_APPROVAL
    pending, _ = store.create_run("toy", "{}", {"key": "a"}, "bob")
    store.create_run("toy", "{}", {"key": "b"}, "bob")  # another target: not the same incident
    store.create_run("other", "{}", {"key": "a"}, "bob")  # another runbook
    done = executor.run(load(loader, write, FIX), {"key": "c"}, requester="alice")
    assert done.status == RunStatus.AWAITING_APPROVAL
    run = executor.run(load(loader, write, OTHERS), {"key": "a"}, requester="carol")
    assert [f.summary for f in run.findings] == [f"awaiting_approval,pending {waiting.id},{pending}"]
    alone = executor.run(load(loader, write, OTHERS), {"key": "d"}, requester="carol")
    assert alone.findings == []
