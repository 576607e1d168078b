"""k8s.get, k8s.list, k8s.pod.logs, k8s.patch, k8s.resources.set and k8s.delete over HTTP against the
simulator, and what the loader refuses or computes for them before a run."""

from __future__ import annotations

import pytest
from k8s_objects import node, owner, pod, secret, uid
from rollout_objects import rolled_out

from engine.actions import ActionRegistry, Identity, step_needs
from engine.builtins import register_builtins
from engine.errors import ConflictError, DefinitionError, ForbiddenError, InvalidError, NotFoundError, PermanentError
from engine.loader import Loader
from integrations.kubernetes import register

READER = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": "pods", "namespace": "shop"},
           "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
          {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": "pods", "namespace": "shop"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods"},
           "subjects": [{"kind": "User", "name": "alice"}]}]


def run(registry, action_name: str, ctx, **args):
    action = registry.get(action_name)
    return action.func(ctx, action.args.model_validate(args))


def test_get_any_kind_and_absent_is_an_answer(cluster, registry_for, ctx):
    _, kube = cluster(rolled_out())
    registry = registry_for(kube)
    out = run(registry, "k8s.get", ctx(), kind="deployments.apps", name="web", namespace="shop")
    assert out["found"] is True and out["object"]["spec"]["replicas"] == 3
    assert "managedFields" not in out["object"]["metadata"]
    quiet = ctx()
    assert run(registry, "k8s.get", quiet, kind="Deployment", name="nope", namespace="shop") == {
        "found": False, "object": None}
    assert not quiet.findings
    loud = ctx()
    run(registry, "k8s.get", loud, kind="Deployment", name="nope", namespace="shop", finding_when_absent="warning")
    assert loud.findings[0].id == "deployments.absent" and loud.findings[0].severity == "warning"


def test_get_secret_is_metadata_only(cluster, registry_for, ctx):
    _, kube = cluster([secret("db", "shop", {"password": "aHVudGVyMg=="})])
    out = run(registry_for(kube), "k8s.get", ctx(), kind="Secret", name="db", namespace="shop")
    assert out["found"] and out["object"]["metadata"]["name"] == "db"
    assert "data" not in out["object"] and "aHVudGVyMg==" not in str(out)


def test_get_forbidden_names_the_permission(cluster, registry_for, ctx):
    _, kube = cluster([*rolled_out(), *READER], rbac=True)
    with pytest.raises(ForbiddenError) as caught:
        run(registry_for(kube), "k8s.get", ctx(identity=Identity("alice")), kind="Deployment", name="web",
            namespace="shop")
    assert "deployments" in str(caught.value.permission)


def test_get_unknown_custom_resource_is_a_clear_error(cluster, registry_for, ctx):
    _, kube = cluster([])
    with pytest.raises(PermanentError, match="CustomResourceDefinition installed"):
        run(registry_for(kube), "k8s.get", ctx(), kind="widgets.example.com", name="w", namespace="shop")


def test_list_with_selector_limit_and_truncation(cluster, registry_for, ctx):
    pods = [pod(f"web-{i}", "shop", labels={"app": "web"}) for i in range(4)] + [pod("db-0", "shop")]
    _, kube = cluster([*pods, pod("web-x", "other", labels={"app": "web"})])
    registry = registry_for(kube)
    out = run(registry, "k8s.list", ctx(), kind="Pod", namespace="shop", label_selector="app=web", limit=3)
    assert out["count"] == 3 and out["truncated"] is True
    out = run(registry, "k8s.list", ctx(), kind="pods", namespace="*", label_selector="app=web")
    assert out["count"] == 5 and out["truncated"] is False


def test_list_secrets_needs_one_namespace_and_hides_values(cluster, registry_for, ctx):
    _, kube = cluster([secret("db", "shop", {"password": "aHVudGVyMg=="})])
    registry = registry_for(kube)
    out = run(registry, "k8s.list", ctx(), kind="Secret", namespace="shop")
    assert out["count"] == 1 and "aHVudGVyMg==" not in str(out)
    with pytest.raises(PermanentError, match="one namespace"):
        run(registry, "k8s.list", ctx(), kind="Secret")


