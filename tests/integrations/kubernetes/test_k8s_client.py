"""`Kube` and the error translation, against the simulator over real HTTP."""

from __future__ import annotations

import socket
import sys
import time

import pytest
import yaml
from k8s_objects import node, pod

from engine.actions import ActionContext, Authorized, Identity, Permission
from engine.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    OutcomeUnknown,
    PermanentError,
    StepTimeout,
    TransientError,
)
from engine.proposal_scope import SharedReads
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
    with pytest.raises(OutcomeUnknown, match="no answer came within 0.3s; effect unknown: check Node node-a"):
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


def test_a_dry_run_notes_what_the_authorizer_let_through(cluster):
    """Answered requests are noted as RBAC sees them, a read answered from the proposal's shared reads too;
    a refused one is not."""
    rules = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
             {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get"]}]
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "bill", "namespace": "billing"},
            "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}}
    _, kube = cluster([*rbac_objects(rules), node("node-a"), cron], token="sa-token", rbac=True,
                      tokens={"sa-token": SA})
    reads = SharedReads()
    look = ActionContext("r1", "look", True, time.monotonic() + 10, reads=reads, authorized=set())
    view = kube.for_context(look)
    view.get("/api/v1/nodes/node-a")
    view.get("/apis/batch/v1/namespaces/billing/cronjobs/bill")
    with pytest.raises(ForbiddenError):
        view.patch("/api/v1/nodes/node-a", CORDON, dry_run=True)
    node_get = Authorized("", "nodes", "", "get", None)
    assert look.authorized == {node_get, Authorized("batch", "cronjobs", "", "get", "billing")}
    assert Authorized.needed(Permission("cronjobs", "get", "batch", namespaced=True), "billing") in look.authorized
    fix = ActionContext("r1", "fix", True, time.monotonic() + 10, reads=reads, authorized=set())
    sent = kube.request_count
    kube.for_context(fix).get("/api/v1/nodes/node-a")  # another step of the proposal: the shared read
    assert kube.request_count == sent and fix.authorized == {node_get}


# -- a change is sent at most once ---------------------------------------------------------------------

CORDON = {"spec": {"unschedulable": True}}


def patches(sim) -> int:
    return sim.requests[("PATCH", "/api/v1/nodes/node-a")]


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 500}, {"drop": True},
                                   {"status": 503, "after": True}, {"drop": True, "after": True}])
def test_a_change_is_never_sent_again_after_an_ambiguous_failure(cluster, fault):
    sim, kube = cluster([node("node-a")])
    sim.faults.add(path="/api/v1/nodes/node-a", method="PATCH", **fault)
    with pytest.raises(OutcomeUnknown, match="effect unknown: check Node node-a") as caught:
        kube.patch("/api/v1/nodes/node-a", CORDON)
    assert caught.value.check == "Node node-a" and not caught.value.transient
    assert patches(sim) == 1 and kube.request_count == 1
    assert sim.get("Node", "node-a")["spec"].get("unschedulable") is (True if fault.get("after") else None)


def test_a_change_is_sent_again_after_429_which_refuses_it_unhandled(cluster):
    sim, kube = cluster([node("node-a")])
    fast = kube.with_policy(backoff=0.01)
    sim.faults.add(path="/api/v1/nodes/node-a", method="PATCH", status=429, retry_after=0, times=1)
    assert fast.patch("/api/v1/nodes/node-a", CORDON)["spec"]["unschedulable"] is True
    assert patches(sim) == 2


def test_creates_and_deletes_are_sent_once_too(cluster):
    sim, kube = cluster([node("node-a")])
    sim.faults.add(path="/api/v1/namespaces/default/configmaps", method="POST", status=503)
    sim.faults.add(path="/api/v1/nodes/node-a", method="DELETE", drop=True)
    with pytest.raises(OutcomeUnknown, match="check configmaps in namespace default"):
        kube.create("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "x"}})
    with pytest.raises(OutcomeUnknown):
        kube.delete("/api/v1/nodes/node-a")
    assert sim.requests[("POST", "/api/v1/namespaces/default/configmaps")] == 1
    assert sim.requests[("DELETE", "/api/v1/nodes/node-a")] == 1


def test_a_dry_run_or_a_read_is_still_retried(cluster):
    sim, kube = cluster([node("node-a")])
    sim.faults.add(path="/api/v1/nodes/node-a", method="PATCH", status=503, times=1)
    sim.faults.add(path="/api/v1/nodes/node-a", method="GET", drop=True, times=1)
    assert kube.patch("/api/v1/nodes/node-a", CORDON, dry_run=True)["spec"]["unschedulable"] is True
    assert kube.get("/api/v1/nodes/node-a")["spec"].get("unschedulable") is None
    assert patches(sim) == 2 and sim.requests[("GET", "/api/v1/nodes/node-a")] == 2


def test_a_failure_status_in_a_2xx_answer_is_an_error(cluster):
    """The eviction subresource answers 201 with a Failure Status when two budgets cover a pod."""
    sim, kube = cluster([node("node-a"), pod("web-1", "shop", "node-a")])
    sim.faults.add(path="/api/v1/namespaces/shop/pods/web-1/eviction", status=201, times=1)
    with pytest.raises(PermanentError, match="answered 201 with a Failure Status"):
        kube.evict("shop", "web-1")
    assert sim.requests[("POST", "/api/v1/namespaces/shop/pods/web-1/eviction")] == 1
    assert sim.get("Pod", "web-1", "shop") is not None


# -- a 401 gets fresh credentials once -------------------------------------------------------------

EXEC_PLUGIN = """import json, pathlib, sys
folder = pathlib.Path(sys.argv[1])
runs = folder / "runs"
runs.write_text(str(int(runs.read_text() or 0) + 1) if runs.exists() else "1")
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                  "status": {"token": (folder / "token").read_text().strip()}}))
"""


def exec_kubeconfig(sim, folder) -> str:
    """A kubeconfig whose user runs an exec plugin printing the token in `folder/token`."""
    path = sim.write_kubeconfig(folder / "config")
    config = yaml.safe_load(path.read_text())
    (folder / "plugin.py").write_text(EXEC_PLUGIN)
    config["users"][0]["user"] = {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
        "args": [str(folder / "plugin.py"), str(folder)], "interactiveMode": "Never"}}
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_a_401_runs_the_exec_plugin_again_and_retries_once(cluster, tmp_path):
    sim, _ = cluster([node("node-a")], rbac=True)
    (tmp_path / "token").write_text("expired-token")
    with Kube.from_kubeconfig(exec_kubeconfig(sim, tmp_path), "kubesim") as kube:
        (tmp_path / "token").write_text("admin-token")  # the plugin would now mint a valid token
        assert kube.patch("/api/v1/nodes/node-a", CORDON)["spec"]["unschedulable"] is True
        assert (tmp_path / "runs").read_text() == "2" and patches(sim) == 2
    (tmp_path / "token").write_text("revoked")
    with (Kube.from_kubeconfig(exec_kubeconfig(sim, tmp_path), "kubesim") as kube,
          pytest.raises(PermanentError, match="unauthorized")):
        kube.get("/api/v1/nodes/node-a")
    assert (tmp_path / "runs").read_text() == "4"  # loading, then once after the 401: never in a loop
    assert sim.requests[("GET", "/api/v1/nodes/node-a")] == 2
