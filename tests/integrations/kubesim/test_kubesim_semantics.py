"""Server semantics runbooks depend on: dryRun, watch, eviction/PDB, deletion, cascades, faults."""

from __future__ import annotations

import http.client
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from kubesim_helpers import status_of

from integrations.kubesim import SimulatedCluster, load_scenario, parse_scenario

BASIC = Path(__file__).resolve().parents[3] / "runbooks" / "scenarios" / "kubesim-basic.yaml"


def _eviction(name: str, ns: str = "shop") -> client.V1Eviction:
    return client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=ns))


# -- dryRun ------------------------------------------------------------------------------------
def test_dry_run_leaves_state_unchanged(core: client.CoreV1Api, sim: SimulatedCluster) -> None:
    before = sim.store.resource_version
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dry"), data={"k": "v"})
    created = core.create_namespaced_config_map("shop", cm, dry_run="All")
    assert created.metadata.name == "dry" and created.metadata.uid and not created.metadata.resource_version
    assert sim.get("configmaps", "dry", "shop") is None
    node = core.patch_node("worker-a", {"spec": {"unschedulable": True}}, dry_run="All")
    assert node.spec.unschedulable is True and not sim.get("nodes", "worker-a")["spec"].get("unschedulable")
    assert node.metadata.resource_version == sim.get("nodes", "worker-a")["metadata"]["resourceVersion"]
    deleted = core.delete_namespaced_pod("web-7d4b9c8f5d-r8w2c", "shop", dry_run="All")
    assert deleted.metadata.deletion_timestamp is not None  # would go Terminating (dead node)
    assert "deletionTimestamp" not in sim.get("pods", "web-7d4b9c8f5d-r8w2c", "shop")["metadata"]
    core.create_namespaced_pod_eviction("redis-0", "shop", _eviction("redis-0"), dry_run="All")
    assert sim.get("pods", "redis-0", "shop") is not None
    assert sim.store.resource_version == before


# -- watch -------------------------------------------------------------------------------------
def test_watch_streams_events_then_times_out(core: client.CoreV1Api, sim: SimulatedCluster) -> None:
    rv = core.list_namespaced_pod("shop").metadata.resource_version

    def mutate() -> None:
        time.sleep(0.3)
        sim.apply({**sim.get("pods", "redis-0", "shop"), "status": {"phase": "Failed"}})
        core.delete_namespaced_pod("nightly-report-29396520-h5vbn", "shop")
        core.create_namespaced_config_map(
            "shop", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="other"))
        )

    worker = threading.Thread(target=mutate)
    worker.start()
    started = time.monotonic()
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_pod, "shop", resource_version=rv, timeout_seconds=2
        )
    ]
    worker.join()
    assert events == [("MODIFIED", "redis-0"), ("DELETED", "nightly-report-29396520-h5vbn")]
    assert 1.5 < time.monotonic() - started < 10
    initial = [e["type"] for e in watch.Watch().stream(core.list_node, timeout_seconds=1)]
    assert initial == ["ADDED"] * 3


def test_watch_too_old_resource_version(sim: SimulatedCluster) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    conn.request("GET", "/api/v1/pods?watch=true&resourceVersion=1&timeoutSeconds=1")
    body = conn.getresponse().read().decode()
    event = json.loads(body.splitlines()[0])
    assert event["type"] == "ERROR" and event["object"]["code"] == 410


# -- eviction / PDB ----------------------------------------------------------------------------
def test_eviction_honours_pdb(core: client.CoreV1Api, sim: SimulatedCluster) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod_eviction("web-7d4b9c8f5d-x2k9p", "shop", _eviction("web-7d4b9c8f5d-x2k9p"))
    body = status_of(err.value)
    assert err.value.status == 429 and body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
        }
    ]
    assert sim.get("pods", "web-7d4b9c8f5d-x2k9p", "shop") is not None
    # an unready pod may go while the budget holds; on a dead node it stays Terminating
    core.create_namespaced_pod_eviction("web-7d4b9c8f5d-r8w2c", "shop", _eviction("web-7d4b9c8f5d-r8w2c"))
    assert sim.get("pods", "web-7d4b9c8f5d-r8w2c", "shop")["metadata"]["deletionTimestamp"]
    # not covered by any PDB: evicted right away (and its StatefulSet recreates it under the same name)
    uid = sim.get("pods", "redis-0", "shop")["metadata"]["uid"]
    core.create_namespaced_pod_eviction("redis-0", "shop", _eviction("redis-0"))
    assert sim.get("pods", "redis-0", "shop")["metadata"]["uid"] != uid


