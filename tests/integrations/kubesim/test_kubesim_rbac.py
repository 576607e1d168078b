"""RBAC enforcement, impersonation and access reviews."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubesim_helpers import kubectl, status_of

from integrations.kubesim import SimulatedCluster, load_scenario

BASIC = Path(__file__).resolve().parents[3] / "runbooks" / "scenarios" / "kubesim-basic.yaml"
RUNBOOK_SA = "system:serviceaccount:ops:runbook"

RBAC_OBJECTS = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ops"}},
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "node-reader"},
        "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get"],
                "resourceNames": ["worker-c"],
            },
        ],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "runbook-node-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "node-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "runbook", "namespace": "ops"}],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "evictor", "namespace": "shop"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        ],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "runbook-evictor", "namespace": "shop"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "evictor"},
        "subjects": [{"kind": "Group", "name": "system:serviceaccounts:ops"}],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "impersonator"},
        "rules": [
            {"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"], "verbs": ["impersonate"]}
        ],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "alice-imp"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "impersonator"},
        "subjects": [{"kind": "User", "name": "alice"}],
    },
]


@pytest.fixture
def rbac_sim() -> Iterator[SimulatedCluster]:
    tokens = {"token-x": RUNBOOK_SA, "alice-token": "alice"}
    with SimulatedCluster(
        objects=load_scenario(BASIC) + RBAC_OBJECTS, rbac=True, tokens=tokens, tls=True
    ) as cluster:
        yield cluster


def _core(sim: SimulatedCluster, token: str) -> client.CoreV1Api:
    return client.CoreV1Api(sim.api_client(token))


def test_unknown_token_is_unauthorized(rbac_sim: SimulatedCluster) -> None:
    with pytest.raises(ApiException) as err:
        _core(rbac_sim, "bogus").list_node()
    assert err.value.status == 401 and status_of(err.value)["reason"] == "Unauthorized"


def test_allow_and_deny(rbac_sim: SimulatedCluster) -> None:
    core = _core(rbac_sim, "token-x")
    assert len(core.list_node().items) == 3
    with pytest.raises(ApiException) as err:
        core.patch_node("worker-a", {"spec": {"unschedulable": True}})
    assert err.value.status == 403
    assert status_of(err.value)["message"] == (
        'nodes "worker-a" is forbidden: User "system:serviceaccount:ops:'
        'runbook" cannot patch resource "nodes" in API group "" at the '
        "cluster scope"
    )
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("shop")
    assert status_of(err.value)["message"] == (
        'configmaps is forbidden: User "system:serviceaccount:ops:runbook" '
        'cannot list resource "configmaps" in API group "" in the '
        'namespace "shop"'
    )
    # namespaced Role via group subject, including a subresource rule
    assert len(core.list_namespaced_pod("shop").items) == 5
    core.create_namespaced_pod_eviction(
        "redis-0", "shop", client.V1Eviction(metadata=client.V1ObjectMeta(name="redis-0", namespace="shop"))
    )
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_pod("web-7d4b9c8f5d-x2k9p", "shop")
    assert err.value.status == 403
    # resourceNames restrict get
    coord = client.CoordinationV1Api(core.api_client)
    assert coord.read_namespaced_lease("worker-c", "kube-node-lease").spec.holder_identity == "worker-c"
    with pytest.raises(ApiException):
        coord.read_namespaced_lease("worker-a", "kube-node-lease")


def _ssar(
    api: client.ApiClient, verb: str, resource: str, namespace: str = "", sub: str = "", name: str = ""
) -> bool:
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                verb=verb,
                resource=resource,
                namespace=namespace or None,
                subresource=sub or None,
                name=name or None,
            )
        )
    )
    return client.AuthorizationV1Api(api).create_self_subject_access_review(review).status.allowed


def test_access_reviews(rbac_sim: SimulatedCluster) -> None:
    api = rbac_sim.api_client("token-x")
    assert _ssar(api, "list", "nodes") is True
    assert _ssar(api, "patch", "nodes") is False
    assert _ssar(api, "create", "pods", "shop", sub="eviction") is True
    assert _ssar(api, "create", "pods", "default", sub="eviction") is False
    admin = rbac_sim.api_client()
    assert _ssar(admin, "delete", "nodes") is True
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=RUNBOOK_SA, resource_attributes=client.V1ResourceAttributes(verb="list", resource="nodes")
        )
    )
    result = client.AuthorizationV1Api(admin).create_subject_access_review(review)
    assert result.status.allowed is True
    assert result.status.reason.startswith('RBAC: allowed by ClusterRoleBinding "runbook-node-reader"')


def test_rbac_off_allows_everything(sim: SimulatedCluster) -> None:
    api = sim.api_client("anything")
    assert _ssar(api, "delete", "nodes") is True
    client.CoreV1Api(api).patch_node("worker-a", {"spec": {"unschedulable": True}})


def test_impersonation(rbac_sim: SimulatedCluster) -> None:
    api = rbac_sim.api_client("alice-token")
    api.set_default_header("Impersonate-User", RUNBOOK_SA)
    core = client.CoreV1Api(api)
    assert len(core.list_node().items) == 3  # as the service account
    with pytest.raises(ApiException) as err:
        core.patch_node("worker-a", {"spec": {"unschedulable": True}})
    assert RUNBOOK_SA in status_of(err.value)["message"]
    sa_api = rbac_sim.api_client("token-x")
    sa_api.set_default_header("Impersonate-User", "admin")
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(sa_api).list_node()
    assert err.value.status == 403
    assert status_of(err.value)["message"].startswith(
        'users "admin" is forbidden: User "system:serviceaccount:'
        'ops:runbook" cannot impersonate resource "users"'
    )


def test_kubectl_as_and_auth_can_i(rbac_sim: SimulatedCluster, tmp_path: Path) -> None:
    kubeconfig = rbac_sim.write_kubeconfig(tmp_path / "kc", user="runbook", token="token-x")
    denied = kubectl(kubeconfig, "cordon", "worker-a", check=False)
    assert 'User "system:serviceaccount:ops:runbook" cannot patch resource "nodes"' in denied.stderr
    assert not rbac_sim.get("nodes", "worker-a")["spec"].get("unschedulable")
    assert (
        kubectl(
            kubeconfig, "auth", "can-i", "create", "pods", "--subresource=eviction", "-n", "shop", check=False
        ).stdout.strip()
        == "yes"
    )
    assert kubectl(kubeconfig, "auth", "can-i", "list", "nodes").stdout.strip() == "yes"
    assert kubectl(kubeconfig, "auth", "can-i", "patch", "nodes", check=False).stdout.strip() == "no"
    admin = rbac_sim.write_kubeconfig(tmp_path / "admin", token="admin-token")
    out = kubectl(admin, "get", "nodes", "--as", RUNBOOK_SA).stdout
    assert "worker-c" in out
