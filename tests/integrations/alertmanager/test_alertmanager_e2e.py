"""The whole path with real parts: Alertmanager 0.25 -> `runbook serve` -> Slack (fake) thread -> Approve
click -> `k8s.node.cordon` against the simulated cluster -> verification posted -> alert resolved."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from engine.actions import ActionRegistry
from engine.builtins import register_builtins
from engine.loader import Loader
from integrations.alertmanager import register as register_alertmanager
from integrations.kubernetes import Kube, register
from integrations.kubesim import SimulatedCluster, load_scenario
from integrations.testing.server import WEBHOOK_TOKEN, Harness, make_engine, server_settings, wait_for
from integrations.testing.slack_fake import FakeSlack, flatten

ROOT = Path(__file__).resolve().parents[3]
ONCALL, BOB, MALLORY = "S0ONCALL", "U0BOB", "U0MALLORY"


@pytest.fixture
def sim() -> Iterator[SimulatedCluster]:
    with SimulatedCluster(objects=load_scenario(ROOT / "runbooks" / "scenarios" / "kubesim-basic.yaml")) as cluster:
        yield cluster


@pytest.fixture
def served(tmp_path: Path, sim: SimulatedCluster) -> Iterator[tuple[Harness, FakeSlack]]:
    kube = Kube.from_url(sim.url, "admin-token")
    registry = register_builtins(ActionRegistry())
    register(registry, kube)
    register_alertmanager(registry)
    runbook = Loader(registry).load_file(ROOT / "runbooks" / "node-not-ready.yaml")
    with FakeSlack(usergroups={ONCALL: [BOB]}) as fake:
        settings = server_settings(str(tmp_path / "runs.db"), fake.url, approvers=(ONCALL,))
        harness = Harness(make_engine(settings, registry, (runbook,)), fake).start()
        try:
            yield harness, fake
        finally:
            harness.close()
            kube.close()


def test_alert_to_cordon_through_real_alertmanager(served: tuple[Harness, FakeSlack], sim: SimulatedCluster,
                                                    alertmanager: Callable[[str, str], Any]) -> None:
    harness, fake = served
    am = alertmanager(f"{harness.url}/hooks/alertmanager", WEBHOOK_TOKEN)
    labels = {"alertname": "KubeNodeNotReady", "node": "worker-c", "severity": "critical", "namespace": "default"}
    am.fire(labels, {"summary": "worker-c not ready"})

    runs = wait_for(lambda: harness.engine.store.list_runs(), timeout=60, what="Alertmanager's webhook to start a run")
    run = harness.wait_status(runs[0].id, "awaiting_approval", timeout=60)
    assert run.params["node"] == "worker-c" and run.trigger["alert"]["labels"] == labels
    assert run.trigger["receiver"] == "runbook" and run.requester == "alertmanager"

    # The same node alerting again with another label set (new fingerprint) joins the same run.
    am.fire({**labels, "instance": "kube-state-metrics-2"})
    wait_for(lambda: len({a["fingerprint"] for a in harness.engine.store.alerts(run.id)}) == 2, timeout=60,
             what="the second alert attached to the run")
    assert len(harness.engine.store.list_runs()) == 1

    parent = wait_for(lambda: fake.parents(), timeout=30, what="the run's Slack message")[0]
    assert "Node NotReady" in flatten(parent) and "worker-c" in flatten(parent)
    card = wait_for(lambda: [m for m in fake.thread(parent.ts) if "Approval needed" in flatten(m)], timeout=30,
                    what="the approval card")[0]
    assert "Cordon worker-c" in flatten(card) and "spec.unschedulable: false -> true" in flatten(card)
    button = next(b for b in card.blocks if b["type"] == "actions")["elements"][0]
    value = json.loads(button["value"])
    assert value == {"run": run.id, "step": "cordon"}

    core = k8s.CoreV1Api(sim.api_client())
    assert not core.read_node("worker-c").spec.unschedulable  # nothing changed before the approval

    harness.click(MALLORY, value["run"], value["step"])  # not in S0ONCALL
    wait_for(lambda: [e for e in fake.ephemerals if e["user"] == MALLORY], what="the refusal")
    assert harness.run(run.id).status == "awaiting_approval"

    harness.click(BOB, value["run"], value["step"])
    done = harness.wait_status(run.id, "succeeded", timeout=60)
    assert core.read_node("worker-c").spec.unschedulable is True
    assert [c.target for c in done.mutations] and not any(c.dry_run for c in done.mutations)
    wait_for(lambda: "worker-c: cordoned" in fake.transcript(), timeout=30, what="the verification in the thread")

    am.resolve(labels)
    am.resolve({**labels, "instance": "kube-state-metrics-2"})
    wait_for(lambda: "Alert *KubeNodeNotReady* resolved" in fake.transcript(), timeout=60,
             what="the resolution in the thread")
    statuses = {(a["fingerprint"], a["status"]) for a in harness.engine.store.alerts(run.id)}
    assert {s for _, s in statuses} == {"firing", "resolved"}
    print(fake.transcript())
