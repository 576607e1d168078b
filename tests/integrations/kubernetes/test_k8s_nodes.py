"""k8s.node.inspect, k8s.node.pods, cordon/uncordon and drain against the simulator."""

from __future__ import annotations

import pytest
from k8s_objects import event, lease, node, owner, pdb, pod, replicaset, statefulset, uid

from engine.actions import Identity
from engine.errors import ForbiddenError, NotFoundError, PermanentError, StepTimeout, TransientError
from integrations.kubernetes.drain import DrainActions, DrainArgs
from integrations.kubernetes.nodepods import NodePodsActions, NodePodsArgs
from integrations.kubernetes.nodes import NodeActions, NodeInspectArgs, cluster_view
from integrations.kubernetes.remediations import NodeArgs, RemediationActions

UNREACHABLE = [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
               {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]


def healthy_fleet(n: int = 5) -> list[dict]:
    return [obj for i in range(n) for obj in (node(f"node-{i}"), lease(f"node-{i}", 5))]


def inspect(kube, ctx, name: str, **kw):
    c = ctx()
    out = NodeActions(kube).inspect(c, NodeInspectArgs(node=name, **kw))
    return out, c.findings


def test_healthy_node_single_info_finding(cluster, ctx):
    _, kube = cluster(healthy_fleet())
    out, findings = inspect(kube, ctx, "node-1")
    assert out["cause"] == "healthy" and out["ready"] and out["lease_stale"] is False
    assert [f.id for f in findings] == ["node.healthy"]
    assert findings[0].severity == "info"
    assert out["kubelet_version"] == "v1.30.2" and out["zone"] == "eu-1a"
    assert out["schedulable_nodes"] == 5 and out["schedulable_share_after_cordon"] == 0.8


def test_kubelet_stopped(cluster, ctx):
    objects = [*healthy_fleet(5), node("node-b", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.",
                                       taints=UNREACHABLE, since=372), lease("node-b", 372),
               event("Node", "node-b", "NodeNotReady", "Node node-b status is now: NodeNotReady", type_="Normal")]
    _, kube = cluster(objects)
    out, findings = inspect(kube, ctx, "node-b")
    assert out["cause"] == "kubelet_stopped"
    assert out["lease_stale"] is True and out["lease_age_seconds"] >= 372 and out["unreachable"]
    assert out["not_ready_count"] == 1 and out["not_ready_nodes"] == ["node-b"]
    ids = [f.id for f in findings]
    assert ids == ["node.kubelet_stopped"]
    lease_ev = findings[0].evidence[0]
    assert lease_ev.object == "Lease kube-node-lease/node-b" and lease_ev.field == "spec.renewTime"
    assert "6m1" in lease_ev.value and "ago" in lease_ev.value
    assert out["events"][0]["reason"] == "NodeNotReady"


def test_kubelet_not_ready_runtime(cluster, ctx):
    msg = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady"
    _, kube = cluster([*healthy_fleet(4), node("node-c", "False", "KubeletNotReady", msg, since=120),
                       lease("node-c", 4)])
    out, findings = inspect(kube, ctx, "node-c")
    assert out["cause"] == "kubelet_not_ready" and out["lease_stale"] is False
    assert [f.id for f in findings] == ["node.not_ready"]
    assert "NetworkPluginNotReady" in findings[0].summary


def test_pressure_is_a_warning(cluster, ctx):
    _, kube = cluster([*healthy_fleet(3), node("node-p", pressure="DiskPressure"), lease("node-p", 3)])
    out, findings = inspect(kube, ctx, "node-p")
    assert out["cause"] == "pressure" and out["pressures"] == ["DiskPressure"] and out["ready"]
    assert [(f.id, f.severity) for f in findings] == [("node.pressure", "warning")]


def test_many_nodes_not_ready_is_not_this_nodes_fault(cluster, ctx):
    down = [obj for i in range(4) for obj in (
        node(f"node-b{i}", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.", zone="eu-1b",
             taints=UNREACHABLE), lease(f"node-b{i}", 300))]
    _, kube = cluster([*healthy_fleet(6), *down, node("cp-0", control_plane=True)])
    out, findings = inspect(kube, ctx, "node-b0")
    assert out["cause"] == "many_nodes_not_ready"
    assert out["not_ready_count"] == 4 and out["nodes_total"] == 10 and out["not_ready_share"] == 0.4
    assert out["not_ready_by_zone"] == {"eu-1b": 4}
    assert findings[0].id == "node.many_not_ready" and "do not cordon or drain" in findings[0].summary
    assert "eu-1b: 4" in findings[0].summary


def test_count_threshold(cluster, ctx):
    down = [node(f"node-d{i}", "False", since=60) for i in range(3)]
    _, kube = cluster([*healthy_fleet(17), *down])
    out, _ = inspect(kube, ctx, "node-d0")
    assert out["cause"] == "kubelet_not_ready"  # Ready=False, no Lease to judge; share 15% < 30%
    out, _ = inspect(kube, ctx, "node-d0", many_not_ready_count=3)
    assert out["cause"] == "many_nodes_not_ready"


def test_5000_nodes_cost_a_handful_of_requests(cluster, ctx):
    objects = [node(f"n-{i:04d}") for i in range(5000)]
    sim, kube = cluster([*objects, lease("n-0042", 3)])
    before = sim.request_count
    out, _ = inspect(kube, ctx, "n-0042")
    assert out["cause"] == "healthy" and out["nodes_total"] == 5000
    assert sim.request_count - before <= 5  # 3 node pages + Lease + events


def test_step_deadline_turns_slow_api_into_step_timeout(cluster, ctx):
    sim, kube = cluster(healthy_fleet(2))
    sim.faults.add(path="/api/v1/nodes", latency=2.0)
    with pytest.raises(StepTimeout):
        NodeActions(kube).inspect(ctx(timeout=0.5), NodeInspectArgs(node="node-1"))


def test_unknown_node(cluster, ctx):
    _, kube = cluster(healthy_fleet(2))
    with pytest.raises(NotFoundError, match='node "node-x" not found'):
        inspect(kube, ctx, "node-x")


def test_cluster_view_ignores_control_plane_and_cordoned():
    nodes = [node("a"), node("b", unschedulable=True), node("c", "False"), node("cp", control_plane=True),
             node("d", taints=[{"key": "dedicated", "effect": "NoSchedule"}])]
    view = cluster_view(nodes, "a")
    assert view["nodes_total"] == 4 and view["schedulable_nodes"] == 1
    assert view["schedulable_share_after_cordon"] == 0.0 and view["not_ready_nodes"] == ["c"]


# -- k8s.node.pods ---------------------------------------------------------------------------------------


def node_b_workloads(node_ready: str = "Unknown") -> list[dict]:
    rs_web, rs_api, sts_uid, ds_uid = uid(), uid(), uid(), uid()
    return [
        node("node-a"), node("node-b", node_ready, taints=UNREACHABLE if node_ready != "True" else None),
        replicaset("web-7d9f", "shop", "web", 3, 2, rs_web),
        replicaset("api-5c6b", "shop", "api", 1, 0, rs_api),
        statefulset("postgres", "db", 1, 0, sts_uid),
        pod("web-7d9f-aaaaa", "shop", "node-b", [owner("ReplicaSet", "web-7d9f", rs_web)],
            {"app": "web", "pod-template-hash": "7d9f"}, ready=False),
        pod("web-7d9f-bbbbb", "shop", "node-a", [owner("ReplicaSet", "web-7d9f", rs_web)], {"app": "web"}),
        pod("api-5c6b-ccccc", "shop", "node-b", [owner("ReplicaSet", "api-5c6b", rs_api)], {"app": "api"},
            ready=False),
        pod("postgres-0", "db", "node-b", [owner("StatefulSet", "postgres", sts_uid)], {"app": "postgres"},
            ready=False),
        pod("debug-shell", "shop", "node-b", None, {"app": "debug"}),
        pod("fluentbit-x1", "kube-system", "node-b", [owner("DaemonSet", "fluentbit", ds_uid)]),
        pod("kube-proxy-node-b", "kube-system", "node-b", [owner("Node", "node-b", uid(), "v1")],
            annotations={"kubernetes.io/config.mirror": "abc"}),
        pdb("web", "shop", "web", 0),
    ]


def test_node_pods_on_unreachable_node(cluster, ctx):
    _, kube = cluster(node_b_workloads())
    c = ctx()
    out = NodePodsActions(kube).pods(c, NodePodsArgs(node="node-b"))
    assert out["pods_total"] == 6
    assert out["by_owner_kind"] == {"Deployment": 2, "StatefulSet": 1, "None": 1, "DaemonSet": 1, "Mirror": 1}
    assert out["stuck_pods"] == ["db/postgres-0", "shop/debug-shell"]
    assert out["daemonset_pods"] == ["kube-system/fluentbit-x1"]
    assert out["mirror_pods"] == ["kube-system/kube-proxy-node-b"]
    at_risk = {(w["kind"], w["name"]) for w in out["workloads_without_ready_replicas"]}
    assert at_risk == {("Deployment", "api"), ("StatefulSet", "postgres")}
    assert out["blocking_pdbs"] == ["shop/web"]
    ids = [f.id for f in c.findings]
    assert ids.count("node_pods.no_ready_replica") == 2 and "node_pods.stuck" in ids
    assert "node_pods.pdb_blocks" in ids and "node_pods.ok" not in ids


def test_node_pods_all_fine(cluster, ctx):
    rs = uid()
    objects = [node("node-a"), node("node-c"), replicaset("web-1", "shop", "web", 2, 2, rs),
               pod("web-1-a", "shop", "node-c", [owner("ReplicaSet", "web-1", rs)], {"app": "web"}),
               pod("web-1-b", "shop", "node-a", [owner("ReplicaSet", "web-1", rs)], {"app": "web"}),
               pdb("web", "shop", "web", 1)]
    _, kube = cluster(objects)
    c = ctx()
    out = NodePodsActions(kube).pods(c, NodePodsArgs(node="node-c"))
    assert out["workloads_without_ready_replicas"] == [] and out["blocking_pdbs"] == []
    assert [f.id for f in c.findings] == ["node_pods.ok"]


# -- cordon / uncordon --------------------------------------------------------------------------------------


def test_cordon_dry_run_then_real(cluster, ctx):
    sim, kube = cluster([node("node-b")])
    remediations = RemediationActions(kube)
    dry = ctx(dry_run=True)
    out = remediations.cordon(dry, NodeArgs(node="node-b"))
    assert out["changed"] and out["after"] is True
    change = dry.changes[0]
    assert change.dry_run and change.diff == ("spec.unschedulable: false -> true",)
    assert change.request["query"] == {"dryRun": "All"}
    assert change.request["body"] == {"metadata": {"annotations": {"runbook.dev/run-id": "t"}},  # who changed it
                                      "spec": {"unschedulable": True}}
    assert not sim.get("nodes", "node-b")["spec"].get("unschedulable")  # dry-run changed nothing
    real = ctx()
    remediations.cordon(real, NodeArgs(node="node-b"))
    assert sim.get("nodes", "node-b")["spec"]["unschedulable"] is True
    assert sim.get("nodes", "node-b")["metadata"]["annotations"]["runbook.dev/run-id"] == "t"
    assert [c.outcome for c in real.changes] == ["applied"]
    again = ctx()
    assert remediations.cordon(again, NodeArgs(node="node-b"))["changed"] is False
    assert again.changes == [] and again.findings[0].id == "node.unchanged"
    undo = ctx()
    remediations.uncordon(undo, NodeArgs(node="node-b"))
    assert undo.changes[0].diff == ("spec.unschedulable: true -> false",)
    assert not sim.get("nodes", "node-b")["spec"].get("unschedulable")


def test_cordon_forbidden(cluster, ctx):
    objects = [node("node-b"),
               {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "ro"},
                "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]},
               {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "ro"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ro"},
                "subjects": [{"kind": "User", "name": "alice"}]}]
    _, kube = cluster(objects, rbac=True)
    with pytest.raises(ForbiddenError) as caught:
        RemediationActions(kube).cordon(ctx(dry_run=True, identity=Identity("alice")), NodeArgs(node="node-b"))
    assert caught.value.permission == "nodes/patch"


def test_cordon_retries_429(cluster, ctx):
    sim, kube = cluster([node("node-b")])
    sim.faults.add(path="/api/v1/nodes/node-b", method="PATCH", status=429, retry_after=1, times=1)
    c = ctx()
    RemediationActions(kube).cordon(c, NodeArgs(node="node-b"))
    assert sim.get("nodes", "node-b")["spec"]["unschedulable"] is True


# -- drain --------------------------------------------------------------------------------------------------


def drain_cluster(pdb_allowed: int) -> list[dict]:
    """Two ready web pods; the budget needs 2 (blocking) or 1 (one may go)."""
    rs, ds = uid(), uid()
    return [
        *healthy_fleet(4),
        replicaset("web-1", "shop", "web", 2, 2, rs),
        pod("web-1-a", "shop", "node-1", [owner("ReplicaSet", "web-1", rs)], {"app": "web"}),
        pod("web-1-b", "shop", "node-2", [owner("ReplicaSet", "web-1", rs)], {"app": "web"}),
        pod("cache-0", "shop", "node-1", [owner("ReplicaSet", "cache-1", uid())], {"app": "cache"}),
        pod("fluentbit-n1", "kube-system", "node-1", [owner("DaemonSet", "fluentbit", ds)]),
        pdb("web", "shop", "web", pdb_allowed, min_available=2 - pdb_allowed),
    ]


def test_drain_dry_run_reports_evictions_and_blocks(cluster, ctx):
    sim, kube = cluster(drain_cluster(0))
    c = ctx(dry_run=True)
    out = DrainActions(kube, sleep=lambda s: None).drain(c, DrainArgs(node="node-1"))
    assert out["evicted"] == ["shop/cache-0"]
    assert out["blocked"][0]["pod"] == "shop/web-1-a" and out["blocked"][0]["budget"] == "web"
    assert out["skipped"] == [{"pod": "kube-system/fluentbit-n1", "reason": "DaemonSet pod (ignored)"}]
    assert [ch.verb for ch in c.changes] == ["patch", "evict"] and all(ch.dry_run for ch in c.changes)
    assert sim.get("pods", "web-1-a", "shop") is not None and sim.get("pods", "cache-0", "shop") is not None
    assert not sim.get("nodes", "node-1")["spec"].get("unschedulable")


def test_drain_real_evicts_and_waits(cluster, ctx):
    sim, kube = cluster(drain_cluster(1))
    c = ctx()
    out = DrainActions(kube, sleep=lambda s: None).drain(c, DrainArgs(node="node-1", timeout_seconds=10))
    assert sorted(out["evicted"]) == ["shop/cache-0", "shop/web-1-a"] and out["blocked"] == []
    assert sim.get("nodes", "node-1")["spec"]["unschedulable"] is True
    assert out["waited"] and out["remaining"] == []
    assert sim.get("pods", "web-1-a", "shop") is None and sim.get("pods", "web-1-b", "shop") is not None


def test_drain_blocked_at_timeout_is_transient(cluster, ctx):
    _, kube = cluster(drain_cluster(0))
    with pytest.raises(TransientError, match="budget web"):
        DrainActions(kube, sleep=lambda s: None).drain(ctx(), DrainArgs(node="node-1", timeout_seconds=1))


def test_drain_refuses_unowned_and_low_capacity(cluster, ctx):
    objects = [*healthy_fleet(4), pod("debug", "shop", "node-1")]
    _, kube = cluster(objects)
    with pytest.raises(PermanentError, match="shop/debug has no controller"):
        DrainActions(kube).drain(ctx(dry_run=True), DrainArgs(node="node-1"))
    with pytest.raises(PermanentError, match="refusing to drain node-1"):
        DrainActions(kube).drain(ctx(dry_run=True), DrainArgs(node="node-1", force=True, min_schedulable_share=0.8))
