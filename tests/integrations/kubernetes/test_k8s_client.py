"""`Kube` and the error translation, against the simulator over real HTTP."""

from __future__ import annotations

import socket
import time

import pytest
from k8s_objects import node, pod

from engine.actions import Identity, Permission
from engine.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    PermanentError,
    StepTimeout,
    TransientError,
)
from integrations.kubernetes.access import AccessChecker
from integrations.kubernetes.client import Kube, Policy
from integrations.kubernetes.errors import forbidden, parse_path, permission_name

SA = "system:serviceaccount:ops:runbook"


def rbac_objects(rules: list[dict], cluster: bool = True) -> list[dict]:
    kind = "ClusterRole" if cluster else "Role"
    meta = {"name": "runbook"} if cluster else {"name": "runbook", "namespace": "shop"}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": f"{kind}Binding", "metadata": dict(meta),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": "runbook"},
         "subjects": [{"kind": "ServiceAccount", "name": "runbook", "namespace": "ops"}]},
    ]


def test_get_list_and_request_count(cluster):
    sim, kube = cluster([node(f"node-{i}") for i in range(7)])
    paged = kube.with_policy(page_size=3)
    items = paged.list("/api/v1/nodes")
    assert sorted(n["metadata"]["name"] for n in items) == sorted(f"node-{i}" for i in range(7))
    assert kube.request_count == 3  # 3 + 3 + 1 items
    assert len(paged.list("/api/v1/nodes", limit=4)) == 4
    assert kube.get("/api/v1/nodes/node-2")["metadata"]["name"] == "node-2"
    assert kube.request_count == sim.request_count


def test_selectors_are_sent(cluster):
    _, kube = cluster([pod("a", node_name="node-a", labels={"app": "x"}), pod("b", node_name="node-b")])
    assert [p["metadata"]["name"] for p in kube.list("/api/v1/pods", field_selector="spec.nodeName=node-b")] == ["b"]
    assert [p["metadata"]["name"] for p in kube.list("/api/v1/pods", label_selector="app=x")] == ["a"]


def test_not_found_names_the_object(cluster):
    _, kube = cluster([])
    with pytest.raises(NotFoundError, match='node "node-x" not found'):
        kube.get("/api/v1/nodes/node-x")
    with pytest.raises(NotFoundError, match='pod "web-1" not found in namespace "shop"'):
        kube.get("/api/v1/namespaces/shop/pods/web-1")
    assert kube.get_or_none("/api/v1/nodes/node-x") is None


def test_forbidden_says_what_to_grant(cluster):
    objects = [node("node-a"), *rbac_objects([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}])]
    _, kube = cluster(objects, token="sa-token", rbac=True, tokens={"sa-token": SA})
    assert kube.get("/api/v1/nodes/node-a")
    with pytest.raises(ForbiddenError) as caught:
        kube.patch("/api/v1/nodes/node-a", {"spec": {"unschedulable": True}})
    assert str(caught.value).startswith("forbidden: service account runbook cannot patch nodes; grant nodes/patch")
    assert caught.value.permission == "nodes/patch"


def test_forbidden_namespaced_subresource(cluster):
    objects = [pod("web-1", "shop"), *rbac_objects([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
                                                   cluster=False)]
    _, kube = cluster(objects, token="sa-token", rbac=True, tokens={"sa-token": SA})
    with pytest.raises(ForbiddenError) as caught:
        kube.evict("shop", "web-1")
    assert caught.value.permission == "pods/eviction/create"
    assert 'in namespace "shop"' in str(caught.value)


def test_forbidden_message_parsing_without_server_text():
    error = forbidden("", "PATCH", parse_path("/apis/batch/v1/namespaces/billing/cronjobs/report"))
    assert error.permission == "cronjobs.batch/patch"
    assert permission_name("pods/eviction", "", "create") == "pods/eviction/create"


def test_conflict_on_create_existing(cluster):
    _, kube = cluster([node("node-a")])
    with pytest.raises(ConflictError):
        kube.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}})


def test_invalid_names_the_field(cluster):
    _, kube = cluster([])
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}
    with pytest.raises(InvalidError, match="metadata.name"):
        kube.create("/api/v1/namespaces/default/configmaps", body)


def test_429_then_success_honours_retry_after(cluster):
    sim, kube = cluster([node("node-a")])
    sleeps: list[float] = []
    fast = Kube(kube.api, policy=kube.policy, sleep=sleeps.append)
    sim.faults.add(path="/api/v1/nodes/node-a", status=429, retry_after=1, times=1)
    assert fast.get("/api/v1/nodes/node-a")["metadata"]["name"] == "node-a"
    assert fast.request_count == 2
    assert sleeps == [1.0]


