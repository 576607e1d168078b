"""A run whose owner died while sending an approved change: the next owner re-reads its target through
the action's read-back, never re-sends it, and records applied / not applied / effect unknown (both
backends). The dead owner is simulated in the store: claimed, intent committed, lease lapsed."""

from __future__ import annotations

import time
from typing import Any

import pytest

from engine.actions import ActionContext, ActionKind, ActionRegistry, ReadBack
from engine.errors import TransientError
from engine.executor import Executor
from engine.loader import Loader
from engine.policy import Policy
from engine.records import RunRecord, RunStatus, StepRecord, StepStatus
from engine.run_store import RunStore
from engine.verdict import Change
from tests.conftest import TEAM, SetArgs, StoreFactory, Toy
from tests.engine.test_executor import HEADER, Write, load

RUNBOOK = HEADER + """
steps:
  - id: fix
    title: Set it
    action: toy.put
    with: {key: "{{ params.key }}", value: ok}
    timeout: 200ms
    proposal: {summary: "set {{ params.key }} to ok", reason: it is broken, risk: low}
  - id: verify
    title: Verify
    action: toy.get
    with: {key: "{{ params.key }}"}
"""


@pytest.fixture
def put(registry: ActionRegistry, toy: Toy) -> dict[str, str]:
    """`toy.put`: a toy change that, like a Kubernetes patch, marks the key with the run that set it; its
    read-back reads value and mark. Returns the marks."""
    marks: dict[str, str] = {}

    def read_back(ctx: ActionContext, args: SetArgs, changes: tuple[Change, ...]) -> ReadBack:
        assert ctx.dry_run and changes and all(c.dry_run for c in changes)
        if toy.failures.get("read", 0):
            raise TransientError("the toy store is unreachable")
        if toy.failures.get("read-crash", 0):
            raise RuntimeError(f"cannot open https://admin:{LEAKED}@toy.example/store")
        value, mark = toy.values.get(args.key), marks.get(args.key)
        seen = f"{args.key}={value}, set by {mark or 'nobody'}"
        if value == args.value and mark == ctx.run_id:
            return ReadBack("applied", seen)
        return ReadBack("not applied" if value != args.value and mark != ctx.run_id else "effect unknown", seen)

    @registry.register("toy.put", kind=ActionKind.REMEDIATE, args=SetArgs, read_back=read_back)
    def toy_put(ctx: ActionContext, args: SetArgs) -> dict[str, Any]:
        """Sets a key and marks it with the run."""
        ctx.change(Change(verb="put", target=args.key, diff=(f"{args.key} -> {args.value}",), dry_run=ctx.dry_run))
        if not ctx.dry_run:
            toy.calls["put"] = toy.calls.get("put", 0) + 1
            toy.values[args.key], marks[args.key] = args.value, ctx.run_id
        return {}

    return marks


