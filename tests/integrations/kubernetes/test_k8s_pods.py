"""k8s.pod.inspect, k8s.pod.delete, k8s.secret.exists, k8s.events against the simulator."""

from __future__ import annotations

import pytest
from k8s_objects import event, node, owner, pod, secret, terminated, uid, waiting

from engine.errors import NotFoundError, PermanentError
from integrations.kubernetes.events import EventActions, EventsArgs
from integrations.kubernetes.pods import ObjectExistsArgs, PodActions, PodInspectArgs
from integrations.kubernetes.remediations import PodDeleteArgs, RemediationActions

LIMITS = [{"name": "app", "image": "registry.example/app:1.0", "resources": {"limits": {"memory": "512Mi"}}}]


def crashloop(last_reason: str = "OOMKilled", code: int = 137) -> dict:
    return {"name": "app", "image": "registry.example/app:1.0", "ready": False, "restartCount": 7,
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                  "message": "back-off 5m0s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": code, "reason": last_reason,
                                         "finishedAt": "2026-01-01T00:00:00Z"}}}


def test_inspect_oom_crashloop_with_logs(cluster, ctx):
    p = pod("web-1", "shop", statuses=[crashloop()], ready=False, containers=LIMITS,
            annotations={"kubesim.runbook.dev/previous-log": "GET /x\nAuthorization: Bearer abcdefghijklmnop\nkilled\n",
                         "kubesim.runbook.dev/log": "starting\n"})
    _, kube = cluster([p])
    c = ctx()
    out = PodActions(kube).inspect(c, PodInspectArgs(namespace="shop", name="web-1"))
    assert out["cause"] == "oom_killed" and out["memory_limit"] == "512Mi" and out["exit_code"] == 137
    assert out["restarts"] == 7 and "abcdefghijklmnop" not in out["logs"]["previous"]
    assert out["logs"]["current"].strip() == "starting"
    f = c.findings[0]
    assert f.id == "pod.oom_killed" and "512Mi" in f.summary
    assert any(e.field == "spec.containers[app].resources.limits.memory" for e in f.evidence)


def test_inspect_selector_groups_problems(cluster, ctx):
    pods = [pod(f"api-{i}", "shop", labels={"app": "api"}, ready=False,
                statuses=[waiting("ImagePullBackOff", 'Back-off pulling image "registry.example/api:9.9"', "app")])
            for i in range(3)]
    pods.append(pod("api-ok", "shop", labels={"app": "api"}))
    pods.append(pod("api-cfg", "shop", labels={"app": "api"}, ready=False, statuses=[
        waiting("CreateContainerConfigError", 'configmap "api-config" not found', "app")]))
    _, kube = cluster([*pods])
    c = ctx()
    out = PodActions(kube).inspect(c, PodInspectArgs(namespace="shop", selector="app=api"))
    assert out["cause"] == "missing_configmap" and out["pods_total"] == 5
    assert out["missing_object"]["name"] == "api-config" and out["missing_object"]["exists"] is False
    ids = [f.id for f in c.findings]
    assert ids == ["pod.missing_configmap", "pod.image_pull"]
    pull = c.findings[1].summary
    assert "3 pods in shop (api-0, api-1, api-2)" in pull and "registry.example/api:9.9" in pull


def test_inspect_healthy_and_not_found(cluster, ctx):
    _, kube = cluster([pod("web-1", "shop")])
    c = ctx()
    out = PodActions(kube).inspect(c, PodInspectArgs(namespace="shop", name="web-1"))
    assert out["cause"] == "healthy" and [f.id for f in c.findings] == ["pod.healthy"]
    with pytest.raises(NotFoundError, match='pod "nope" not found in namespace "shop"'):
        PodActions(kube).inspect(ctx(), PodInspectArgs(namespace="shop", name="nope"))
    with pytest.raises(PermanentError):
        PodActions(kube).inspect(ctx(), PodInspectArgs(namespace="shop"))


def test_inspect_exit_codes(cluster, ctx):
    _, kube = cluster([pod("seg", "shop", ready=False, phase="Failed", statuses=[terminated(139, name="app")])])
    out = PodActions(kube).inspect(ctx(), PodInspectArgs(namespace="shop", name="seg"))
    assert out["cause"] == "exit_code" and "SIGSEGV" in out["exit_meaning"]