def test_eviction_percentages(core: client.CoreV1Api, sim: SimulatedCluster) -> None:
    pdb = sim.get("poddisruptionbudgets", "web", "shop")
    pdb["spec"] = {
        "maxUnavailable": "34%",
        "selector": {"matchLabels": {"app": "web"}},
    }  # ceil(1.02) = 2 of 3
    sim.apply(pdb)
    core.create_namespaced_pod_eviction("web-7d4b9c8f5d-x2k9p", "shop", _eviction("web-7d4b9c8f5d-x2k9p"))
    assert sim.get("pods", "web-7d4b9c8f5d-x2k9p", "shop") is None


# -- deletion semantics ------------------------------------------------------------------------
def test_delete_on_not_ready_node_leaves_terminating(core: client.CoreV1Api, sim: SimulatedCluster) -> None:
    pod = core.delete_namespaced_pod("web-7d4b9c8f5d-r8w2c", "shop")
    assert pod.metadata.deletion_timestamp is not None and pod.metadata.deletion_grace_period_seconds == 30
    stored = sim.get("pods", "web-7d4b9c8f5d-r8w2c", "shop")
    assert stored["metadata"]["deletionGracePeriodSeconds"] == 30
    core.delete_namespaced_pod("web-7d4b9c8f5d-r8w2c", "shop", grace_period_seconds=0)
    assert sim.get("pods", "web-7d4b9c8f5d-r8w2c", "shop") is None
    uid = sim.get("pods", "redis-0", "shop")["metadata"]["uid"]
    core.delete_namespaced_pod("redis-0", "shop")  # healthy node: gone at once, then recreated
    assert sim.get("pods", "redis-0", "shop")["metadata"]["uid"] != uid


def test_node_recovery_completes_terminating_pods(core: client.CoreV1Api, sim: SimulatedCluster) -> None:
    core.delete_namespaced_pod("web-7d4b9c8f5d-r8w2c", "shop")
    assert sim.get("pods", "web-7d4b9c8f5d-r8w2c", "shop") is not None
    core.patch_node_status("worker-c", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert sim.get("pods", "web-7d4b9c8f5d-r8w2c", "shop") is None  # kubelet back: deletion confirmed
    assert sim.get("pods", "node-exporter-z7t9v", "kube-system") is not None


def test_delete_collection(core: client.CoreV1Api, sim: SimulatedCluster) -> None:
    before = {p["metadata"]["name"] for p in sim.list("pods", "shop", label_selector="app=web")}
    core.delete_collection_namespaced_pod("shop", label_selector="app=web", grace_period_seconds=0)
    after = {p["metadata"]["name"] for p in sim.list("pods", "shop", label_selector="app=web")}
    assert len(after) == 3 and not after & before  # all gone; the ReplicaSet made three new ones
    assert all(name.startswith("web-7d4b9c8f5d-") for name in after)
    assert {p["metadata"]["name"] for p in sim.list("pods", "shop", label_selector="app!=web")} == {
        "nightly-report-29396520-h5vbn",
        "redis-0",
    }


def test_finalizers_hold_deletion(core: client.CoreV1Api, sim: SimulatedCluster) -> None:
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/hold"]))
    core.create_namespaced_config_map("shop", cm)
    core.delete_namespaced_config_map("held", "shop")
    assert sim.get("configmaps", "held", "shop")["metadata"]["deletionTimestamp"]
    core.patch_namespaced_config_map("held", "shop", [{"op": "remove", "path": "/metadata/finalizers"}])
    assert sim.get("configmaps", "held", "shop") is None


def test_delete_preconditions(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_pod(
            "redis-0", "shop", body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="wrong"))
        )
    assert (
        err.value.status == 409
        and "Precondition failed: UID in precondition: wrong" in status_of(err.value)["message"]
    )


def test_job_cascades(api: client.ApiClient, sim: SimulatedCluster) -> None:
    batch = client.BatchV1Api(api)
    pod_name = "nightly-report-29396520-h5vbn"
    # batch/v1 default: orphan the pods (and warn), like the real server
    resp = batch.delete_namespaced_job_with_http_info("nightly-report-29396520", "shop")
    assert "child pods are preserved" in resp[2].get("Warning", "")
    orphan = sim.get("pods", pod_name, "shop")
    assert orphan is not None and "ownerReferences" not in orphan["metadata"]
    # background propagation removes dependents
    sim.apply(_job("again"))
    sim.apply(
        {
            **orphan,
            "metadata": {
                **orphan["metadata"],
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": "again",
                        "uid": "job-again",
                        "controller": True,
                    }
                ],
            },
        }
    )
    batch.delete_namespaced_job("again", "shop", propagation_policy="Background")
    assert sim.get("pods", pod_name, "shop") is None


