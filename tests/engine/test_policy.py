"""The policy gate: safe defaults, the change freeze and the blast-radius limits, all decided in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from engine.actions import ActionRegistry
from engine.executor import Executor
from engine.loader import Loader
from engine.model import Runbook
from engine.policy import Blocked, Limits, NotAllowed, Policy
from engine.records import RunStatus
from engine.run_store import RunStore
from tests.conftest import TEAM, StoreFactory, Toy
from tests.engine.test_executor import FIX

Write = Callable[[str, str], Path]


def runbook(loader: Loader, write: Write, text: str = FIX) -> Runbook:
    return loader.load_file(write(text, "toy.yaml"))


def awaiting(executor: Executor, rb: Runbook, toy: Toy, key: str = "a") -> str:
    toy.values[key] = "broken"
    run = executor.run(rb, {"key": key}, requester="alice")
    assert run.status == RunStatus.AWAITING_APPROVAL
    return run.id


def refusals(store: RunStore) -> list[str]:
    return [str(e.detail.get("reason")) for e in store.audit_log() if e.action.endswith(".refused")]


def test_with_no_approvers_configured_nobody_may_approve(registry: ActionRegistry, store: RunStore, loader: Loader,
                                                         write: Write, toy: Toy) -> None:
    executor = Executor(registry, store)  # no policy given: the shipped default
    run_id = awaiting(executor, runbook(loader, write), toy)
    with pytest.raises(NotAllowed, match="nobody may approve toy: no approvers are configured") as refused:
        executor.decide(run_id, True, "bob", step="fix")
    assert "`approvers`" in str(refused.value) and "`policy.approvers`" in str(refused.value)
    assert store.get_run(run_id).status == RunStatus.AWAITING_APPROVAL and toy.values["a"] == "broken"
    assert "no approvers are configured" in refusals(store)[0]
    lenient = FIX.replace("policy: {approval_timeout: 1h}", "policy: {allow_self_approval: true}")
    with pytest.raises(NotAllowed, match="no approvers are configured"):
        executor.run(runbook(loader, write, lenient), {"key": "a"}, requester="alice", auto_approve=True)


def test_a_freeze_refuses_approvals_but_not_diagnoses_or_rejections(
        registry: ActionRegistry, store: RunStore, loader: Loader, write: Write, toy: Toy) -> None:
    executor = Executor(registry, store, policy=Policy(approvers=TEAM))
    executor.freeze("carol", "release week")
    rb = runbook(loader, write)
    run_id = awaiting(executor, rb, toy)  # the diagnosis and the proposal still run
    [proposal] = store.get_run(run_id).proposals
    assert any("changes are frozen by carol: release week" in w for w in proposal.warnings)
    with pytest.raises(Blocked, match="changes are frozen by carol: release week"):
        executor.decide(run_id, True, "bob", step="fix")
    assert toy.values["a"] == "broken" and "changes are frozen" in refusals(store)[0]
    other = awaiting(executor, rb, toy, "b")
    assert executor.decide(other, False, "bob", reason="not now").status == RunStatus.REJECTED
    assert executor.unfreeze("carol", "released") is not None
    assert executor.decide(run_id, True, "bob", step="fix").status == RunStatus.SUCCEEDED
    actions = [(e.actor, e.action) for e in store.audit_log()]
    assert ("carol", "freeze.on") in actions and ("carol", "freeze.off") in actions
    assert executor.unfreeze("carol") is None  # nothing to end


def test_the_freeze_is_shared_by_every_replica_on_the_store(registry: ActionRegistry, loader: Loader, write: Write,
                                                             toy: Toy, make_store: StoreFactory) -> None:
    one, two = make_store("one"), make_store("two")
    Executor(registry, one, policy=Policy(approvers=TEAM)).freeze("carol", "incident review")
    executor = Executor(registry, two, policy=Policy(approvers=TEAM))
    run_id = awaiting(executor, runbook(loader, write), toy)
    with pytest.raises(Blocked, match="incident review"):
        executor.decide(run_id, True, "bob")


def test_auto_approve_waits_for_a_person_while_frozen(registry: ActionRegistry, store: RunStore, loader: Loader,
                                                      write: Write, toy: Toy) -> None:
    executor = Executor(registry, store, policy=Policy(approvers=TEAM))
    executor.freeze("carol", "release week")
    lenient = FIX.replace("policy: {approval_timeout: 1h}", "policy: {allow_self_approval: true}")
    toy.values["a"] = "broken"
    run = executor.run(runbook(loader, write, lenient), {"key": "a"}, requester="alice", auto_approve=True)
    assert run.status == RunStatus.AWAITING_APPROVAL and toy.values["a"] == "broken"
    assert any("frozen" in w for w in run.proposals[0].warnings)


def test_changes_per_target_per_hour_are_limited(registry: ActionRegistry, store: RunStore, loader: Loader,
                                                 write: Write, toy: Toy) -> None:
    executor = Executor(registry, store, policy=Policy(approvers=TEAM, limits=Limits(per_target_per_hour=2)))
    rb = runbook(loader, write)
    for key in ("a", "b"):
        assert executor.decide(awaiting(executor, rb, toy, key), True, "bob").status == RunStatus.SUCCEEDED
    third = awaiting(executor, rb, toy, "c")
    assert any("changed 2 times in the last hour" in w for w in store.get_run(third).proposals[0].warnings)
    with pytest.raises(Blocked, match="toy.set was changed 2 times in the last hour"):
        executor.decide(third, True, "bob")
    assert toy.values["c"] == "broken"


def test_changes_executing_at_once_are_limited(registry: ActionRegistry, store: RunStore, loader: Loader,
                                               write: Write, toy: Toy) -> None:
    executor = Executor(registry, store, policy=Policy(approvers=TEAM, limits=Limits(concurrent=1)))
    rb = runbook(loader, write)
    first, second = awaiting(executor, rb, toy, "a"), awaiting(executor, rb, toy, "b")
    executor.decide(first, True, "bob", resume=False)  # approved, waiting for a worker: it counts
    assert store.changes_in_flight() == 1
    with pytest.raises(Blocked, match="1 approved changes are executing"):
        executor.decide(second, True, "bob")
    assert executor.resume(first).status == RunStatus.SUCCEEDED and store.changes_in_flight() == 0
    assert executor.decide(second, True, "bob").status == RunStatus.SUCCEEDED


class Groups:
    def __init__(self, members: dict[str, set[str]]) -> None:
        self.members = members

    def groups_of(self, user: str, candidates: Iterable[str]) -> frozenset[str]:
        return frozenset(g for g in candidates if user in self.members.get(g, set()))


def test_runners_and_approvers_through_the_directory(registry: ActionRegistry, store: RunStore, loader: Loader,
                                                     write: Write, toy: Toy) -> None:
    policy = Policy(runners=("@sre",), approvers=("@sre",), directory=Groups({"@sre": {"dave", "erin"}}))
    executor = Executor(registry, store, policy=policy)
    rb = runbook(loader, write)
    with pytest.raises(NotAllowed, match="mallory may not run toy") as refused:
        executor.authorize_start(rb, "mallory")
    assert refused.value.ask == ("@sre",)
    executor.authorize_start(rb, "dave")
    toy.values["a"] = "broken"
    run = executor.run(rb, {"key": "a"}, requester="dave")
    with pytest.raises(NotAllowed, match="forbids approving your own request"):
        executor.decide(run.id, True, "dave")
    assert executor.decide(run.id, True, "erin").status == RunStatus.SUCCEEDED
    assert [e.action for e in store.audit_log() if e.action.endswith("refused")] == ["run.refused",
                                                                                     "step.approve.refused"]
