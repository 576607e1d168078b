"""Controllers that react to API writes after load: foreground deletion, workloads, budgets' status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubesim_helpers import kubectl

from integrations.kubesim import SimulatedCluster, load_scenario
from integrations.kubesim.kubelet import BehaviourError, ImageBehaviours

BASIC = Path(__file__).resolve().parents[3] / "runbooks" / "scenarios" / "kubesim-basic.yaml"


def _job_with_pod(name: str, node: str, finalizers: list[str] | None = None) -> list[dict]:
    uid = f"uid-{name}"
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": name, "namespace": "shop", "uid": uid, "generation": 1},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "c", "image": "busybox"}]}}},
           "status": {"active": 1, "startTime": "2026-11-22T11:00:00Z"}}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"{name}-x1", "namespace": "shop", "finalizers": finalizers or [],
                        "labels": {"batch.kubernetes.io/job-name": name},
                        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid,
                                             "controller": True, "blockOwnerDeletion": True}]},
           "spec": {"nodeName": node, "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
           "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    if not finalizers:
        del pod["metadata"]["finalizers"]
    return [job, pod]


@pytest.fixture
def jobs_sim() -> Iterator[SimulatedCluster]:
    objects = [*load_scenario(BASIC), *_job_with_pod("stuck", "worker-c"),
               *_job_with_pod("tracked", "worker-a", ["batch.kubernetes.io/job-tracking"])]
    with SimulatedCluster(objects=objects) as cluster:
        yield cluster


# -- foreground deletion -----------------------------------------------------------------------
def test_foreground_job_waits_for_its_pods(jobs_sim: SimulatedCluster) -> None:
    api = jobs_sim.api_client()
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.delete_namespaced_job("stuck", "shop", propagation_policy="Foreground")
    held = jobs_sim.get("jobs", "stuck", "shop")["metadata"]
    assert held["deletionTimestamp"] and held["finalizers"] == ["foregroundDeletion"]
    assert jobs_sim.get("pods", "stuck-x1", "shop")["metadata"]["deletionTimestamp"]  # dead node: Terminating
    assert len(jobs_sim.list("pods", "shop", label_selector="batch.kubernetes.io/job-name=stuck")) == 1
    core.delete_namespaced_pod("stuck-x1", "shop", grace_period_seconds=0)
    assert jobs_sim.get("jobs", "stuck", "shop") is None


def test_foreground_job_with_tracking_finalizer_goes_at_once(jobs_sim: SimulatedCluster) -> None:
    """The Job controller drops batch.kubernetes.io/job-tracking from a deleting pod, so nothing is stuck."""
    client.BatchV1Api(jobs_sim.api_client()).delete_namespaced_job("tracked", "shop",
                                                                   propagation_policy="Foreground")
    assert jobs_sim.get("pods", "tracked-x1", "shop") is None
    assert jobs_sim.get("jobs", "tracked", "shop") is None


# -- workload controllers ----------------------------------------------------------------------
def test_loaded_state_is_served_as_written() -> None:
    objects = load_scenario(BASIC)
    with SimulatedCluster(objects=objects) as sim:
        client.CoreV1Api(sim.api_client()).list_namespaced_pod("shop")
        assert sim.get("replicasets", "web-7d4b9c8f5d", "shop")["status"]["readyReplicas"] == 2
        assert len(sim.list("pods", "shop", label_selector="app=web")) == 3


def test_statefulset_recreates_a_deleted_pod_with_the_same_name(core: client.CoreV1Api,
                                                                 sim: SimulatedCluster) -> None:
    old = sim.get("pods", "redis-0", "shop")
    core.delete_namespaced_pod("redis-0", "shop", grace_period_seconds=0)
    new = sim.get("pods", "redis-0", "shop")
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert new["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "redis-0"
    assert new["spec"]["nodeName"] in ("worker-a", "worker-b") and new["status"]["phase"] == "Running"
    assert new["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"


def test_replicaset_replaces_a_deleted_pod(core: client.CoreV1Api, sim: SimulatedCluster) -> None:
    core.delete_namespaced_pod("web-7d4b9c8f5d-x2k9p", "shop")
    names = {p["metadata"]["name"] for p in sim.list("pods", "shop", label_selector="app=web")}
    assert "web-7d4b9c8f5d-x2k9p" not in names and len(names) == 3
    (new,) = names - {"web-7d4b9c8f5d-m4q7z", "web-7d4b9c8f5d-r8w2c"}
    pod = sim.get("pods", new, "shop")
    assert new.startswith("web-7d4b9c8f5d-") and pod["spec"]["nodeName"] != "worker-c"  # not the dead node
    assert [c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready"] == ["True"]


def test_deployment_rollout_history_and_undo_with_kubectl(tmp_path: Path) -> None:
    behaviours = ImageBehaviours.from_text("# kubesim-image: nginx:1.99.0 crash\n")
    with SimulatedCluster(objects=load_scenario(BASIC), behaviours=behaviours) as sim:
        kc = sim.write_kubeconfig(tmp_path / "kubeconfig")
        kubectl(kc, "-n", "shop", "set", "image", "deployment/web", "web=nginx:1.99.0")
        rs = {r["metadata"]["name"]: r for r in sim.list("replicasets", "shop")}
        new = next(r for n, r in rs.items() if n != "web-7d4b9c8f5d")
        assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        assert new["spec"]["replicas"] == 3 and rs["web-7d4b9c8f5d"]["spec"]["replicas"] == 0
        digest = new["metadata"]["labels"]["pod-template-hash"]
        crashing = sim.list("pods", "shop", label_selector=f"pod-template-hash={digest}")
        assert len(crashing) == 3
        assert {p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] for p in crashing} == {
            "CrashLoopBackOff"}
        history = kubectl(kc, "-n", "shop", "rollout", "history", "deployment/web").stdout
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
        kubectl(kc, "-n", "shop", "rollout", "undo", "deployment/web")
        back = sim.get("replicasets", "web-7d4b9c8f5d", "shop")
        assert back["spec"]["replicas"] == 3
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
        deployment = sim.get("deployments", "web", "shop")
        assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        assert deployment["status"]["updatedReplicas"] == 3
        running = [p for p in sim.list("pods", "shop", label_selector="pod-template-hash=7d4b9c8f5d")
                   if not p["metadata"].get("deletionTimestamp")]
        assert sum(1 for p in running if p["status"]["phase"] == "Running") >= 3


def test_rollout_restart_status_and_scaling_with_kubectl(kubeconfig: Path, sim: SimulatedCluster) -> None:
    kubectl(kubeconfig, "-n", "shop", "rollout", "restart", "deployment/web")
    status = kubectl(kubeconfig, "-n", "shop", "rollout", "status", "deployment/web", "--timeout=10s").stdout
    assert 'deployment "web" successfully rolled out' in status
    kubectl(kubeconfig, "-n", "shop", "scale", "deployment/web", "--replicas=5")
    (new,) = [r for r in sim.list("replicasets", "shop") if r["metadata"]["name"] != "web-7d4b9c8f5d"]
    assert new["spec"]["replicas"] == 5 and new["status"]["readyReplicas"] == 5
    assert "kubectl.kubernetes.io/restartedAt" in new["spec"]["template"]["metadata"]["annotations"]
    kubectl(kubeconfig, "-n", "shop", "scale", "statefulset/redis", "--replicas=3")
    assert [p["metadata"]["name"] for p in sim.list("pods", "shop", label_selector="app=redis")] == [
        "redis-0", "redis-1", "redis-2"]
    kubectl(kubeconfig, "-n", "shop", "scale", "statefulset/redis", "--replicas=1")
    assert [p["metadata"]["name"] for p in sim.list("pods", "shop", label_selector="app=redis")] == ["redis-0"]


def test_job_controller_runs_pods_per_image_behaviour() -> None:
    behaviours = ImageBehaviours.from_text("# kubesim-image: busybox:ok complete\n# kubesim-image: busy* ready\n")
    with SimulatedCluster(objects=load_scenario(BASIC), behaviours=behaviours) as sim:
        batch = client.BatchV1Api(sim.api_client())
        for name, image in (("runs", "busybox:1"), ("done", "busybox:ok")):
            batch.create_namespaced_job("shop", client.V1Job(
                metadata=client.V1ObjectMeta(name=name),
                spec=client.V1JobSpec(template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
                    restart_policy="Never", containers=[client.V1Container(name="c", image=image)])))))
        (pod,) = sim.list("pods", "shop", label_selector="batch.kubernetes.io/job-name=runs")
        assert pod["status"]["phase"] == "Running" and pod["metadata"]["finalizers"] == [
            "batch.kubernetes.io/job-tracking"]
        assert sim.get("jobs", "runs", "shop")["status"]["active"] == 1
        done = sim.get("jobs", "done", "shop")["status"]
        assert done["succeeded"] == 1 and [c["type"] for c in done["conditions"]] == ["SuccessCriteriaMet", "Complete"]
        batch.delete_namespaced_job("runs", "shop", propagation_policy="Background")
        assert sim.list("pods", "shop", label_selector="batch.kubernetes.io/job-name=runs") == []


def test_image_behaviour_lines_are_checked() -> None:
    with pytest.raises(BehaviourError, match=r"s.yaml:2: .*'explode'"):
        ImageBehaviours.from_text("# kubesim-now: 2026-01-01T00:00:00Z\n# kubesim-image: x explode\n", "s.yaml")
    rules = ImageBehaviours.from_text("# kubesim-image: a:* pull-error\nkind: Pod\n# kubesim-image: b:* crash\n")
    assert rules.of("a:1") == "pull-error" and rules.of("b:1") == "ready"  # after the header: not a declaration


def test_scenario_file_declares_behaviours(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    text = BASIC.read_text(encoding="utf-8")
    scenario.write_text("# kubesim-image: redis:7.4.1 pull-error\n" + text, encoding="utf-8")
    with SimulatedCluster.from_files([scenario]) as sim:
        client.CoreV1Api(sim.api_client()).delete_namespaced_pod("redis-0", "shop")
        pod = sim.get("pods", "redis-0", "shop")
        assert pod["status"]["phase"] == "Pending"
        assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
    assert yaml.safe_load_all(text)  # the scenario itself is untouched
