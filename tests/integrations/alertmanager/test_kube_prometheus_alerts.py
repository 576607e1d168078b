"""kube-prometheus-stack alerts, with the labels the kubernetes-mixin rules give them, sent by a real
Alertmanager: each starts the one runbook that owns it, with params resolved from its labels (an owner
lookup for KubeJobFailed in billing), and an alert for another cluster starts nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from integrations.app.wiring import build_registry
from integrations.kubernetes import Kube
from integrations.kubesim import SimulatedCluster, load_scenario
from integrations.testing.server import WEBHOOK_TOKEN, Harness, alert, make_engine, server_settings, wait_for

ROOT = Path(__file__).resolve().parents[3]
KSM = {"job": "kube-state-metrics", "service": "kube-state-metrics", "endpoint": "http",
       "instance": "10.244.1.12:8080", "prometheus": "monitoring/k8s", "severity": "warning", "cluster": "prod-eu"}

# alert labels (as the kubernetes-mixin rules produce them) -> (runbook, params)
CASES: list[tuple[dict[str, str], str, dict[str, Any]]] = [
    ({**KSM, "alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "checkout-7f5c8d9b6-k2x9q",
      "container": "app", "uid": "0b7c"}, "pod-crashloop", {"namespace": "shop", "pod": "checkout-7f5c8d9b6-k2x9q"}),
    ({**KSM, "alertname": "KubeDeploymentRolloutStuck", "namespace": "shop", "deployment": "checkout",
      "condition": "Progressing", "status": "false", "reason": "ProgressDeadlineExceeded"},
     "deployment-rollback", {"namespace": "shop", "deployment": "checkout"}),
    ({**KSM, "alertname": "KubeDeploymentReplicasMismatch", "namespace": "shop", "deployment": "cart"},
     "deployment-rollback", {"namespace": "shop", "deployment": "cart"}),
    ({**KSM, "job": "kubelet", "metrics_path": "/metrics", "node": "node-a",
      "alertname": "KubePersistentVolumeFillingUp", "namespace": "data", "persistentvolumeclaim": "orders-db"},
     "pvc-pending-or-full", {"namespace": "data", "pvc": "orders-db", "signal": "filling"}),
    ({**KSM, "alertname": "KubePersistentVolumeErrors", "persistentvolume": "pvc-09e596e4", "phase": "Failed"},
     "pvc-pending-or-full", {"pv": "pvc-09e596e4"}),
    ({**KSM, "alertname": "KubeHpaMaxedOut", "namespace": "shop", "horizontalpodautoscaler": "checkout"},
     "hpa-maxed", {"namespace": "shop", "hpa": "checkout"}),
    ({**KSM, "alertname": "KubeJobFailed", "namespace": "data", "job_name": "import-invoices-7731",
      "condition": "true"}, "job-failed", {"namespace": "data", "job": "import-invoices-7731"}),
    ({**KSM, "alertname": "KubeJobNotCompleted", "namespace": "data", "job_name": "train-embeddings-118"},
     "job-failed", {"namespace": "data", "job": "train-embeddings-118"}),
    ({**KSM, "alertname": "KubeJobFailed", "namespace": "billing", "job_name": "billing-monthly-29921850",
      "condition": "true"}, "billing-cronjob-failed", {"namespace": "billing", "cronjob": "billing-monthly"}),
    ({**KSM, "alertname": "KubeNodeNotReady", "node": "node-b", "condition": "Ready", "status": "true"},
     "node-not-ready", {"node": "node-b"}),
]


@pytest.fixture
def sim() -> Iterator[SimulatedCluster]:
    """The billing scenario: the Job KubeJobFailed names, owned by its CronJob."""
    objects = load_scenario(ROOT / "runbooks" / "scenarios" / "billing-cronjob-failed" / "exit-code.yaml")
    with SimulatedCluster(objects=objects) as cluster:
        yield cluster


@pytest.fixture
def served(tmp_path: Path, sim: SimulatedCluster) -> Iterator[Harness]:
    kube = Kube.from_url(sim.url, "admin-token")
    registry = build_registry(kube)
    settings = server_settings(str(tmp_path / "runs.db"), None, cluster_name="prod-eu",
                               runbook_path=(str(ROOT / "runbooks"),))
    engine = make_engine(settings, registry, kube=kube)
    assert len(engine.catalog.runbooks) >= 8 and not engine.catalog.problems, engine.catalog.problems
    harness = Harness(engine, None).start()
    try:
        yield harness
    finally:
        harness.close()
        kube.close()


def test_each_alert_starts_the_runbook_that_owns_it(served: Harness, alertmanager: Callable[[str, str], Any]) -> None:
    am = alertmanager(f"{served.url}/hooks/alertmanager", WEBHOOK_TOKEN)
    for labels, _, _ in CASES:
        am.fire(labels, {"summary": labels["alertname"]})
    am.fire({**KSM, "alertname": "KubeNodeNotReady", "node": "node-z", "cluster": "prod-us"})

    def unmatched() -> list[Any]:
        return [e for e in served.engine.store.audit_log() if e.action == "alert.unmatched"]

    wait_for(lambda: len(served.engine.store.list_runs()) >= len(CASES) and unmatched(), timeout=90,
             what="a run for each alert and the other cluster's alert refused")
    time.sleep(1.5)  # Alertmanager dispatches groups in parallel: give a stray second run time to show
    runs = served.engine.store.list_runs()
    got = sorted((r.trigger["alert"]["labels"]["alertname"], r.runbook, r.params, r.trigger.get("cluster"))
                 for r in runs)
    want = sorted((labels["alertname"], runbook, params, "prod-eu") for labels, runbook, params in CASES)
    by_name = {(a, rb): (p, c) for a, rb, p, c in got}
    for alertname, runbook, params, cluster in want:
        run_params, run_cluster = by_name[(alertname, runbook)]
        assert {k: run_params[k] for k in params} == params, (alertname, run_params)
        assert run_cluster == cluster
    assert len(runs) == len(CASES)  # one runbook per alert: no deployment-rollback beside pod-crashloop
    assert [e.detail["reason"] for e in unmatched()] == ["other-cluster"]


def test_a_slow_cluster_defers_owner_lookups_instead_of_stalling_the_server(served: Harness,
                                                                            sim: SimulatedCluster) -> None:
    """Owner lookups run on the server's event loop: one webhook's lookups share a small time budget, and the
    alerts left when it is spent are deferred (503 + Retry-After), so Alertmanager re-sends them."""
    sim.faults.add(path="/jobs/", method="GET", latency=1.0)  # every Job read takes a second
    alerts = [alert("KubeJobFailed", {**KSM, "namespace": "billing", "job_name": "billing-monthly-29921850",
                                      "pod": f"exporter-{i}"}) for i in range(6)]
    response = served.post_alerts(alerts)
    body = response.json()
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert body["started"] or body["deduplicated"]  # the first lookups fit in the budget
    assert body["deferred"] and all("budget" in d["reason"] for d in body["deferred"])
    assert len(body["started"]) + len(body["deduplicated"]) + len(body["deferred"]) == 6
