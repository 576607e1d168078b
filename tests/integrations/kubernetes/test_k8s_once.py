"""Each remediation sends its change at most once and, when the answer is lost, re-reads the target and records
what is true (`applied`, `not applied`, `effect unknown`). The simulator loses answers on purpose: before the
request is handled (`status`), or after it was applied (`after=True`)."""

from __future__ import annotations

import pytest
from k8s_objects import lease, node, owner, pdb, pod, uid
from rollout_objects import rolled_out

from engine.errors import OutcomeUnknown, PermanentError
from integrations.kubernetes.drain import DrainActions, DrainArgs
from integrations.kubernetes.remediations import PodDeleteArgs, RemediationActions

POD = "/api/v1/namespaces/shop/pods/cache-0"


def fleet() -> list[dict]:
    nodes = [obj for i in range(4) for obj in (node(f"node-{i}"), lease(f"node-{i}", 5))]
    return [*nodes, pod("cache-0", "shop", "node-1", [owner("ReplicaSet", "cache-1", uid())], {"app": "cache"})]


def drain(kube, ctx):
    c = ctx()
    out = DrainActions(kube, sleep=lambda s: None).drain(c, DrainArgs(node="node-1", timeout_seconds=5))
    return out, {ch.target: ch for ch in c.changes}


def test_an_eviction_applied_but_unanswered_is_not_sent_again(cluster, ctx):
    sim, kube = cluster(fleet())
    sim.faults.add(path=f"{POD}/eviction", method="POST", drop=True, after=True)
    out, changes = drain(kube, ctx)
    assert sim.requests[("POST", f"{POD}/eviction")] == 1 and out["evicted"] == ["shop/cache-0"]
    evicted = changes["Pod shop/cache-0"]
    assert evicted.outcome == "applied" and "re-reading Pod shop/cache-0 shows it applied" in evicted.diff[-1]
    assert changes["Node node-1"].outcome == "applied"


def test_an_eviction_refused_unhandled_is_sent_once_more_for_the_same_pod(cluster, ctx):
    sim, kube = cluster(fleet())
    sim.faults.add(path=f"{POD}/eviction", method="POST", status=503, times=1)
    out, changes = drain(kube, ctx)
    assert sim.requests[("POST", f"{POD}/eviction")] == 2 and out["evicted"] == ["shop/cache-0"]
    note = changes["Pod shop/cache-0"].diff[-1]
    assert "showed it was not applied" in note and "conditional on uid" in note


def test_a_cordon_whose_answer_and_re_read_are_lost_is_effect_unknown(cluster, ctx):
    sim, kube = cluster(fleet())
    sim.faults.add(path="/api/v1/nodes/node-1$", method="PATCH", drop=True, after=True)
    sim.faults.add(path="/api/v1/nodes/node-1$", method="GET", status=503)
    c = ctx()
    with pytest.raises(OutcomeUnknown, match="check Node node-1") as caught:
        DrainActions(kube, sleep=lambda s: None).drain(c, DrainArgs(node="node-1"))
    assert caught.value.check == "Node node-1"
    assert [ch.outcome for ch in c.changes] == ["effect unknown"]
    assert sim.requests[("PATCH", "/api/v1/nodes/node-1")] == 1
    assert sim.requests[("POST", f"{POD}/eviction")] == 0  # nothing more is done on an unknown


def test_a_delete_whose_answer_was_lost_is_found_applied(cluster, ctx):
    sim, kube = cluster(fleet())
    sim.faults.add(path=f"{POD}$", method="DELETE", drop=True, after=True)
    c = ctx()
    out = RemediationActions(kube).delete_pod(c, PodDeleteArgs(namespace="shop", name="cache-0"))
    assert out["outcome"] == "applied" and sim.requests[("DELETE", POD)] == 1
    gone = sim.get("Pod", "cache-0", "shop")
    assert gone is None or gone["metadata"].get("deletionTimestamp")