def died_sending(registry: ActionRegistry, loader: Loader, write: Write, dead: RunStore, text: str = RUNBOOK,
                 started: float | None = None) -> str:
    """A run approved and claimed by `dead`, which committed its intent to send, then died (lease lapsed)."""
    executor = Executor(registry, dead, policy=Policy(approvers=TEAM))
    run = executor.run(load(loader, write, text), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.AWAITING_APPROVAL
    executor.decide(run.id, True, "bob", resume=False)
    assert dead.claim(run.id, RunStatus.AWAITING_APPROVAL, RunStatus.RUNNING, lease=-1, awaiting_step=None)
    proposed = run.steps[0]
    assert proposed.proposal is not None
    sending = StepRecord(0, "fix", proposed.action, StepStatus.RUNNING, proposed.title, inputs=proposed.inputs,
                         changes=list(proposed.changes), proposal=proposed.proposal.model_copy(
                             update={"status": "approved"}), started_at=time.time() if started is None else started)
    assert dead.save_step(run.id, sending, cursor=0)
    return run.id


def next_owner(registry: ActionRegistry, make_store: StoreFactory, grace: float = 0.0) -> Executor:
    executor = Executor(registry, make_store("pod-b/1/y"), policy=Policy(approvers=TEAM))
    executor.landing_grace = grace
    return executor


def actions(run: RunRecord, store: RunStore) -> list[str]:
    return [e.action for e in store.audit_log(run.id)]


def test_applied_the_run_goes_on_from_the_next_step(registry: ActionRegistry, loader: Loader, write: Write,
                                                    make_store: StoreFactory, toy: Toy, put: dict[str, str]) -> None:
    dead = make_store("pod-a/1/x")
    run_id = died_sending(registry, loader, write, dead)
    toy.values["a"], put["a"] = "ok", run_id  # the change landed before its sender died
    b = next_owner(registry, make_store)
    assert b.settle_in_flight(lease=30) == [run_id]
    run = b.resume(run_id)
    assert run.status == RunStatus.SUCCEEDED and [s.status for s in run.steps] == ["succeeded", "succeeded"]
    assert toy.calls.get("put", 0) == 0  # never sent again
    (change,) = run.mutations
    assert change.outcome == "applied" and "a=ok, set by " + run_id in change.diff[-1]
    assert run.steps[0].proposal is not None and run.steps[0].proposal.status == "executed"
    assert {"run.taken_over", "remediation.executed"} <= set(actions(run, b.store))
    assert not dead.save_step(run_id, run.steps[0])  # the dead owner, had it only stalled, is fenced out


def test_not_applied_the_run_ends_saying_so_once_nothing_can_land(
        registry: ActionRegistry, loader: Loader, write: Write, make_store: StoreFactory, toy: Toy,
        put: dict[str, str]) -> None:
    toy.values["a"] = "broken"
    dead = make_store("pod-a/1/x")
    run_id = died_sending(registry, loader, write, dead)
    b = next_owner(registry, make_store, grace=0.5)
    assert b.settle_in_flight(lease=30) == []  # unchanged, but a request sent just now may still land
    waiting = b.store.get_run(run_id)
    assert waiting.status == RunStatus.RUNNING and waiting.steps[0].status == StepStatus.RUNNING
    assert not b.store.holds(run_id) and "run.taken_over" not in actions(waiting, b.store)
    time.sleep(0.8)  # past the step's 200 ms timeout and the 0.5 s grace
    assert b.settle_in_flight(lease=30) == []
    run = b.store.get_run(run_id)
    assert run.status == RunStatus.FAILED and run.error is not None
    assert "not applied: the process carrying the run stopped before the change reached toy.put" in run.error
    assert "it was not sent again: re-run the runbook" in run.error
    assert run.steps[0].status == StepStatus.FAILED and [c.outcome for c in run.mutations] == ["not applied"]
    assert run.steps[0].proposal is not None and run.steps[0].proposal.status == "failed"
    assert toy.values["a"] == "broken" and toy.calls.get("put", 0) == 0
    taken = next(e for e in b.store.audit_log(run_id) if e.action == "run.taken_over")
    assert taken.detail["outcome"] == "not applied" and taken.detail["evidence"] == "a=broken, set by nobody"


def test_a_changed_target_without_this_runs_mark_is_effect_unknown(
        registry: ActionRegistry, loader: Loader, write: Write, make_store: StoreFactory, toy: Toy,
        put: dict[str, str]) -> None:
    dead = make_store("pod-a/1/x")
    run_id = died_sending(registry, loader, write, dead)
    toy.values["a"], put["a"] = "ok", "someone-else"
    b = next_owner(registry, make_store)
    assert b.settle_in_flight(lease=30) == []
    run = b.store.get_run(run_id)
    assert run.status == RunStatus.INTERRUPTED and "its effect is unknown (a=ok, set by someone-else)" in (run.error
                                                                                                       or "")
    assert run.steps[0].status == StepStatus.INTERRUPTED and [c.outcome for c in run.mutations] == ["effect unknown"]
    assert "check toy.put before re-running" in (run.error or "") and toy.calls.get("put", 0) == 0


def test_a_failed_read_is_effect_unknown(registry: ActionRegistry, loader: Loader, write: Write,
                                         make_store: StoreFactory, toy: Toy, put: dict[str, str]) -> None:
    dead = make_store("pod-a/1/x")
    run_id = died_sending(registry, loader, write, dead, started=time.time() - 600)
    toy.failures["read"] = 1
    assert next_owner(registry, make_store).settle_in_flight(lease=30) == []
    run = dead.get_run(run_id)
    assert run.status == RunStatus.INTERRUPTED
    assert "re-reading the target failed: the toy store is unreachable" in (run.error or "")


LEAKED = "Rb7kPq2xW9zL"  # a password in the message of a read-back that crashes


def test_a_crashing_read_back_is_effect_unknown_and_its_message_redacted(
        registry: ActionRegistry, loader: Loader, write: Write, make_store: StoreFactory, toy: Toy,
        put: dict[str, str]) -> None:
    dead = make_store("pod-a/1/x")
    run_id = died_sending(registry, loader, write, dead, started=time.time() - 600)
    toy.failures["read-crash"] = 1
    assert next_owner(registry, make_store).settle_in_flight(lease=30) == []
    run = dead.get_run(run_id)
    assert run.status == RunStatus.INTERRUPTED and "crashed: RuntimeError" in (run.error or "")
    recorded = [run.error, run.steps[0].error, str(run.steps[0].output), str(run.steps[0].changes),
                *(str(e.detail) for e in dead.audit_log(run_id))]
    assert not [text for text in recorded if LEAKED in str(text)]


def test_an_action_without_a_read_back_is_effect_unknown(registry: ActionRegistry, loader: Loader, write: Write,
                                                         make_store: StoreFactory, toy: Toy) -> None:
    dead = make_store("pod-a/1/x")
    text = RUNBOOK.replace("action: toy.put", "action: toy.set")
    run_id = died_sending(registry, loader, write, dead, text, started=time.time() - 600)
    assert next_owner(registry, make_store).settle_in_flight(lease=30) == []
    run = dead.get_run(run_id)
    assert run.status == RunStatus.INTERRUPTED and "toy.set has no way to re-read its target" in (run.error or "")
    assert "a" not in toy.values  # nothing sent


def test_a_live_owner_is_left_alone(registry: ActionRegistry, loader: Loader, write: Write,
                                    make_store: StoreFactory, toy: Toy, put: dict[str, str]) -> None:
    alive = make_store("pod-a/1/x")
    run_id = died_sending(registry, loader, write, alive)
    assert alive.claim(run_id, RunStatus.RUNNING, RunStatus.RUNNING, lease=30)  # its lease is valid
    assert next_owner(registry, make_store).settle_in_flight(lease=30) == []
    assert alive.holds(run_id)


def test_a_server_worker_resuming_a_claimed_run_settles_it(registry: ActionRegistry, loader: Loader, write: Write,
                                                          make_store: StoreFactory, toy: Toy,
                                                          put: dict[str, str]) -> None:
    """The server's path: the sweeper only claims; a worker's `resume` re-reads, under the heartbeat."""
    dead = make_store("pod-a/1/x")
    run_id = died_sending(registry, loader, write, dead)
    b = next_owner(registry, make_store, grace=60)
    assert b.store.take_over_in_flight(lease=30) == [run_id]
    waiting = b.resume(run_id)  # unchanged and a request may still land: given back, still running
    assert waiting.status == RunStatus.RUNNING and not b.store.holds(run_id)
    toy.values["a"], put["a"] = "ok", run_id  # the held request lands
    assert b.store.take_over_in_flight(lease=30) == [run_id]
    run = b.resume(run_id)
    assert run.status == RunStatus.SUCCEEDED and [c.outcome for c in run.mutations] == ["applied"]
    assert toy.calls.get("put", 0) == 0


def test_a_failed_change_recorded_just_before_its_owner_died_still_ends_the_run(
        registry: ActionRegistry, loader: Loader, write: Write, make_store: StoreFactory, toy: Toy,
        put: dict[str, str]) -> None:
    """The owner stored the failed remediation (cursor past it) and died before ending the run: the next
    owner must not carry on to the verification as if it had worked."""
    dead = make_store("pod-a/1/x")
    run_id = died_sending(registry, loader, write, dead)
    sending = dead.get_run(run_id).steps[0]
    failed = StepRecord(0, "fix", sending.action, StepStatus.FAILED, sending.title, inputs=sending.inputs,
                        proposal=sending.proposal, error="not applied: conflict", started_at=sending.started_at)
    assert dead.save_step(run_id, failed, cursor=1)
    b = next_owner(registry, make_store)
    assert b.store.take_over(lease=30) == [run_id]
    run = b.resume(run_id)
    assert run.status == RunStatus.FAILED and run.error == "step 'fix' failed: not applied: conflict"
    assert [s.id for s in run.steps] == ["fix"]  # the verification never ran
