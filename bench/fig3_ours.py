"""Figure 3, our side: Alertmanager -> `runbook serve` (create_app on uvicorn, via `integrations.testing.server.
Harness`) -> the Slack fake, against a generated simulated cluster.

For each alert (one distinct NotReady node each, so dedup never merges them) we record the time of its
POST to Alertmanager and the Slack fake's receive times of the run's first message (the parent message
naming the node) and of the verdict (the approval card or the run-finished message). Alerts are fired
one after another `spacing` seconds apart, open loop (we do not wait for a run before firing the next).

`RUNBOOK_BENCH_FIG3_CHAT_DETAIL=steps` runs the server with a reply per finished step, the chat of trees
before the digest: their "verdict" is then the first step reply that says "succeeded", so only with the same
chat on both sides does `bench.compare` against such a tree compare the same message.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from bench.common import RUNBOOKS, SIM_TOKEN, progress
from engine.actions import ActionRegistry
from engine.builtins import register_builtins
from engine.loader import Loader
from engine.settings import Settings
from integrations.alertmanager import register as register_alertmanager
from integrations.kubernetes import Kube, register
from integrations.kubesim import SimulatedCluster, generate_cluster
from integrations.testing.alertmanager import Alertmanager
from integrations.testing.server import WEBHOOK_TOKEN, Harness, make_engine, server_settings
from integrations.testing.slack_fake import FakeSlack, Recorded

VERDICT_MARKERS = ("Approval needed", "finished", "succeeded", "failed")
CHAT_DETAIL = os.environ.get("RUNBOOK_BENCH_FIG3_CHAT_DETAIL", "digest")


def node_names(count: int, total: int) -> list[str]:
    width = max(5, len(str(total - 1)))
    step = max(1, total // count)
    return [f"node-{i * step:0{width}d}" for i in range(count)]


def first_times(fake: FakeSlack, nodes: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Per node: when the Slack fake received its run's first message and its verdict message."""
    first: dict[str, float] = {}
    verdict: dict[str, float] = {}
    thread_of: dict[str, str] = {}
    wanted = set(nodes)
    with fake._lock:  # the fake appends from its server threads
        recorded: list[Recorded] = list(fake.requests)
        posted = list(fake.messages)
    for message in posted:  # parent messages name the node; thread replies carry the parent's ts
        if message.thread_ts is None:
            for node in wanted:
                if node in message.text or node in json.dumps(message.blocks):
                    thread_of[message.ts] = node
    for call in recorded:
        if call.method not in ("chat.postMessage", "chat.update") or call.status != 200:
            continue
        body = json.dumps(call.params)
        node = thread_of.get(str(call.params.get("thread_ts") or "")) or next((n for n in wanted if n in body), None)
        if node is None:
            continue
        first.setdefault(node, call.at)
        if any(marker in body for marker in VERDICT_MARKERS):
            verdict.setdefault(node, call.at)
    return first, verdict


def measure(alerts: int = 100, nodes: int = 1000, pods_per_node: int = 5, spacing: float = 0.1,
            timeout: float = 60.0) -> dict[str, object]:
    targets = node_names(alerts, nodes)
    progress(f"fig3 ours: generating {nodes} nodes, {len(targets)} NotReady")
    objects = generate_cluster(nodes=nodes, pods_per_node=pods_per_node, not_ready=targets)
    with tempfile.TemporaryDirectory() as name, SimulatedCluster(objects=objects) as sim, \
            FakeSlack(rate_limits=False) as fake:  # the engine's latency, as for the peer; Slack's pacing: fig 9
        tmp = Path(name)
        kube = Kube.from_url(sim.url, SIM_TOKEN)
        registry = register_builtins(ActionRegistry())
        register(registry, kube)
        register_alertmanager(registry)
        runbook = Loader(registry).load_file(RUNBOOKS / "node-not-ready.yaml")
        settings = server_settings(str(tmp / "runs.db"), fake.url, workers=Settings().workers,
                                   chat_detail=CHAT_DETAIL)
        harness = Harness(make_engine(settings, registry, (runbook,)), fake, settle_heap=True).start()
        am = Alertmanager(tmp / "am", f"{harness.url}/hooks/alertmanager", WEBHOOK_TOKEN, send_resolved=False,
                          repeat_interval="1h").start()
        try:
            sent: dict[str, float] = {}
            for node in targets:
                sent[node] = am.fire({"alertname": "KubeNodeNotReady", "node": node, "severity": "critical"})
                time.sleep(spacing)
            deadline = time.monotonic() + timeout
            while True:
                first, verdict = first_times(fake, targets)
                if len(verdict) == len(targets) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            workers = settings.workers
        finally:
            am.stop()
            harness.close()
            kube.close()
    return {"sent": sent, "first": first, "verdict": verdict, "workers": workers, "chat_detail": CHAT_DETAIL}