@pytest.mark.parametrize("how", ["two budgets", "injected"])
def test_a_failure_status_from_the_eviction_endpoint_is_not_an_eviction(cluster, ctx, how):
    """Two budgets over one pod: the real server answers 201 with a Failure Status, and nothing was evicted
    (kubernetes pkg/registry/core/pod/storage/eviction.go, `EvictionREST.Create`)."""
    budgets = [pdb("cache-a", "shop", "cache", 1, 0), pdb("cache-b", "shop", "cache", 1, 0)]
    sim, kube = cluster([*fleet(), *(budgets if how == "two budgets" else [])])
    if how == "injected":
        sim.faults.add(path=f"{POD}/eviction", method="POST", status=201)
    c = ctx()
    with pytest.raises(PermanentError, match="Failure Status"):
        DrainActions(kube, sleep=lambda s: None).drain(c, DrainArgs(node="node-1"))
    assert [ch.verb for ch in c.changes] == ["patch"] and sim.get("Pod", "cache-0", "shop") is not None


# -- the generic changes (k8s.patch, k8s.resources.set, k8s.rollout.*) ---------------------------------------

DEPLOYMENT = "/apis/apps/v1/namespaces/shop/deployments/web"


def run_action(registry, action_name: str, ctx, **args):
    action = registry.get(action_name)
    return action.func(ctx, action.args.model_validate(args))


@pytest.mark.parametrize(("action", "args"), [
    ("k8s.patch", {"kind": "Deployment", "patch": {"spec": {"minReadySeconds": 10}}}),
    ("k8s.patch", {"kind": "Deployment", "patch_type": "json",
                   "patch": [{"op": "replace", "path": "/spec/replicas", "value": 2}]}),
    ("k8s.resources.set", {"kind": "Deployment", "container": "web", "limits": {"memory": "1Gi"}}),
    ("k8s.rollout.restart", {"kind": "Deployment"}),
    ("k8s.rollout.undo", {}),
    ("k8s.scale", {"kind": "Deployment", "replicas": 5}),
])
def test_every_patched_object_carries_the_run_id_set_in_the_same_request(cluster, registry_for, ctx, action, args):
    sim, kube = cluster(rolled_out())
    before = sim.get("deployments", "web", "shop")["metadata"].get("annotations") or {}
    dry = ctx(dry_run=True)
    out = run_action(registry_for(kube), action, dry, name="web", namespace="shop", **args)
    assert not any("run-id" in line for line in out["diff"])  # bookkeeping: in the request, not in the diff
    real = ctx()
    assert run_action(registry_for(kube), action, real, name="web", namespace="shop", **args)["outcome"] == "applied"
    after = sim.get("deployments", "web", "shop")["metadata"]["annotations"]
    assert after["runbook.dev/run-id"] == "t"
    # the proposal's dry-run, the execution's own dry-run and the change: the annotation rode along
    assert sim.requests[("PATCH", DEPLOYMENT)] == 3
    if action != "k8s.rollout.undo":  # an undo puts the revision's annotations back; nothing else is dropped
        kept = ("runbook.dev/run-id", "deployment.kubernetes.io/revision")  # the controller bumps the revision
        assert {k: v for k, v in after.items() if k not in kept} == {k: v for k, v in before.items() if k not in kept}
    assert [c.outcome for c in real.changes] == ["applied"]


def test_a_generic_change_whose_effect_cannot_be_read_back_is_effect_unknown(cluster, registry_for, ctx):
    sim, kube = cluster(rolled_out())
    sim.faults.add(path=f"{DEPLOYMENT}$", method="GET", times=1)  # the action's own read passes
    sim.faults.add(path=f"{DEPLOYMENT}$", method="GET", status=503)  # the read-back fails
    sim.faults.add(path=f"{DEPLOYMENT}$", method="PATCH", times=1)  # the dry-run passes
    sim.faults.add(path=f"{DEPLOYMENT}$", method="PATCH", drop=True, after=True)
    c = ctx()
    with pytest.raises(OutcomeUnknown, match="effect unknown: check"):
        run_action(registry_for(kube), "k8s.patch", c, kind="Deployment", name="web", namespace="shop",
                   patch={"spec": {"minReadySeconds": 10}})
    assert [ch.outcome for ch in c.changes] == ["effect unknown"]
    assert sim.requests[("PATCH", DEPLOYMENT)] == 2  # the dry-run, then the change: once