def test_pod_logs_are_redacted_and_previous_may_be_empty(cluster, registry_for, ctx):
    p = pod("web-1", "shop", annotations={"kubesim.runbook.dev/log": "boot\npassword=hunter22\nready\n"})
    _, kube = cluster([p])
    registry = registry_for(kube)
    out = run(registry, "k8s.pod.logs", ctx(), namespace="shop", pod="web-1")
    assert out["lines"][0] == "boot" and "hunter22" not in out["text"] and len(out["lines"]) == 3
    assert run(registry, "k8s.pod.logs", ctx(), namespace="shop", pod="web-1", previous=True)["text"] == ""
    with pytest.raises(NotFoundError):
        run(registry, "k8s.pod.logs", ctx(), namespace="shop", pod="nope")


def test_patch_merge_and_json_with_dry_run_diff(cluster, registry_for, ctx):
    sim, kube = cluster(rolled_out())
    registry = registry_for(kube)
    dry = ctx(dry_run=True)
    out = run(registry, "k8s.patch", dry, kind="Deployment", name="web", namespace="shop",
              patch={"spec": {"minReadySeconds": 10}})
    assert out["diff"] == ["spec.minReadySeconds: unset -> 10"] and out["outcome"] == "not_applied"
    assert "minReadySeconds" not in sim.get("deployments", "web", "shop")["spec"]
    out = run(registry, "k8s.patch", ctx(), kind="Deployment", name="web", namespace="shop", patch_type="json",
              patch=[{"op": "replace", "path": "/spec/replicas", "value": 2}])
    assert out["outcome"] == "applied" and out["object"]["spec"]["replicas"] == 2


def test_patch_conflict_and_invalid_are_reported(cluster, registry_for, ctx):
    _, kube = cluster(rolled_out())
    registry = registry_for(kube)
    with pytest.raises((InvalidError, PermanentError)):
        run(registry, "k8s.patch", ctx(), kind="Deployment", name="web", namespace="shop", patch_type="json",
            patch=[{"op": "test", "path": "/spec/replicas", "value": 99}])
    with pytest.raises(NotFoundError):
        run(registry, "k8s.patch", ctx(), kind="Deployment", name="nope", namespace="shop", patch={"spec": {}})


def test_resources_set_raises_a_memory_limit(cluster, registry_for, ctx):
    sim, kube = cluster(rolled_out())
    registry = registry_for(kube)
    out = run(registry, "k8s.resources.set", ctx(dry_run=True), kind="Deployment", name="web", namespace="shop",
              container="web", limits={"memory": "512Mi"})
    assert out["diff"] == ["spec.template.spec.containers[web].resources.limits.memory: 256Mi -> 512Mi"]
    run(registry, "k8s.resources.set", ctx(), kind="Deployment", name="web", namespace="shop", container="web",
        limits={"memory": "512Mi"}, requests={"cpu": "250m"})
    resources = sim.get("deployments", "web", "shop")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m"}}
    with pytest.raises(PermanentError, match="no container 'app'"):
        run(registry, "k8s.resources.set", ctx(), kind="Deployment", name="web", namespace="shop", container="app",
            limits={"memory": "1Gi"})


def test_delete_refuses_whole_cluster_objects_and_checks_pods(cluster, registry_for, ctx):
    sts_uid = uid()
    p = pod("db-0", "shop", node_name="node-b", owners=[owner("StatefulSet", "db", sts_uid)])
    sim, kube = cluster([p, node("node-b", ready="Unknown"), *rolled_out()])
    registry = registry_for(kube)
    with pytest.raises(PermanentError, match="deleting a Namespace is refused"):
        run(registry, "k8s.delete", ctx(), kind="Namespace", name="shop")
    dry = ctx(dry_run=True)
    out = run(registry, "k8s.delete", dry, kind="Pod", name="db-0", namespace="shop", grace_period_seconds=0)
    assert out["diff"][0] == "delete Pod shop/db-0 (propagation default, grace 0s)"
    assert any("two pods could write the same volume" in w for w in out["warnings"])
    assert dry.findings[0].id == "pod_delete.split_brain_risk" and sim.get("pods", "db-0", "shop")
    out = run(registry, "k8s.delete", ctx(), kind="Deployment", name="web", namespace="shop",
              propagation_policy="Foreground")
    assert out["outcome"] == "applied"


def loader() -> Loader:
    registry = register_builtins(ActionRegistry())
    register(registry, None)
    return Loader(registry)


STEP = """apiVersion: runbook/v1
kind: Runbook
metadata: {{name: t, title: T}}
params:
  kind: {{type: string, default: Deployment}}
steps:
  - id: change
    title: Change
    action: {action}
    with:
{args}
"""


def load(action: str, args: str):
    return loader().load_text(STEP.format(action=action, args=args), "rb.yaml")