def test_secret_exists_never_returns_values(cluster, ctx):
    _, kube = cluster([secret("db", "shop", {"password": "aHVudGVyMg=="})])
    actions = PodActions(kube)
    out = actions.secret_exists(ctx(), ObjectExistsArgs(namespace="shop", name="db"))
    assert out["exists"] is True and out["key_present"] is None
    out = actions.secret_exists(ctx(), ObjectExistsArgs(namespace="shop", name="db", key="password"))
    assert out == {"exists": True, "key_present": True, "created": out["created"]}
    assert "aHVudGVyMg" not in repr(out)
    out = actions.secret_exists(ctx(), ObjectExistsArgs(namespace="shop", name="nope", key="password"))
    assert out["exists"] is False and out["key_present"] is None
    assert actions.configmap_exists(ctx(), ObjectExistsArgs(namespace="shop", name="cfg"))["exists"] is False


def test_force_delete_statefulset_pod_on_dead_node_warns(cluster, ctx):
    sts = uid()
    objects = [node("node-b", "Unknown", "NodeStatusUnknown"),
               pod("postgres-0", "db", "node-b", [owner("StatefulSet", "postgres", sts)], ready=False)]
    sim, kube = cluster(objects)
    remediations = RemediationActions(kube)
    args = PodDeleteArgs(namespace="db", name="postgres-0", force=True)
    dry = ctx(dry_run=True)
    out = remediations.delete_pod(dry, args)
    assert out["grace_period_seconds"] == 0 and not out["node_ready"] and len(out["warnings"]) == 2
    assert any("two pods could write the same volume" in line for line in dry.changes[0].diff)
    assert dry.changes[0].request["body"]["gracePeriodSeconds"] == 0
    assert [f.id for f in dry.findings] == ["pod_delete.split_brain_risk"]
    assert sim.get("pods", "postgres-0", "db") is not None
    remediations.delete_pod(ctx(), args)
    assert sim.get("pods", "postgres-0", "db") is None


def test_graceful_delete_no_warning(cluster, ctx):
    rs = uid()
    _, kube = cluster([node("node-a"), pod("web-1", "shop", "node-a", [owner("ReplicaSet", "web-7", rs)])])
    c = ctx(dry_run=True)
    out = RemediationActions(kube).delete_pod(c, PodDeleteArgs(namespace="shop", name="web-1"))
    assert out["warnings"] == [] and out["force"] is False and c.findings == []
    with pytest.raises(PermanentError):
        RemediationActions(kube).delete_pod(ctx(), PodDeleteArgs(namespace="shop", name="web-1", force=True,
                                                              grace_period_seconds=30))


def test_events_dedup_and_redact(cluster, ctx):
    evs = [event("Pod", "web-1", "BackOff", "Back-off restarting failed container", "shop", count=40, ago=20),
           event("Pod", "web-1", "BackOff", "Back-off restarting failed container", "shop", count=2, ago=400),
           event("Pod", "web-1", "Failed", "pull failed: token=s3cr3tvalue123", "shop", ago=100),
           event("Pod", "web-1", "Scheduled", "assigned shop/web-1 to node-a", "shop", type_="Normal", ago=900),
           event("Pod", "web-2", "BackOff", "other pod", "shop")]
    _, kube = cluster(evs)
    c = ctx()
    out = EventActions(kube).events(c, EventsArgs(kind="Pod", name="web-1", namespace="shop"))
    assert [e["reason"] for e in out["events"]] == ["BackOff", "Failed", "Scheduled"]
    assert out["events"][0]["count"] == 42 and out["total"] == 4 and out["warnings"] == 2
    assert "s3cr3tvalue123" not in repr(out)
    assert c.findings[0].id == "events.warnings" and c.findings[0].severity == "info"
    quiet = ctx()
    assert EventActions(kube).events(quiet, EventsArgs(kind="Pod", name="web-9", namespace="shop"))["events"] == []
    assert quiet.findings == []