def test_deployment_foreground_cascade(api: client.ApiClient, sim: SimulatedCluster) -> None:
    """Foreground: owners stay (deletionTimestamp + foregroundDeletion) until blocking dependents are gone."""
    client.AppsV1Api(api).delete_namespaced_deployment("web", "shop", propagation_policy="Foreground")
    pods = {p["metadata"]["name"]: p for p in sim.list("pods", "shop", label_selector="app=web")}
    assert list(pods) == ["web-7d4b9c8f5d-r8w2c"]  # dead node: Terminating
    assert pods["web-7d4b9c8f5d-r8w2c"]["metadata"]["deletionTimestamp"]
    for kind, name in (("replicasets", "web-7d4b9c8f5d"), ("deployments", "web")):
        held = sim.get(kind, name, "shop")["metadata"]
        assert held["deletionTimestamp"] and held["finalizers"] == ["foregroundDeletion"]
    client.CoreV1Api(api).delete_namespaced_pod("web-7d4b9c8f5d-r8w2c", "shop", grace_period_seconds=0)
    assert sim.get("replicasets", "web-7d4b9c8f5d", "shop") is None
    assert sim.get("deployments", "web", "shop") is None


def _job(name: str) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "shop", "uid": f"job-{name}"},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
            }
        },
    }


# -- faults ------------------------------------------------------------------------------------
def _get(sim: SimulatedCluster, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    conn.request("GET", path)
    return conn.getresponse()


def test_faults(sim: SimulatedCluster) -> None:
    sim.faults.add(path=r"^/api/v1/nodes$", status=429, retry_after=3, times=1)
    resp = _get(sim, "/api/v1/nodes")
    body = json.loads(resp.read())
    assert resp.status == 429 and resp.getheader("Retry-After") == "3"
    assert body["reason"] == "TooManyRequests" and body["details"]["retryAfterSeconds"] == 3
    assert _get(sim, "/api/v1/nodes").status == 200  # times=1 exhausted
    sim.faults.add(path=r"/pods", method="GET", status=500)
    resp = _get(sim, "/api/v1/pods")
    assert resp.status == 500 and json.loads(resp.read())["reason"] == "InternalError"
    sim.faults.clear()
    sim.faults.add(path=r"/nodes/worker-a$", drop=True)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        _get(sim, "/api/v1/nodes/worker-a")
    sim.faults.clear()
    sim.faults.add(path=r"/namespaces$", latency=0.3)
    started = time.monotonic()
    assert _get(sim, "/api/v1/namespaces").status == 200
    assert time.monotonic() - started >= 0.3
    sim.faults.clear()
    rule = sim.faults.add(path=r"/leases", status=503, rate=0.5)
    codes = [_get(sim, "/apis/coordination.k8s.io/v1/leases").status for _ in range(40)]
    assert 5 < codes.count(503) < 35 and rule.hits == codes.count(503)


def test_bad_requests_get_status(sim: SimulatedCluster) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    conn.request(
        "POST",
        "/api/v1/namespaces/shop/configmaps",
        body=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    assert resp.status == 400 and json.loads(resp.read())["kind"] == "Status"
    resp = _get(sim, "/api/v1/nope")
    assert resp.status == 404 and json.loads(resp.read())["reason"] == "NotFound"
    resp = _get(sim, "/api/v1/pods?labelSelector=a%20in%20(")
    assert resp.status == 400
    assert _get(sim, "/api/v1/nodes").status == 200  # still serving


# -- time shift --------------------------------------------------------------------------------
def test_time_shift_keeps_relative_ages() -> None:
    now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
    objs = load_scenario(BASIC, now=now)
    lease = next(o for o in objs if o["kind"] == "Lease" and o["metadata"]["name"] == "worker-c")
    assert lease["spec"]["renewTime"] == "2030-01-01T11:53:38.000000Z"  # 6m22s before "now", MicroTime kept
    node = next(o for o in objs if o["kind"] == "Node" and o["metadata"]["name"] == "worker-c")
    assert node["spec"]["taints"][0]["timeAdded"] == "2030-01-01T11:54:12Z"
    assert node["metadata"]["creationTimestamp"] == "2029-11-10T08:00:09Z"
    unshifted = parse_scenario(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  creationTimestamp: 2020-01-01T00:00:00Z\n"
    )
    assert unshifted[0]["metadata"]["creationTimestamp"] == "2020-01-01T00:00:00Z"  # no header: no shift


def test_loaded_objects_get_metadata() -> None:
    sim = SimulatedCluster(parse_scenario("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"))
    cm = sim.get("configmaps", "a")
    assert cm["metadata"]["uid"] and cm["metadata"]["resourceVersion"] and cm["metadata"]["creationTimestamp"]
    assert cm["metadata"]["namespace"] == "default" and sim.get("namespaces", "default") is not None
