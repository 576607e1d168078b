"""One proposal asks each access question once and reads each object once; approvals and changes ask afresh."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.actions import ActionContext, ActionKind, ActionRegistry, Authorized, Identity, Permission
from engine.errors import ForbiddenError
from engine.executor import Executor
from engine.loader import Loader
from engine.policy import Policy
from engine.proposal_scope import ReviewMemo, SharedReads
from engine.records import RunStatus, StepStatus
from engine.sqlstore.sqlite import SqliteStore
from engine.verdict import Change
from tests.conftest import SetArgs, Toy
from tests.engine.test_identities import Cluster
from tests.engine.test_plan import PLAN

Write = Callable[[str, str], Path]
PATCH = Permission("configmaps", "patch", namespaced=True)
NODES = Permission("nodes", "get")


def test_a_question_is_asked_once_per_scope_and_a_cluster_wide_one_whatever_the_namespace() -> None:
    cluster = Cluster({"engine"})
    memo = ReviewMemo(cluster)
    assert memo.missing((NODES, PATCH), "data", None) == []
    assert memo.missing((NODES,), None, None) == []  # nodes are cluster-wide: the same question
    assert memo.missing((PATCH,), "data", None) == []
    assert cluster.asked == [(None, "data")]
    assert memo.missing((PATCH,), "shop", None) == []  # another namespace is another question
    bob = Identity("bob")
    assert memo.missing((PATCH, NODES), "data", bob) == [PATCH, NODES]  # and so is another identity
    assert memo.missing((NODES,), "data", bob) == [NODES]
    assert cluster.asked == [(None, "data"), (None, "shop"), ("bob", "data")]


def test_shared_reads_serve_other_steps_only_and_are_bounded() -> None:
    reads = SharedReads(limit=2)
    reads.put("node", "cordon", b"{}")
    assert reads.get("node", "cordon") is None  # a step reading twice (polling) reaches the server
    assert reads.get("node", "delete") == b"{}"
    reads.put("pod", "delete", b"1")
    reads.put("lease", "delete", b"2")  # past the limit: not kept
    assert reads.get("lease", "other") is None and reads.get("pod", "other") == b"1"


def test_one_proposal_asks_once_and_the_approval_asks_again(registry: ActionRegistry, loader: Loader, write: Write,
                                                            toy: Toy) -> None:
    """The toy's dry-run proves no grant, so proposing `first` asks the cluster once; previewing `second`
    asks nothing (only a refused preview would). Executing `first` after the approval asks again, and so
    does the next proposal."""
    cluster = Cluster({"engine"})
    executor = Executor(registry, SqliteStore(":memory:"), checker=cluster, policy=Policy(approvers=("bob",)))
    toy.values["a"] = "broken"
    run = executor.run(loader.load_file(write(PLAN)), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.AWAITING_APPROVAL and [i.step for i in run.plan] == ["first", "second", "third"]
    assert next(i for i in run.plan if i.step == "second").preview
    assert cluster.asked == [(None, None)]
    run = executor.decide(run.id, True, "bob")
    assert run.status == RunStatus.AWAITING_APPROVAL and run.awaiting_step == "second"
    assert cluster.asked == [(None, None)] * 3  # executing `first`, then proposing `second`: asked afresh


def test_an_approver_dry_run_shares_the_scope_but_the_approval_check_is_fresh(
        registry: ActionRegistry, loader: Loader, write: Write, toy: Toy) -> None:
    cluster = Cluster({"bob"})
    people = {"bob": Identity("bob")}

    class Directory:
        def resolve(self, actor: str, groups: frozenset[str]) -> Identity | None:
            return people.get(actor)

        def known(self) -> list[str]:
            return list(people)

    executor = Executor(registry, SqliteStore(":memory:"), checker=cluster,
                        policy=Policy(approvers=("bob",), identities=Directory()))
    toy.values["a"] = "broken"
    run = executor.run(loader.load_file(write(PLAN)), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.AWAITING_APPROVAL
    # bob was checked once, to choose who dry-runs `first`; the engine's preview of `second` asks nothing
    assert cluster.asked == [("bob", None)]
    executor.decide(run.id, True, "bob")
    assert cluster.asked[2] == ("bob", None)  # the approval itself: never from the proposal's answers


GUARDED = PLAN.replace("toy.set", "toy.guarded")


def guarded(registry: ActionRegistry, toy: Toy) -> None:
    """`toy.guarded`: `toy.set` behind a toy authorizer, which lets the engine's dry-runs through unless
    toy.values["refuse"] is set, and notes what it let through as the Kubernetes client does."""

    @registry.register("toy.guarded", kind=ActionKind.REMEDIATE, args=SetArgs, permissions=(PATCH, NODES))
    def toy_guarded(ctx: ActionContext, args: SetArgs) -> dict[str, Any]:
        if ctx.dry_run and toy.values.get("refuse"):
            raise ForbiddenError("forbidden: the engine cannot patch configmaps; grant configmaps:patch",
                                 permission="configmaps:patch")
        if ctx.authorized is not None:
            ctx.authorized.add(Authorized.needed(PATCH, None))
        ctx.change(Change(verb="set", target=args.key, diff=(f"{args.key} -> {args.value}",), dry_run=ctx.dry_run))
        if not ctx.dry_run:
            toy.values[args.key] = args.value
        return {}


def test_what_a_dry_run_got_through_the_authorizer_is_not_asked_again(registry: ActionRegistry, loader: Loader,
                                                                      write: Write, toy: Toy) -> None:
    """The dry-runs of `first` and the preview of `second` prove configmaps:patch, so only nodes:get is asked,
    after the dry-run; the change itself is still preceded by every question, afresh."""
    guarded(registry, toy)
    cluster = Cluster({"engine"})
    executor = Executor(registry, SqliteStore(":memory:"), checker=cluster, policy=Policy(approvers=("bob",)))
    toy.values["a"] = "broken"
    run = executor.run(Loader(registry).load_file(write(GUARDED)), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.AWAITING_APPROVAL and run.steps[1].changes
    assert cluster.asked == [(None, None)] and cluster.permissions == [(NODES,)]
    executor.decide(run.id, True, "bob")
    assert cluster.permissions[1] == (PATCH, NODES)  # before sending the change: nothing taken from the dry-run


def test_a_refused_dry_run_names_every_grant_the_engine_lacks(registry: ActionRegistry, write: Write,
                                                              toy: Toy) -> None:
    guarded(registry, toy)
    executor = Executor(registry, SqliteStore(":memory:"), checker=Cluster(set()), policy=Policy(approvers=("bob",)))
    toy.values.update(a="broken", refuse="yes")
    run = executor.run(Loader(registry).load_file(write(GUARDED)), {"key": "a"}, requester="alice")
    first = run.steps[1]
    assert run.status == RunStatus.FAILED and first.status == StepStatus.FAILED
    assert first.error == "forbidden: the engine may not run toy.guarded; grant configmaps:patch, nodes:get"
    assert [f.id for f in first.findings] == ["permission-missing"]


def test_a_refused_preview_says_which_grants_it_lacks(registry: ActionRegistry, write: Write, toy: Toy) -> None:
    guarded(registry, toy)
    cluster = Cluster(set())
    executor = Executor(registry, SqliteStore(":memory:"), checker=cluster, policy=Policy(approvers=("bob",)))
    toy.values["a"] = "broken"
    runbook = Loader(registry).load_file(write(GUARDED))
    toy.values["refuse"] = "yes"
    context = {"params": {"key": "a"}, "steps": {"look": {"status": "succeeded", "output": {"value": "broken"}}}}
    second = executor.planner.after("r1", runbook, 1, context)[0]
    assert second.step == "second" and second.preview == ()
    assert second.note == "no preview: the engine's own identity may not dry-run this step " \
        "(grant configmaps:patch, nodes:get)"
