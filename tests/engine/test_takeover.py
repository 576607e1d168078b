"""A replica carries on the runs of one that died; never a change that was in flight (both backends)."""

from __future__ import annotations

import time

from engine.actions import ActionRegistry
from engine.executor import Executor
from engine.loader import Loader
from engine.policy import Policy
from engine.records import RunStatus, StepRecord, StepStatus
from tests.conftest import TEAM, StoreFactory, Toy
from tests.engine.test_executor import FIX, Write, load


def test_a_dead_replicas_run_is_taken_over_and_finished(registry: ActionRegistry, loader: Loader, write: Write,
                                                         toy: Toy, make_store: StoreFactory) -> None:
    toy.values["a"] = "ok"
    dead, alive = make_store("pod-a/1/x"), make_store("pod-b/1/y")
    run_id, _ = Executor(registry, dead).start(load(loader, write, FIX), {"key": "a"}, requester="alice")
    assert dead.claim(run_id, RunStatus.PENDING, RunStatus.RUNNING, lease=-1)  # claimed, then pod-a died mid-step
    assert dead.save_step(run_id, StepRecord(0, "look", "toy.get", StepStatus.RUNNING, started_at=time.time()),
                          cursor=0)
    executor = Executor(registry, alive)
    assert executor.resume(run_id).status == RunStatus.RUNNING  # not pod-b's to carry until it takes it over
    assert alive.take_over(lease=30) == [run_id]
    run = executor.resume(run_id)
    assert run.status == RunStatus.SUCCEEDED
    assert [s.status for s in run.steps] == ["succeeded", "skipped", "skipped", "succeeded"]
    assert not dead.update_run(run_id, status=RunStatus.FAILED)  # pod-a, had it only stalled, cannot write


def test_a_taken_over_run_waits_for_approval_and_is_approved_elsewhere(
        registry: ActionRegistry, loader: Loader, write: Write, toy: Toy, make_store: StoreFactory) -> None:
    toy.values["a"] = "broken"
    dead, b, c = make_store("pod-a/1/x"), make_store("pod-b/1/y"), make_store("pod-c/1/z")
    run_id, _ = Executor(registry, dead).start(load(loader, write, FIX), {"key": "a"}, requester="alice")
    assert dead.claim(run_id, RunStatus.PENDING, RunStatus.RUNNING, lease=-1)
    assert b.take_over(lease=30) == [run_id]
    assert Executor(registry, b).resume(run_id).status == RunStatus.AWAITING_APPROVAL
    third = Executor(registry, c, policy=Policy(approvers=TEAM))
    done = third.decide(run_id, True, "bob", step="fix")  # the click lands on a third replica
    assert done.status == RunStatus.SUCCEEDED and toy.values["a"] == "ok"
    assert len([c for c in done.mutations]) == 1
