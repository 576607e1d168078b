"""k8s.rollout.history / undo / restart, k8s.scale and k8s.wait over HTTP against the simulator."""

from __future__ import annotations

import pytest
from k8s_objects import ts
from rollout_objects import deployment, revision_set, rolled_out

from engine.actions import ActionRegistry, Identity
from engine.builtins import register_builtins
from engine.errors import ForbiddenError, NotFoundError, PermanentError
from engine.executor import Executor
from engine.loader import Loader
from engine.sqlstore.sqlite import SqliteStore
from integrations.kubernetes import register


def run(registry, action_name: str, ctx, **args):
    action = registry.get(action_name)
    return action.func(ctx, action.args.model_validate(args))


def test_history_lists_revisions_and_when_the_current_one_rolled_out(cluster, registry_for, ctx):
    _, kube = cluster(rolled_out(age_new=300))
    out = run(registry_for(kube), "k8s.rollout.history", ctx(), name="web", namespace="shop")
    assert [r["revision"] for r in out["revisions"]] == [1, 2]
    assert out["revisions"][1]["images"] == ["registry.example/web:2.0"]
    assert out["revisions"][0]["change_cause"] == "release 1.0"
    assert (out["current_revision"], out["previous_revision"]) == (2, 1)
    assert 290 <= out["rolled_out_seconds_ago"] <= 330


def test_history_after_an_undo_does_not_use_the_reused_replicasets_age(cluster, registry_for, ctx):
    """An undo re-labels an old ReplicaSet with a new revision: its creation time is a year old, the
    rollout is minutes old (the Progressing condition names it)."""
    dep = deployment(revision=3, image="registry.example/web:1.0",
                     progressing={"reason": "NewReplicaSetAvailable", "lastUpdateTime": ts(120),
                                  "lastTransitionTime": ts(86400 * 30),
                                  "message": 'ReplicaSet "web-5d8f9c7b6" has successfully progressed.'})
    objects = [dep, revision_set(dep, 3, "registry.example/web:1.0", "5d8f9c7b6", 86400 * 365, 3, history="1"),
               revision_set(dep, 2, "registry.example/web:2.0", "7c9d6b5f4", 3600)]
    _, kube = cluster(objects)
    out = run(registry_for(kube), "k8s.rollout.history", ctx(), name="web", namespace="shop")
    assert (out["current_revision"], out["previous_revision"]) == (3, 2)
    assert 110 <= out["rolled_out_seconds_ago"] <= 150


def test_history_of_a_missing_deployment_is_not_found(cluster, registry_for, ctx):
    _, kube = cluster([])
    with pytest.raises(NotFoundError):
        run(registry_for(kube), "k8s.rollout.history", ctx(), name="web", namespace="shop")


def test_undo_dry_run_shows_images_then_rolls_back(cluster, registry_for, ctx):
    sim, kube = cluster(rolled_out())
    registry = registry_for(kube)
    dry = ctx(dry_run=True)
    out = run(registry, "k8s.rollout.undo", dry, name="web", namespace="shop")
    assert out["outcome"] == "not_applied" and out["to_revision"] == 1
    assert out["diff"][0] == "revision 2 -> 1: images registry.example/web:2.0 -> registry.example/web:1.0"
    image_line = "spec.template.spec.containers[web].image: registry.example/web:2.0 -> registry.example/web:1.0"
    assert image_line in out["diff"]
    assert dry.changes[0].request["query"] == {"dryRun": "All"}
    assert sim.get("deployments", "web", "shop")["spec"]["template"]["spec"]["containers"][0]["image"].endswith("2.0")
    real = ctx()
    out = run(registry, "k8s.rollout.undo", real, name="web", namespace="shop")
    assert out["outcome"] == "applied"
    stored = sim.get("deployments", "web", "shop")
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/web:1.0"
    assert "pod-template-hash" not in stored["spec"]["template"]["metadata"]["labels"]
    assert stored["metadata"]["annotations"]["kubernetes.io/change-cause"] == "release 1.0"
    assert real.changes[-1].result["outcome"] == "applied"


