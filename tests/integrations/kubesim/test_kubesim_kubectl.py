"""kubectl 1.32 against kubesim: output fidelity and mutations the Python client then sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client
from kubesim_helpers import kubectl

from integrations.kubesim import SimulatedCluster


def _table(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_get_nodes_shows_not_ready(kubeconfig: Path) -> None:
    rows = _table(kubectl(kubeconfig, "get", "nodes").stdout)
    assert rows[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert {r[0]: r[1] for r in rows[1:]} == {
        "worker-a": "Ready",
        "worker-b": "Ready",
        "worker-c": "NotReady",
    }
    assert all(r[2] == "<none>" and r[4] == "v1.32.4" for r in rows[1:])
    wide = kubectl(kubeconfig, "get", "nodes", "-o", "wide").stdout
    assert "INTERNAL-IP" in wide and "10.0.3.13" in wide and "containerd://1.7.27" in wide


def test_get_pods_field_selector_all_namespaces(kubeconfig: Path) -> None:
    out = kubectl(kubeconfig, "get", "pods", "-A", "--field-selector", "spec.nodeName=worker-c").stdout
    rows = _table(out)
    assert rows[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        ("kube-system", "node-exporter-z7t9v"),
        ("shop", "web-7d4b9c8f5d-r8w2c"),
    ]
    pods = kubectl(kubeconfig, "get", "pods", "-n", "shop").stdout
    assert "2 (" in pods and "Completed" in pods  # restarts with last-restart age, succeeded job pod


def test_cordon_uncordon(kubeconfig: Path, core: client.CoreV1Api) -> None:
    assert "node/worker-a cordoned" in kubectl(kubeconfig, "cordon", "worker-a").stdout
    assert core.read_node("worker-a").spec.unschedulable is True
    assert "Ready,SchedulingDisabled" in kubectl(kubeconfig, "get", "node", "worker-a").stdout
    assert "node/worker-a uncordoned" in kubectl(kubeconfig, "uncordon", "worker-a").stdout
    assert not core.read_node("worker-a").spec.unschedulable


def test_drain_honours_pdb_then_succeeds(kubeconfig: Path, core: client.CoreV1Api) -> None:
    blocked = kubectl(
        kubeconfig,
        "drain",
        "worker-a",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=2s",
        check=False,
        timeout=60,
    )
    assert blocked.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in blocked.stderr
    assert core.read_node("worker-a").spec.unschedulable is True
    names = {
        p.metadata.name
        for p in core.list_pod_for_all_namespaces(field_selector="spec.nodeName=worker-a").items
    }
    assert "web-7d4b9c8f5d-x2k9p" in names  # protected by the PDB
    assert "nightly-report-29396520-h5vbn" not in names  # finished Job pod was evicted
    kubectl(
        kubeconfig,
        "patch",
        "pdb",
        "web",
        "-n",
        "shop",
        "--type",
        "merge",
        "-p",
        '{"spec":{"minAvailable":1}}',
    )
    done = kubectl(
        kubeconfig,
        "drain",
        "worker-a",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=20s",
        timeout=60,
    )
    assert "node/worker-a drained" in done.stdout
    left = [
        p.metadata.name
        for p in core.list_pod_for_all_namespaces(field_selector="spec.nodeName=worker-a").items
    ]
    assert left == ["node-exporter-5xk2m"]  # DaemonSet pod ignored


def test_get_cronjobs_jobs_events(kubeconfig: Path) -> None:
    rows = _table(kubectl(kubeconfig, "get", "cronjobs", "-n", "shop").stdout)
    assert rows[0] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert rows[1][:4] == ["nightly-report", "0", "2", "*"] and "Europe/Berlin" in rows[1]
    jobs = _table(kubectl(kubeconfig, "get", "jobs", "-n", "shop").stdout)
    assert jobs[1][:3] == ["nightly-report-29396520", "Complete", "1/1"]
    events = kubectl(kubeconfig, "get", "events", "-A").stdout
    assert "NodeNotReady" in events and "node/worker-c" in events
    leases = kubectl(kubeconfig, "get", "leases", "-n", "kube-node-lease").stdout
    assert "HOLDER" in leases and "worker-c" in leases


def test_patch_strategic_merge_json(kubeconfig: Path, core: client.CoreV1Api) -> None:
    kubectl(kubeconfig, "patch", "node", "worker-b", "-p", '{"metadata":{"labels":{"team":"sre"}}}')
    assert core.read_node("worker-b").metadata.labels["team"] == "sre"
    kubectl(
        kubeconfig,
        "patch",
        "node",
        "worker-b",
        "--type",
        "merge",
        "-p",
        '{"metadata":{"labels":{"team":null}}}',
    )
    assert "team" not in core.read_node("worker-b").metadata.labels
    kubectl(
        kubeconfig,
        "patch",
        "deploy",
        "web",
        "-n",
        "shop",
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/replicas","value":5}]',
    )
    assert client.AppsV1Api(core.api_client).read_namespaced_deployment("web", "shop").spec.replicas == 5
    same = kubectl(
        kubeconfig, "patch", "node", "worker-b", "-p", '{"metadata":{"labels":{"kubernetes.io/os":"linux"}}}'
    )
    assert "(no change)" in same.stdout
    kubectl(kubeconfig, "taint", "node", "worker-b", "dedicated=db:NoSchedule")
    assert [t.key for t in core.read_node("worker-b").spec.taints] == ["dedicated"]
    kubectl(kubeconfig, "taint", "node", "worker-b", "dedicated-")
    assert not core.read_node("worker-b").spec.taints


def test_create_f_and_delete(kubeconfig: Path, core: client.CoreV1Api, tmp_path: Path) -> None:
    manifest = tmp_path / "objs.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: runbook-settings\n  namespace: shop\ndata:\n"
        "  mode: safe\n---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: cleanup\n  namespace: shop\n"
        "spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n"
        "        image: busybox:1.36\n"
    )
    out = kubectl(kubeconfig, "create", "-f", str(manifest)).stdout
    assert "configmap/runbook-settings created" in out and "job.batch/cleanup created" in out
    assert core.read_namespaced_config_map("runbook-settings", "shop").data == {"mode": "safe"}
    again = kubectl(kubeconfig, "create", "-f", str(manifest), check=False)
    assert again.returncode != 0 and "AlreadyExists" in again.stderr
    kubectl(kubeconfig, "delete", "configmap", "runbook-settings", "-n", "shop")
    assert (
        core.list_namespaced_config_map("shop", field_selector="metadata.name=runbook-settings").items == []
    )


def test_delete_on_dead_node_and_logs(kubeconfig: Path, core: client.CoreV1Api) -> None:
    kubectl(kubeconfig, "delete", "pod", "web-7d4b9c8f5d-r8w2c", "-n", "shop", "--wait=false")
    rows = _table(kubectl(kubeconfig, "get", "pods", "-n", "shop").stdout)
    assert next(r[:3] for r in rows if r[0].endswith("r8w2c")) == [
        "web-7d4b9c8f5d-r8w2c",
        "1/1",
        "Terminating",
    ]
    kubectl(kubeconfig, "delete", "pod", "web-7d4b9c8f5d-r8w2c", "-n", "shop", "--force", "--grace-period=0")
    with pytest.raises(client.ApiException):
        core.read_namespaced_pod("web-7d4b9c8f5d-r8w2c", "shop")
    logs = kubectl(kubeconfig, "logs", "-n", "shop", "web-7d4b9c8f5d-m4q7z", "--previous").stdout
    assert "out of memory" in logs


def test_get_json_and_not_found(kubeconfig: Path, sim: SimulatedCluster) -> None:
    node = json.loads(kubectl(kubeconfig, "get", "node", "worker-c", "-o", "json").stdout)
    assert node == sim.get("nodes", "worker-c")
    missing = kubectl(kubeconfig, "get", "pod", "nope", "-n", "shop", check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): pods "nope" not found' in missing.stderr
