"""kubesim through the official kubernetes Python client, over real sockets."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubesim_helpers import status_of

from integrations.kubesim import SimulatedCluster


def test_discovery(api: client.ApiClient) -> None:
    version = client.VersionApi(api).get_code()
    assert version.major == "1" and version.minor == "32"
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "batch", "policy", "coordination.k8s.io", "rbac.authorization.k8s.io"} <= groups
    core = client.CoreV1Api(api).get_api_resources()
    by_name = {r.name: r for r in core.resources}
    assert by_name["pods"].namespaced and "po" in by_name["pods"].short_names
    assert by_name["pods/eviction"].kind == "Eviction" and by_name["pods/eviction"].group == "policy"
    assert "pods/log" in by_name and "nodes/status" in by_name
    batch = {r.name for r in client.BatchV1Api(api).get_api_resources().resources}
    assert {"jobs", "jobs/status", "cronjobs", "cronjobs/status"} <= batch


def test_get_and_list_with_selectors(core: client.CoreV1Api) -> None:
    nodes = core.list_node()
    assert [n.metadata.name for n in nodes.items] == ["worker-a", "worker-b", "worker-c"]
    ready = {
        n.metadata.name: next(c.status for c in n.status.conditions if c.type == "Ready") for n in nodes.items
    }
    assert ready == {"worker-a": "True", "worker-b": "True", "worker-c": "Unknown"}
    pods = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=worker-c")
    assert sorted(p.metadata.name for p in pods.items) == ["node-exporter-z7t9v", "web-7d4b9c8f5d-r8w2c"]
    shop = core.list_namespaced_pod("shop", field_selector="spec.nodeName=worker-c")
    assert [p.metadata.name for p in shop.items] == ["web-7d4b9c8f5d-r8w2c"]
    assert len(core.list_namespaced_pod("shop", label_selector="app=web").items) == 3
    assert len(core.list_namespaced_pod("shop", label_selector="app in (web,redis),app!=redis").items) == 3
    assert len(core.list_namespaced_pod("shop", label_selector="!pod-template-hash").items) == 2
    running = core.list_pod_for_all_namespaces(field_selector="status.phase!=Succeeded,status.phase!=Failed")
    assert "nightly-report-29396520-h5vbn" not in {p.metadata.name for p in running.items}
    events = core.list_namespaced_event(
        "default", field_selector="involvedObject.kind=Node,involvedObject.name=worker-c"
    )
    assert [e.reason for e in events.items] == ["NodeNotReady"]
    pod = core.read_namespaced_pod("redis-0", "shop")
    assert pod.spec.node_name == "worker-b" and pod.metadata.resource_version


def test_not_found_status(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("web-1", "shop")
    assert err.value.status == 404
    body = status_of(err.value)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "web-1" not found',
        "reason": "NotFound",
        "details": {"name": "web-1", "kind": "pods"},
        "code": 404,
    }
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(core.api_client).read_namespaced_deployment("nope", "shop")
    assert status_of(err.value)["message"] == 'deployments.apps "nope" not found'


def test_pagination(core: client.CoreV1Api) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_pod_for_all_namespaces(limit=2, _continue=token)
        pages += 1
        seen += [f"{p.metadata.namespace}/{p.metadata.name}" for p in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 8 - len(seen)
    assert pages == 4 and len(seen) == 8 == len(set(seen))
    assert seen == sorted(seen)


def test_create_conflict_and_update(core: client.CoreV1Api) -> None:
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"a": "1"})
    created = core.create_namespaced_config_map("shop", cm)
    assert created.metadata.uid and created.metadata.resource_version
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("shop", cm)
    assert err.value.status == 409 and status_of(err.value)["reason"] == "AlreadyExists"
    assert status_of(err.value)["message"] == 'configmaps "settings" already exists'
    created.data = {"a": "2"}
    updated = core.replace_namespaced_config_map("settings", "shop", created)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    created.data = {"a": "3"}  # stale resourceVersion
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("settings", "shop", created)
    assert err.value.status == 409
    assert status_of(err.value)["message"] == (
        'Operation cannot be fulfilled on configmaps "settings": the object '
        "has been modified; please apply your changes to the latest version "
        "and try again"
    )
    generated = core.create_namespaced_config_map(
        "shop", client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-"))
    )
    assert generated.metadata.name.startswith("gen-") and len(generated.metadata.name) == 9


def test_create_validation(core: client.CoreV1Api) -> None:
    bad = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="Bad_Name"))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("shop", bad)
    body = status_of(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        "a lowercase RFC 1123 subdomain"
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(
            "nowhere", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"))
        )
    assert err.value.status == 404 and status_of(err.value)["message"] == 'namespaces "nowhere" not found'
    wrong_ns = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x", namespace="default"))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("shop", wrong_ns)
    assert err.value.status == 400


def test_patches(core: client.CoreV1Api, sim: SimulatedCluster) -> None:
    # strategic merge: labels merge, unschedulable set; taints have no merge key upstream -> replaced
    core.patch_node("worker-a", {"metadata": {"labels": {"team": "sre"}}, "spec": {"unschedulable": True}})
    node = sim.get("nodes", "worker-a")
    assert node["metadata"]["labels"]["team"] == "sre" and node["spec"]["unschedulable"] is True
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "worker-a"
    # status conditions merge by type (status subresource)
    core.patch_node_status(
        "worker-c",
        {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                    }
                ]
            }
        },
    )
    conds = {c["type"]: c for c in sim.get("nodes", "worker-c")["status"]["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["MemoryPressure"]["status"] == "Unknown"
    assert conds["Ready"]["lastHeartbeatTime"]  # merged, not replaced
    # main-resource patches ignore status, as on a real server
    core.patch_node("worker-b", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    assert {c["type"]: c["status"] for c in sim.get("nodes", "worker-b")["status"]["conditions"]}[
        "Ready"
    ] == "True"
    # containers merge by name
    pod = core.patch_namespaced_pod(
        "redis-0", "shop", {"spec": {"containers": [{"name": "redis", "image": "redis:7.4.2"}]}}
    )
    assert [c.image for c in pod.spec.containers] == ["redis:7.4.2"]
    # JSON merge patch: null deletes, lists replace
    core.patch_node(
        "worker-c",
        {
            "metadata": {"annotations": {"node.alpha.kubernetes.io/ttl": None}},
            "spec": {"taints": [{"key": "x", "effect": "NoSchedule"}]},
        },
        _content_type="application/merge-patch+json",
    )
    node_c = sim.get("nodes", "worker-c")
    assert node_c["spec"]["taints"] == [{"key": "x", "effect": "NoSchedule"}]
    # JSON patch (RFC 6902) including test
    core.patch_node(
        "worker-c",
        [
            {"op": "test", "path": "/spec/taints/0/key", "value": "x"},
            {"op": "remove", "path": "/spec/taints"},
            {"op": "add", "path": "/metadata/labels/drained", "value": "yes"},
        ],
    )
    node_c = sim.get("nodes", "worker-c")
    assert "taints" not in node_c["spec"] and node_c["metadata"]["labels"]["drained"] == "yes"
    with pytest.raises(ApiException) as err:
        core.patch_node("worker-c", [{"op": "test", "path": "/spec/unschedulable", "value": True}])
    assert err.value.status == 422


def test_status_subresource(core: client.CoreV1Api, sim: SimulatedCluster) -> None:
    pod = core.read_namespaced_pod_status("redis-0", "shop")
    pod.status.phase = "Failed"
    pod.metadata.labels["ignored"] = "yes"
    core.replace_namespaced_pod_status("redis-0", "shop", pod)
    stored = sim.get("pods", "redis-0", "shop")
    assert stored["status"]["phase"] == "Failed" and "ignored" not in stored["metadata"]["labels"]
    batch = client.BatchV1Api(core.api_client)
    batch.patch_namespaced_job_status("nightly-report-29396520", "shop", {"status": {"failed": 1}})
    assert sim.get("jobs", "nightly-report-29396520", "shop")["status"]["failed"] == 1


def test_log_subresource(core: client.CoreV1Api) -> None:
    log = core.read_namespaced_pod_log("web-7d4b9c8f5d-x2k9p", "shop")
    assert "start worker processes" in log and log.count("\n") == 3
    tail = core.read_namespaced_pod_log("web-7d4b9c8f5d-x2k9p", "shop", tail_lines=1)
    assert tail.startswith("10.0.2.12") and tail.count("\n") == 1
    prev = core.read_namespaced_pod_log("web-7d4b9c8f5d-m4q7z", "shop", previous=True, container="web")
    assert "out of memory" in prev
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("redis-0", "shop", previous=True)
    assert err.value.status == 400


def test_sim_direct_access(sim: SimulatedCluster, core: client.CoreV1Api) -> None:
    node = sim.get("Node", "worker-a")
    assert node is not None
    node["metadata"]["labels"]["direct"] = "1"
    sim.apply(node)
    assert core.read_node("worker-a").metadata.labels["direct"] == "1"
    assert len(sim.list("pods", "shop")) == 5
    assert sim.get("po", "missing", "shop") is None
    sim.reset_requests()
    core.list_node()
    assert sim.request_count == 1 and sim.requests[("GET", "/api/v1/nodes")] == 1
