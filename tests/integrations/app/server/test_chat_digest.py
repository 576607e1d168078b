"""The chat digest over real sockets: node-not-ready over the simulated cluster, Slack through the fake.
Before the first approval the thread holds the parent, the diagnosis and the card, not a message per step."""

from __future__ import annotations

import json
from pathlib import Path

from widgets import ALICE

from integrations.app.clusters import SIM_TOKEN
from integrations.app.wiring import build_registry
from integrations.kubernetes.client import Kube
from integrations.kubesim import SimulatedCluster, load_scenario
from integrations.testing.server import CHANNEL, Harness, alert, make_engine, server_settings, wait_for
from integrations.testing.slack_fake import FakeSlack, flatten

ROOT = Path(__file__).resolve().parents[4]
SCENARIO = ROOT / "runbooks" / "scenarios" / "node-not-ready" / "kubelet-stopped.yaml"


def _drained(harness: Harness) -> bool:
    return harness.slack is not None and harness.slack.outbox.pending() == 0


def test_node_not_ready_reads_as_a_digest(tmp_path: Path) -> None:
    with SimulatedCluster(objects=load_scenario(SCENARIO)) as sim, Kube.from_url(sim.url, SIM_TOKEN) as kube, \
            FakeSlack() as fake:
        settings = server_settings(str(tmp_path / "runs.db"), fake.url, public_url="https://runbook.example",
                                   approvers=[ALICE], runbook_path=[str(ROOT / "runbooks" / "node-not-ready.yaml")])
        harness = Harness(make_engine(settings, build_registry(kube)), fake).start()
        try:
            labels = {"node": "node-b", "severity": "critical", "cluster": "prod-eu"}
            run_id = harness.post_alerts([alert("KubeNodeNotReady", labels)]).json()["started"][0]["run_id"]
            harness.wait_status(run_id, "awaiting_approval")
            wait_for(lambda: fake.find(lambda m: m.text.startswith("Approval needed")) and _drained(harness),
                     what="the approval card, and the outbox to drain")
            posts = fake.calls("chat.postMessage")
            size = sum(len(json.dumps(p.params.get("blocks"))) for p in posts)
            print(f"before the first approval: {len(posts)} messages, {size} bytes of blocks")
            parent = fake.parents(CHANNEL)[0]
            thread = fake.thread(parent.ts)
            assert len(posts) == 3 and [m.text.split(" ")[0] for m in thread] == ["Diagnosis", "Approval"]
            assert size < 6000
            top, diagnosis = flatten(parent), flatten(thread[0])
            assert parent.edits >= 1 and ":raising_hand: awaiting approval" in top and "`prod-eu`" in top
            assert "1. :raising_hand: Cordon node-b" in top and "<https://runbook.example/runs/" in top
            assert "|Source>" in top and "|Silence>" in top and "many_nodes_percent=30" in top
            assert "`kubectl get node node-b -o yaml`" in diagnosis and "\\n" not in diagnosis
        finally:
            harness.close()
