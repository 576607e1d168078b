"""Approvers act with their own Kubernetes identity: mapped, checked before approving, used to execute."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.actions import ActionRegistry, Identity, Permission
from engine.errors import ApprovalError
from engine.executor import Executor
from engine.loader import Loader
from engine.policy import Policy
from engine.records import RunRecord, RunStatus
from engine.run_store import RunStore
from engine.verdict import Proposal
from tests.conftest import StoreFactory, Toy
from tests.engine.test_executor import FIX

Write = Callable[[str, str], Path]


class Directory:
    """Slack-like people mapped to Kubernetes users."""

    def __init__(self, mapping: dict[str, Identity]) -> None:
        self.mapping = mapping

    def resolve(self, actor: str, groups: frozenset[str]) -> Identity | None:
        return self.mapping.get(actor)

    def known(self) -> list[str]:
        return list(self.mapping)


class Cluster:
    """Answers access reviews: only `allowed` users may patch configmaps."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.asked: list[tuple[str | None, str | None]] = []
        self.permissions: list[tuple[Permission, ...]] = []

    def missing(self, permissions: tuple[Permission, ...], namespace: str | None,
                identity: Identity | None) -> list[Permission]:
        self.asked.append((identity.user if identity else None, namespace))
        self.permissions.append(permissions)
        user = identity.user if identity else "engine"
        return [] if user in self.allowed else list(permissions)


PEOPLE = Directory({"bob": Identity("bob@corp.example", ("sre",)), "carol": Identity("carol@corp.example")})


def executor_for(registry: ActionRegistry, store: RunStore, allowed: set[str],
                 default_approvers: tuple[str, ...] = ("bob", "carol", "dave")) -> Executor:
    return Executor(registry, store, checker=Cluster(allowed),
                    policy=Policy(approvers=default_approvers, identities=PEOPLE))


