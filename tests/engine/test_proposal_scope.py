"""One proposal asks each access question once and reads each object once; approvals and changes ask afresh."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.actions import ActionRegistry, Identity, Permission
from engine.executor import Executor
from engine.loader import Loader
from engine.policy import Policy
from engine.proposal_scope import ReviewMemo, SharedReads
from engine.records import RunStatus
from engine.sqlstore.sqlite import SqliteStore
from tests.conftest import Toy
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
    """`first` and its planned successor `second` need the same grant: the proposal asks the cluster once.
    Executing `first` after the approval asks again, and so does the next proposal."""
    cluster = Cluster({"engine"})
    executor = Executor(registry, SqliteStore(":memory:"), checker=cluster, policy=Policy(approvers=("bob",)))
    toy.values["a"] = "broken"
    run = executor.run(loader.load_file(write(PLAN)), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.AWAITING_APPROVAL and [i.step for i in run.plan] == ["first", "second", "third"]
    assert next(i for i in run.plan if i.step == "second").preview  # previewed, with the memoised answer
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
    # bob's dry-run of `first` was checked once; the preview of `second` (as the engine) is its own question
    assert cluster.asked == [("bob", None), (None, None)]
    executor.decide(run.id, True, "bob")
    assert cluster.asked[2] == ("bob", None)  # the approval itself: never from the proposal's answers