def test_persistent_503_becomes_transient(cluster):
    sim, kube = cluster([node("node-a")])
    sim.faults.add(path="/api/v1/nodes", status=503)
    with pytest.raises(TransientError) as caught:
        kube.list("/api/v1/nodes")
    assert not isinstance(caught.value, StepTimeout)
    assert kube.request_count == kube.policy.attempts
    assert caught.value.retry_after is not None


def test_mutation_not_retried_after_timeout(cluster):
    sim, kube = cluster([node("node-a")])
    slow = kube.with_policy(call_timeout=0.3)
    sim.faults.add(path="/api/v1/nodes/node-a", latency=1.0, method="PATCH")
    with pytest.raises(TransientError, match="did not answer PATCH"):
        slow.patch("/api/v1/nodes/node-a", {"spec": {"unschedulable": True}})
    assert slow.request_count == 1


def test_read_timeout_retried_then_transient(cluster):
    sim, kube = cluster([node("node-a")])
    slow = kube.with_policy(call_timeout=0.3, attempts=2)
    sim.faults.add(path="/api/v1/nodes/node-a", latency=1.0)
    with pytest.raises(TransientError, match="did not answer GET"):
        slow.get("/api/v1/nodes/node-a")
    assert slow.request_count == 2


def test_step_deadline_bounds_the_call(cluster):
    sim, kube = cluster([node("node-a")])
    sim.faults.add(path="/api/v1/nodes/node-a", latency=2.0)
    bounded = kube.with_deadline(time.monotonic() + 0.4)
    with pytest.raises(StepTimeout):
        bounded.get("/api/v1/nodes/node-a")
    with pytest.raises(StepTimeout):
        kube.with_deadline(time.monotonic() - 1).get("/api/v1/nodes/node-a")


def test_connection_refused_is_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kube = Kube.from_url(f"http://127.0.0.1:{port}", "t", policy=Policy(attempts=2, backoff=0.01))
    with pytest.raises(TransientError, match=f"API server at http://127.0.0.1:{port} is unreachable"):
        kube.get("/api/v1/nodes")
    assert kube.request_count == 2


def test_unauthorized_is_permanent(cluster):
    _, kube = cluster([], token="wrong", rbac=True)
    with pytest.raises(PermanentError, match="unauthorized"):
        kube.get("/api/v1/nodes")


def test_kubeconfig_constructor(cluster, tmp_path):
    sim, _ = cluster([node("node-a")])
    path = sim.write_kubeconfig(tmp_path / "config")
    with Kube.from_kubeconfig(str(path), "kubesim") as kube:
        assert kube.get("/api/v1/nodes/node-a")["metadata"]["name"] == "node-a"


def test_impersonation_applies_rbac_of_the_identity(cluster):
    objects = [node("node-a"), *rbac_objects([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}])]
    _, kube = cluster(objects, rbac=True)
    alice = kube.as_user("alice", ["oncall"])
    with pytest.raises(ForbiddenError, match='user "alice" cannot get nodes'):
        alice.get("/api/v1/nodes/node-a")
    assert kube.as_user(SA).get("/api/v1/nodes/node-a")
    assert alice.request_count == kube.request_count  # views share the counter


def test_metadata_only_drops_values(cluster):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "db", "namespace": "shop",
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"aHVudGVyMg=="}}'}},
        "data": {"password": "aHVudGVyMg=="}}
    _, kube = cluster([secret])
    meta = kube.get_metadata("/api/v1/namespaces/shop/secrets/db")
    assert meta is not None and "data" not in meta
    assert "aHVudGVyMg" not in repr(meta)
    assert kube.get_metadata("/api/v1/namespaces/shop/secrets/nope") is None


def test_access_checker_self_and_subject_reviews(cluster):
    rules = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]},
             {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get"]},
             # A real cluster grants this to every authenticated user (ClusterRole system:basic-user);
             # the simulator has no bootstrap roles.
             {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"], "verbs": ["create"]}]
    objects = rbac_objects(rules)
    _, kube = cluster(objects, token="sa-token", rbac=True, tokens={"sa-token": SA})
    checker = AccessChecker(kube)
    wanted = (Permission("nodes", "patch"), Permission("pods", "create", subresource="eviction"),
              Permission("cronjobs", "patch", "batch", namespaced=True))
    assert checker.missing(wanted, "billing", None) == [wanted[1], wanted[2]]
    _, admin = cluster(objects, rbac=True)
    assert AccessChecker(admin).missing(wanted, "billing", Identity(SA)) == [wanted[1], wanted[2]]
    assert AccessChecker(admin).missing(wanted, "billing", None) == []