def start(executor: Executor, loader: Loader, write: Write, toy: Toy, text: str = FIX) -> str:
    toy.values["a"] = "broken"
    run = executor.run(loader.load_file(write(text)), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.AWAITING_APPROVAL
    return run.id


def test_the_remediation_executes_as_the_approver(registry: ActionRegistry, store: RunStore, loader: Loader,
                                                  write: Write, toy: Toy) -> None:
    executor = executor_for(registry, store, {"engine", "bob@corp.example"})
    run = executor.decide(start(executor, loader, write, toy), True, "bob")
    assert run.status == RunStatus.SUCCEEDED
    assert toy.identities == [Identity("bob@corp.example", ("sre",))]
    executed = [e for e in store.audit_log(run.id) if e.action == "remediation.executed"]
    assert executed[0].detail["as"] == "bob@corp.example (groups sre)"


def test_an_approver_the_cluster_forbids_is_refused_plainly(registry: ActionRegistry, store: RunStore,
                                                            loader: Loader, write: Write, toy: Toy) -> None:
    executor = executor_for(registry, store, {"engine", "bob@corp.example"})
    run_id = start(executor, loader, write, toy)
    with pytest.raises(ApprovalError, match=r"carol acts in Kubernetes as carol@corp.example, who may not run "
                                            r"toy.set: missing configmaps:patch"):
        executor.decide(run_id, True, "carol")
    assert store.get_run(run_id).status == RunStatus.AWAITING_APPROVAL and toy.values["a"] == "broken"


def test_unmapped_approvers_are_refused_unless_the_runbook_allows_the_engine_role(
        registry: ActionRegistry, store: RunStore, loader: Loader, write: Write, toy: Toy) -> None:
    executor = executor_for(registry, store, {"bob@corp.example"})
    run_id = start(executor, loader, write, toy)
    with pytest.raises(ApprovalError, match="dave has no Kubernetes identity mapped"):
        executor.decide(run_id, True, "dave")
    lenient = FIX.replace("policy: {approval_timeout: 1h}", "policy: {approval_timeout: 1h, fallback_to_engine: true}")
    executor = executor_for(registry, store, {"engine"})
    run = executor.decide(start(executor, loader, write, toy, lenient), True, "dave")
    assert run.status == RunStatus.SUCCEEDED and toy.identities == [None]


def test_the_identity_survives_a_restart_between_approval_and_execution(
        registry: ActionRegistry, loader: Loader, write: Write, toy: Toy, make_store: StoreFactory) -> None:
    first = make_store("a")
    executor = executor_for(registry, first, {"engine", "bob@corp.example"})
    run_id = start(executor, loader, write, toy)
    executor.decide(run_id, True, "bob", resume=False)
    first.close()
    second = make_store("b")
    run = executor_for(registry, second, {"engine", "bob@corp.example"}).resume(run_id)
    assert run.status == RunStatus.SUCCEEDED and toy.identities == [Identity("bob@corp.example", ("sre",))]


def asked(executor: Executor) -> list[tuple[str | None, str | None]]:
    """Whom the cluster was asked about, and for which namespace."""
    assert isinstance(executor.checker, Cluster)
    return executor.checker.asked


def proposal_of(run: RunRecord) -> Proposal:
    return next(p for p in run.proposals if p.step == "fix")


def test_the_dry_run_runs_as_the_first_approver_who_may(registry: ActionRegistry, store: RunStore, loader: Loader,
                                                        write: Write, toy: Toy) -> None:
    """The cluster authorizes a dry-run like the real change: done as an approver, the engine needs no write role."""
    executor = executor_for(registry, store, {"carol@corp.example"}, default_approvers=("dave", "bob", "carol"))
    run = store.get_run(start(executor, loader, write, toy))
    assert proposal_of(run).dry_run_as == "carol@corp.example"
    assert asked(executor) == [("bob@corp.example", None), ("carol@corp.example", None)]
    assert executor.decide(run.id, True, "carol").status == RunStatus.SUCCEEDED


def test_nobody_who_may_approve_may_run_it_fails_the_step_and_proposes_nothing(
        registry: ActionRegistry, store: RunStore, loader: Loader, write: Write, toy: Toy) -> None:
    executor = executor_for(registry, store, {"engine"})
    toy.values["a"] = "broken"
    run = executor.run(loader.load_file(write(FIX)), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.FAILED and not run.proposals
    fix = next(s for s in run.steps if s.id == "fix")
    assert fix.error == ("forbidden: nobody who may approve toy.set may run it (bob@corp.example, carol@corp.example "
                         "lack configmaps:patch); grant configmaps:patch to one of them")
    assert [f.id for f in fix.findings] == ["permission-missing"]
    unmapped = executor_for(registry, store, {"engine"}, default_approvers=("dave",))
    run = unmapped.run(loader.load_file(write(FIX)), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.FAILED and not run.proposals
    assert "nobody who may approve toy.set has a Kubernetes identity mapped (candidates: dave)" in str(run.error)


def test_fallback_to_the_engine_keeps_the_engine_dry_running(registry: ActionRegistry, store: RunStore,
                                                             loader: Loader, write: Write, toy: Toy) -> None:
    executor = executor_for(registry, store, {"engine"})
    lenient = FIX.replace("policy: {approval_timeout: 1h}", "policy: {approval_timeout: 1h, fallback_to_engine: true}")
    run = store.get_run(start(executor, loader, write, toy, lenient))
    assert proposal_of(run).dry_run_as is None
    assert asked(executor) == [(None, None)]


def test_without_an_access_checker_the_first_mapped_approver_dry_runs(registry: ActionRegistry, store: RunStore,
                                                                       loader: Loader, write: Write, toy: Toy) -> None:
    """Nothing to ask beforehand: the API server authorizes the impersonated dry-run itself."""
    executor = Executor(registry, store, policy=Policy(approvers=("dave", "carol", "bob"), identities=PEOPLE))
    run = store.get_run(start(executor, loader, write, toy))
    assert proposal_of(run).dry_run_as == "carol@corp.example"
