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
            quiet = [s for s in harness.engine.store.get_run(run_id).steps if s.status in ("succeeded", "skipped")]
            assert quiet and not fake.find(lambda m: any(f"`{s.action}` · " in flatten(m) for s in quiet))
        finally:
            harness.close()


def test_chat_detail_steps_posts_one_reply_per_finished_step(tmp_path: Path) -> None:
    """`chat_detail: steps` keeps a log in the run's thread: each finished step is one reply (headline, what it
    found or said), beside the digest's diagnosis and card; the proposed step's reply is its card."""
    with SimulatedCluster(objects=load_scenario(SCENARIO)) as sim, Kube.from_url(sim.url, SIM_TOKEN) as kube, \
            FakeSlack() as fake:
        settings = server_settings(str(tmp_path / "runs.db"), fake.url, approvers=[ALICE], chat_detail="steps",
                                   runbook_path=[str(ROOT / "runbooks" / "node-not-ready.yaml")])
        harness = Harness(make_engine(settings, build_registry(kube)), fake).start()
        try:
            labels = {"node": "node-b", "severity": "critical"}
            run_id = harness.post_alerts([alert("KubeNodeNotReady", labels)]).json()["started"][0]["run_id"]
            harness.wait_status(run_id, "awaiting_approval")
            wait_for(lambda: fake.find(lambda m: m.text.startswith("Approval needed")) and _drained(harness),
                     what="the approval card, and the outbox to drain")
            run = harness.engine.store.get_run(run_id)
            finished = [s for s in run.steps if s.status != "proposed"]
            thread = fake.thread(fake.parents(CHANNEL)[0].ts)
            logged = [m for m in thread if m.text.startswith("step ")]
            assert len(finished) >= 3 and len(logged) == len(finished)
            for step, message in zip(finished, logged, strict=True):
                assert message.text == f"step {step.title or step.id}: {step.status}"
                assert f"`{step.action}` · {step.status}" in flatten(message)
                assert len(message.blocks) <= 50 and all(len(json.dumps(b)) < 3200 for b in message.blocks)
            assert [m.text.split(" ")[0] for m in thread if m not in logged] == ["Diagnosis", "Approval"]
            node = next(m for m in logged if "`k8s.node.inspect`" in flatten(m))
            assert ":red_circle:" in flatten(node) or ":large_orange_circle:" in flatten(node)
            assert all("```" not in flatten(m) or "\\n" not in flatten(m) for m in logged)  # real newlines
        finally:
            harness.close()
