"""`runbook scenario capture` against the simulator itself: capture -> serve -> the same `kubectl get` output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes import client
from kubesim_helpers import kubectl

from integrations.kubesim import SimulatedCluster

ROOT = Path(__file__).resolve().parents[3]
BASIC = ROOT / "runbooks" / "scenarios" / "kubesim-basic.yaml"
PASSWORD = "s3cr3t-Zq7vR2p-hunter2"
AGE = re.compile(r"\b\d+(?:s|m|h|d|y)(?:\d+(?:s|m|h|d))?\b")
KINDS = "pods,deployments,replicasets,statefulsets,jobs,cronjobs,pdb,configmaps,secrets"


def _capture(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "integrations.app.cli", "scenario", "capture", "--kubeconfig", str(kubeconfig),
               "--context", "kubesim", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _seed(sim: SimulatedCluster) -> None:
    core = client.CoreV1Api(sim.api_client())
    core.create_namespaced_secret("shop", client.V1Secret(
        metadata=client.V1ObjectMeta(name="db", annotations={
            "kubectl.kubernetes.io/last-applied-configuration": f'{{"data":{{"password":"{PASSWORD}"}}}}'}),
        string_data={"password": PASSWORD}))
    core.create_namespaced_config_map("shop", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="app", managed_fields=[client.V1ManagedFieldsEntry(
            manager="kubectl", operation="Update", api_version="v1", fields_type="FieldsV1", fields_v1={})]),
        data={"DATABASE_URL": f"postgres://app:{PASSWORD}@db:5432/app", "LOG_LEVEL": "info"}))


def _table(kubeconfig: Path, *args: str) -> str:
    return AGE.sub("<age>", kubectl(kubeconfig, *args).stdout)


def test_capture_then_serve_gives_the_same_kubectl_get(tmp_path: Path) -> None:
    out = tmp_path / "incident.yaml"
    with SimulatedCluster.from_files([BASIC]) as live:
        _seed(live)
        kc_live = live.write_kubeconfig(tmp_path / "live")
        before = _table(kc_live, "get", KINDS, "-n", "shop", "-o", "wide")
        nodes_before = _table(kc_live, "get", "nodes", "-o", "wide")
        logs_before = kubectl(kc_live, "logs", "-n", "shop", "web-7d4b9c8f5d-m4q7z", "--previous").stdout
        proc = _capture(kc_live, "-n", "shop", "-o", str(out))
        assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# kubesim-now: 2026-11-22T12:00:")
    assert PASSWORD not in text and "managedFields" not in text and "resourceVersion" not in text
    docs = [d for d in yaml.safe_load_all(text) if d]
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert set(secret) == {"apiVersion", "kind", "metadata"} and secret["metadata"]["name"] == "db"
    assert "[REDACTED:" in next(d for d in docs if d["kind"] == "ConfigMap")["data"]["DATABASE_URL"]
    with SimulatedCluster.from_files([out]) as replay:
        kc_replay = replay.write_kubeconfig(tmp_path / "replay")
        assert _table(kc_replay, "get", KINDS, "-n", "shop", "-o", "wide") == before
        assert _table(kc_replay, "get", "nodes", "-o", "wide") == nodes_before
        assert kubectl(kc_replay, "logs", "-n", "shop", "web-7d4b9c8f5d-m4q7z", "--previous").stdout == logs_before


def test_capture_of_named_objects_takes_what_they_own_and_select(tmp_path: Path) -> None:
    with SimulatedCluster.from_files([BASIC]) as live:
        kc = live.write_kubeconfig(tmp_path / "live")
        proc = _capture(kc, "-n", "shop", "deployment/web")
        assert proc.returncode == 0, proc.stderr
        kinds = sorted((d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(proc.stdout) if d)
        assert [k for k in kinds if k[0] not in ("Node", "Lease", "Event")] == [
            ("Deployment", "web"), ("Pod", "web-7d4b9c8f5d-m4q7z"), ("Pod", "web-7d4b9c8f5d-r8w2c"),
            ("Pod", "web-7d4b9c8f5d-x2k9p"), ("PodDisruptionBudget", "web"), ("ReplicaSet", "web-7d4b9c8f5d")]
        missing = _capture(kc, "-n", "shop", "deployment/nope")
        assert missing.returncode == 2 and "deployment/nope: not found in namespace shop" in missing.stderr
        assert "Traceback" not in missing.stderr
