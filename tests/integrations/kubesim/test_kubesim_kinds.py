"""The simulator serves any built-in kind from its discovery data, and custom resources whose
CustomResourceDefinition is in the scenario; anything else is a clear load error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client
from kubesim_helpers import kubectl

from engine.loader import Loader
from integrations.app.rehearsal import collect, rehearse
from integrations.app.wiring import build_registry
from integrations.kubesim import ScenarioError, SimulatedCluster, parse_scenario

ROOT = Path(__file__).resolve().parents[3]

BUILTINS = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
status: {currentReplicas: 3, desiredReplicas: 3}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data-db-0, namespace: shop}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 10Gi}}, storageClassName: gp3}
status: {phase: Bound}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-1}
spec: {capacity: {storage: 10Gi}, accessModes: [ReadWriteOnce], storageClassName: gp3}
status: {phase: Bound}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: gp3}
provisioner: ebs.csi.aws.com
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec: {rules: [{host: shop.example.com}]}
"""

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: blue, namespace: shop}
spec: {size: 3}
status: {ready: true}
"""


def test_builtin_kinds_are_served(tmp_path: Path) -> None:
    with SimulatedCluster(objects=parse_scenario(BUILTINS)) as sim:
        api = sim.api_client()
        hpa = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler("web", "shop")
        assert hpa.spec.max_replicas == 10 and hpa.status.current_replicas == 3
        assert client.StorageV1Api(api).read_storage_class("gp3").provisioner == "ebs.csi.aws.com"
        kc = sim.write_kubeconfig(tmp_path / "kc")
        names = kubectl(kc, "get", "hpa,pvc,ingress", "-n", "shop", "-o", "name").stdout.split()
        assert names == ["horizontalpodautoscaler.autoscaling/web", "persistentvolumeclaim/data-db-0",
                         "ingress.networking.k8s.io/web"]
        assert kubectl(kc, "get", "pv,sc", "-o", "name").stdout.split() == [
            "persistentvolume/pv-1", "storageclass.storage.k8s.io/gp3"]
        hpa_row = kubectl(kc, "get", "hpa", "-n", "shop").stdout.splitlines()[1].split()
        assert hpa_row[:6] == ["web", "Deployment/web", "cpu:", "<unknown>/70%", "2", "10"]  # printers.go columns
        sc_row = kubectl(kc, "get", "sc").stdout.splitlines()[1].split()
        assert sc_row[:5] == ["gp3", "ebs.csi.aws.com", "Delete", "Immediate", "false"]


def test_custom_resources_of_a_scenario_crd_are_served(tmp_path: Path) -> None:
    with SimulatedCluster(objects=parse_scenario(CRD)) as sim:
        custom = client.CustomObjectsApi(sim.api_client())
        blue = custom.get_namespaced_custom_object("example.com", "v1", "shop", "widgets", "blue")
        assert blue["spec"] == {"size": 3} and blue["status"] == {"ready": True}
        red = custom.create_namespaced_custom_object("example.com", "v1", "shop", "widgets", {
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "red"},
            "spec": {"size": 1}, "status": {"ready": True}})
        assert "status" not in red and red["metadata"]["generation"] == 1  # status only via /status
        kc = sim.write_kubeconfig(tmp_path / "kc")
        assert kubectl(kc, "get", "wg", "-n", "shop", "-o", "name").stdout.split() == [
            "widget.example.com/blue", "widget.example.com/red"]


def test_a_crd_created_through_the_api_is_established_and_served() -> None:
    crd, _ = parse_scenario(CRD)
    with SimulatedCluster() as sim:
        ext = client.ApiextensionsV1Api(sim.api_client())
        ext.create_custom_resource_definition(json.loads(json.dumps(crd)))
        stored = ext.read_custom_resource_definition("widgets.example.com")
        assert {c.type: c.status for c in stored.status.conditions} == {"NamesAccepted": "True",
                                                                        "Established": "True"}
        custom = client.CustomObjectsApi(sim.api_client())
        custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", {
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
        assert sim.get("widgets.example.com", "w", "default")["kind"] == "Widget"


def test_a_kind_without_its_crd_is_a_load_error_with_file_and_line() -> None:
    foo = "apiVersion: example.com/v1\nkind: Foo\nmetadata: {name: x}\n"
    text = "# a scenario\n" + BUILTINS.split("---")[0] + "---\n" + foo
    objects = parse_scenario(text, "scenario.yaml")
    with pytest.raises(ScenarioError) as err:
        SimulatedCluster(objects=objects)
    line = text.splitlines().index("apiVersion: example.com/v1") + 1
    assert str(err.value) == (f"scenario.yaml:{line}: kind Foo (example.com/v1) has no CustomResourceDefinition "
                              "in this scenario")
    with pytest.raises(ScenarioError, match=r"kind Gizmo \(apps/v1\) is not served by kubesim"):
        SimulatedCluster(objects=parse_scenario("apiVersion: apps/v1\nkind: Gizmo\nmetadata: {name: g}\n"))


def test_runbook_test_reports_an_unservable_scenario_as_a_fail_row(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "runbooks" / "scenarios" / "node-not-ready", tmp_path / "scenarios" / "node-not-ready")
    shutil.copy(ROOT / "runbooks" / "node-not-ready.yaml", tmp_path)
    scenario = tmp_path / "scenarios" / "node-not-ready" / "kubelet-stopped.yaml"
    original = scenario.read_text(encoding="utf-8").rstrip()
    scenario.write_text(original + "\n---\napiVersion: example.com/v1\nkind: Foo\nmetadata: {name: x}\n")
    line = len(original.splitlines()) + 2
    case_name = "kubelet stopped posting status"
    command = [sys.executable, "-m", "integrations.app.cli", "test", str(tmp_path), "-k", case_name]
    proc = subprocess.run(command,
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={"COLUMNS": "500", "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert "FAIL" in proc.stdout and "0 passed, 1 failed" in proc.stdout
    assert "kind Foo (example.com/v1) has no CustomResourceDefinition in this scenario" in proc.stdout
    cases, _ = collect([tmp_path], Loader(build_registry()))
    (case,) = [c for c in cases if c.test.name.startswith(case_name)]
    assert rehearse(case).failures == [
        f"scenario: {scenario}:{line}: kind Foo (example.com/v1) has no CustomResourceDefinition in this scenario"]