def test_undo_to_a_revision_that_does_not_exist(cluster, registry_for, ctx):
    _, kube = cluster(rolled_out())
    with pytest.raises(PermanentError, match="no revision 7"):
        run(registry_for(kube), "k8s.rollout.undo", ctx(dry_run=True), name="web", namespace="shop", to_revision=7)


def test_undo_is_forbidden_without_patch(cluster, registry_for, ctx):
    reader = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "ro"},
               "rules": [{"apiGroups": ["apps"], "resources": ["deployments", "replicasets"],
                          "verbs": ["get", "list"]}]},
              {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "ro"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ro"},
               "subjects": [{"kind": "User", "name": "alice"}]}]
    _, kube = cluster([*rolled_out(), *reader], rbac=True)
    with pytest.raises(ForbiddenError) as caught:
        run(registry_for(kube), "k8s.rollout.undo", ctx(dry_run=True, identity=Identity("alice")), name="web",
            namespace="shop")
    assert "patch" in str(caught.value.permission)


def test_restart_stamps_the_template_with_server_time(cluster, registry_for, ctx):
    sim, kube = cluster(rolled_out())
    out = run(registry_for(kube), "k8s.rollout.restart", ctx(), name="web", namespace="shop")
    assert out["outcome"] == "applied"
    assert any(line.startswith("spec.template.metadata.annotations.kubectl.kubernetes.io/restartedAt: unset -> ")
               for line in out["diff"])
    stamp = sim.get("deployments", "web", "shop")["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in stamp


def test_scale_dry_run_then_apply_and_noop(cluster, registry_for, ctx):
    sim, kube = cluster(rolled_out())
    registry = registry_for(kube)
    dry = ctx(dry_run=True)
    out = run(registry, "k8s.scale", dry, kind="Deployment", name="web", namespace="shop", replicas=5)
    assert out["diff"] == ["spec.replicas: 3 -> 5"] and out["outcome"] == "not_applied"
    # the object itself, not /scale: the API server ignores metadata there and the run-id annotation rides along
    assert dry.changes[0].request["path"] == "/apis/apps/v1/namespaces/shop/deployments/web"
    assert sim.get("deployments", "web", "shop")["spec"]["replicas"] == 3
    out = run(registry, "k8s.scale", ctx(), kind="Deployment", name="web", namespace="shop", replicas=5)
    assert out["outcome"] == "applied" and sim.get("deployments", "web", "shop")["spec"]["replicas"] == 5
    again = ctx()
    out = run(registry, "k8s.scale", again, kind="Deployment", name="web", namespace="shop", replicas=5)
    assert out["changed"] is False and not again.changes and again.findings[0].id == "change.unchanged"


def test_change_to_a_helm_managed_object_warns(cluster, registry_for, ctx):
    dep = deployment(labels={"app": "web", "app.kubernetes.io/managed-by": "Helm"})
    _, kube = cluster([dep])
    out = run(registry_for(kube), "k8s.scale", ctx(dry_run=True), kind="Deployment", name="web", namespace="shop",
              replicas=1)
    assert any("managed by Helm" in w for w in out["warnings"])
    assert any(line.startswith("WARNING: Deployment shop/web is managed by Helm") for line in out["diff"])


def test_wait_for_a_condition_and_for_absence(cluster, registry_for, ctx):
    dep = deployment(available=3)
    _, kube = cluster([dep])
    registry = registry_for(kube)
    out = run(registry, "k8s.wait", ctx(), kind="Deployment", name="web", namespace="shop", condition="Available")
    assert out["met"] is True and out["object"]["metadata"]["name"] == "web"
    out = run(registry, "k8s.wait", ctx(), kind="Deployment", name="web", namespace="shop",
              condition="rollout_complete")
    assert out["met"] is True
    out = run(registry, "k8s.wait", ctx(), kind="Deployment", name="gone", namespace="shop", condition="absent")
    assert out["met"] is True and out["object"] is None


def test_wait_gives_up_at_its_timeout_with_a_finding(cluster, registry_for, ctx):
    _, kube = cluster(rolled_out())  # 0 of 3 available
    c = ctx()
    out = run(registry_for(kube), "k8s.wait", c, kind="Deployment", name="web", namespace="shop",
              condition="rollout_complete", timeout="2s")
    assert out["met"] is False and 1.0 <= out["waited_seconds"] <= 4
    assert c.findings[0].id == "wait.not_met"


def _fail_the_real_patch(sim, drop_after_apply: bool) -> None:
    """The dry-run PATCH passes (a no-op rule takes it); the real one loses its answer, after or before the
    server applied it."""
    where = "/apis/apps/v1/namespaces/shop/deployments/web"
    sim.faults.add(path=where, method="PATCH", times=1)
    sim.faults.add(path=where, method="PATCH", drop=True, after=drop_after_apply, times=1)


def test_a_lost_answer_after_the_change_is_read_back_as_applied(cluster, registry_for, ctx):
    sim, kube = cluster(rolled_out())
    _fail_the_real_patch(sim, drop_after_apply=True)
    c = ctx()
    out = run(registry_for(kube), "k8s.scale", c, kind="Deployment", name="web", namespace="shop", replicas=4)
    assert out["outcome"] == "applied" and sim.get("deployments", "web", "shop")["spec"]["replicas"] == 4
    assert c.changes[-1].result["outcome"] == "applied" and "error" in c.changes[-1].result
    assert sim.requests[("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web")] == 2  # dry-run + once


def test_a_lost_request_is_reported_not_applied_and_never_resent(cluster, registry_for, ctx):
    sim, kube = cluster(rolled_out())
    _fail_the_real_patch(sim, drop_after_apply=False)
    c = ctx()
    with pytest.raises(PermanentError, match="outcome not_applied"):
        run(registry_for(kube), "k8s.scale", c, kind="Deployment", name="web", namespace="shop", replicas=4)
    assert sim.get("deployments", "web", "shop")["spec"]["replicas"] == 3
    assert c.changes[-1].result["outcome"] == "not_applied"


def test_scaling_a_target_an_hpa_manages_warns_it_will_be_reverted(cluster, registry_for, ctx):
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 2, "maxReplicas": 6,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                                  "target": {"type": "Utilization",
                                                                             "averageUtilization": 70}}}]}}
    _, kube = cluster([*rolled_out(), hpa])
    out = run(registry_for(kube), "k8s.scale", ctx(dry_run=True), kind="Deployment", name="web", namespace="shop",
              replicas=8)
    assert out["warnings"] == ["HorizontalPodAutoscaler web manages the replicas of Deployment shop/web (min 2, "
                               "max 6): it will scale it back unless the HPA is changed"]
    assert out["diff"][-1].startswith("WARNING: HorizontalPodAutoscaler web")


def test_an_actions_warnings_reach_the_proposal(cluster, registry_for):
    """A proposal shows what the action found (here: Helm will revert it) beside the runbook's own warnings."""
    _, kube = cluster([deployment(labels={"app": "web", "app.kubernetes.io/managed-by": "Helm"})])
    registry = register_builtins(ActionRegistry())
    register(registry, kube)
    runbook = Loader(registry).load_text("""apiVersion: runbook/v1
kind: Runbook
metadata: {name: t, title: T}
steps:
  - id: scale
    title: Scale
    action: k8s.scale
    with: {kind: Deployment, name: web, namespace: shop, replicas: 1}
    proposal: {summary: scale down, warnings: [Check traffic first.]}
""")
    run = Executor(registry, SqliteStore(":memory:")).run(runbook, {}, requester="alice")
    (proposal,) = run.proposals
    assert proposal.warnings[0] == "Check traffic first."
    assert proposal.warnings[1].startswith("Deployment shop/web is managed by Helm")