@pytest.mark.parametrize(("action", "args", "message", "path"), [
    ("k8s.delete", "      kind: Namespace\n      name: shop", "deleting a Namespace is refused", "with.kind"),
    ("k8s.delete", "      kind: Node\n      name: n1", "deleting a Node is refused", "with.kind"),
    ("k8s.patch", "      kind: widgets.example.com\n      name: w\n      namespace: shop\n"
                  "      patch_type: strategic\n      patch: {spec: {size: 2}}", "415", "with.patch_type"),
    ("k8s.get", "      kind: Foo\n      name: x", "unknown kind 'Foo'", "with.kind"),
    ("k8s.get", '      kind: "{{ params.kind }}"\n      name: x\n      namespace: shop', "permissions:", "with.kind"),
    ("k8s.scale", "      kind: Deployment\n      name: web\n      namespace: shop", "field required",
     "with.replicas"),
    ("k8s.scale", "      kind: Deployment\n      name: web\n      namespace: shop\n      replicas: many",
     "valid integer", "with.replicas"),
    ("k8s.list", "      kind: Secret", "one namespace", "with.namespace"),
])
def test_load_errors_name_file_line_and_argument(action, args, message, path):
    with pytest.raises(DefinitionError) as caught:
        load(action, args)
    problem = next(p for p in caught.value.problems if message in p.message)
    assert problem.file == "rb.yaml" and problem.line >= 10 and problem.path == f"steps[0].{path}"


def test_permissions_follow_the_literal_kind_and_namespace():
    registry_loader = loader()
    runbook = registry_loader.load_text(STEP.format(action="k8s.scale", args=(
        "      kind: StatefulSet\n      name: db\n      namespace: shop\n      replicas: 2")))
    step = runbook.steps[0]
    needed = {str(p): p.namespaced for p in step_needs(registry_loader.registry.get("k8s.scale"), step.with_)}
    assert needed == {"statefulsets.apps:get": True, "statefulsets.apps:patch": True,
                      "horizontalpodautoscalers.autoscaling:list": True}
    runbook = registry_loader.load_text(STEP.format(action="k8s.list", args="      kind: HorizontalPodAutoscaler"))
    (perm,) = step_needs(registry_loader.registry.get("k8s.list"), runbook.steps[0].with_)
    assert (str(perm), perm.namespaced) == ("horizontalpodautoscalers.autoscaling:list", False)
    templated = registry_loader.load_text(STEP.format(action="k8s.get", args=(
        '      kind: "{{ params.kind }}"\n      name: x\n      namespace: shop\n'
        "    permissions: [deployments.apps:get]")))
    assert templated.steps[0].permissions == ("deployments.apps:get",)


CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "widgets.example.com"},
       "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [{"name": "v1", "served": True, "storage": True,
                              "schema": {"openAPIV3Schema": {"type": "object",
                                                             "x-kubernetes-preserve-unknown-fields": True}}}]}}
WIDGET = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "shop"},
          "spec": {"size": 1}}


def test_custom_resources_resolve_through_discovery(cluster, registry_for, ctx):
    _, kube = cluster([CRD, WIDGET])
    registry = registry_for(kube)
    out = run(registry, "k8s.get", ctx(), kind="widgets.example.com", name="w1", namespace="shop")
    assert out["found"] and out["object"]["spec"]["size"] == 1
    assert run(registry, "k8s.list", ctx(), kind="widgets.example.com", namespace="shop")["count"] == 1
    dry = ctx(dry_run=True)
    out = run(registry, "k8s.patch", dry, kind="widgets.example.com", name="w1", namespace="shop",
              patch={"spec": {"size": 3}})
    assert out["diff"] == ["spec.size: 1 -> 3"]
    assert dry.changes[0].request["path"] == "/apis/example.com/v1/namespaces/shop/widgets/w1"
    with pytest.raises(PermanentError, match="415"):
        run(registry, "k8s.patch", ctx(), kind="widgets.example.com", name="w1", namespace="shop",
            patch_type="strategic", patch={"spec": {"size": 3}})


def test_a_patch_against_a_stale_resource_version_is_a_conflict(cluster, registry_for, ctx):
    _, kube = cluster(rolled_out())
    c = ctx()
    with pytest.raises(ConflictError):
        run(registry_for(kube), "k8s.patch", c, kind="Deployment", name="web", namespace="shop",
            patch={"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 1}})
    assert not c.changes  # the dry-run already answered 409: nothing was sent for real
