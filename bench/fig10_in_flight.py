"""Figure 10, a change in flight: kill -9 the replica executing an approved cordon, alternately after the PATCH
reached the API server (held 2 s there, then applied) and before it was sent (the read before it held),
and time until the other replica records its verdict (`run.taken_over` with `outcome`); each verdict is
checked against the simulator (node cordoned iff `applied`) and the cordons it received are counted.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from bench.common import Row, percentile, progress
from engine.records import RunStatus
from integrations.kubesim import SimulatedCluster
from integrations.kubesim.generator import generate_cluster
from integrations.postgres import PostgresStore
from integrations.testing.postgres import PostgresCluster
from integrations.testing.replicas import Replica
from integrations.testing.server import CHANNEL, SIGNING_SECRET, WEBHOOK_TOKEN, alert, wait_for
from integrations.testing.slack_fake import FakeSlack

GRACE = 10.0  # change_landing_grace for the figure (default 60 s: the API server's request timeout)
RUNBOOK = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: bench-in-flight, title: Cordon a lost node, severity: critical}
params:
  node: {type: string, required: true}
triggers:
  alerts:
    - match: {alertname: NodeLost}
      params: {node: node}
steps:
  - id: cordon
    title: Cordon {{ params.node }}
    action: k8s.node.cordon
    with: {node: "{{ params.node }}"}
    timeout: 10s
    proposal: {summary: "Cordon {{ params.node }}", reason: the node is lost, risk: low}
"""


def _config(work: Path, url: str, sim: SimulatedCluster, slack: FakeSlack) -> Path:
    (work / "runbook.yaml").write_text(RUNBOOK, encoding="utf-8")
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "database_url": url, "runbook_path": [str(work / "runbook.yaml")], "approvers": ["U0ALICE"],
        "kubeconfig": str(sim.write_kubeconfig(work / "kubeconfig")), "slack_api_url": slack.url,
        "slack_channel": CHANNEL, "workers": 2, "change_landing_grace": GRACE}), encoding="utf-8")
    return config


def _one(sim: SimulatedCluster, store: PostgresStore, replicas: list[Replica], i: int) -> tuple[str, float, bool, int]:
    """Kill the executing replica once: (verdict, seconds from kill to verdict, verdict true?, cordons sent)."""
    node, executing = f"node-{i:05d}", replicas[i % 2]
    path = f"/api/v1/nodes/{node}"
    run_id = executing.post_alerts([alert("NodeLost", {"node": node})]).json()["started"][0]["run_id"]
    wait_for(lambda: store.get_run(run_id).status == RunStatus.AWAITING_APPROVAL, 60, "the approval card")
    in_flight = i % 2 == 0
    held = sim.faults.add(path=path + "$", method="PATCH" if in_flight else "GET", latency=2.0 if in_flight else 6.0,
                          times=1)
    executing.click("U0ALICE", run_id, "cordon")
    wait_for(lambda: held.hits == 1, 30, "the held request")
    executing.kill()
    killed = time.time()
    entry = wait_for(lambda: next((e for e in store.audit_log(run_id) if e.action == "run.taken_over"), None), 120,
                     "the verdict")
    executing.start()
    verdict = str(entry.detail.get("outcome"))
    time.sleep(2.5)  # the held cordon, if any, has landed by now
    cordoned = bool(((sim.get("Node", node) or {}).get("spec") or {}).get("unschedulable"))
    sent = sim.requests[("PATCH", path)] - 1  # its dry-run excluded
    return verdict, entry.at - killed, cordoned == (verdict == "applied"), sent


def in_flight(pg: PostgresCluster, kills: int, work: Path) -> list[tuple[str, float, bool, int]]:
    url = pg.new_database()
    store = PostgresStore(url, "bench/0/observer", migrate=True, pool_size=2)
    with SimulatedCluster(objects=generate_cluster(kills + 2, 2)) as sim, FakeSlack() as slack:
        config = _config(work, url, sim, slack)
        env = {"RUNBOOK_SLACK_BOT_TOKEN": slack.token, "RUNBOOK_SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "RUNBOOK_WEBHOOK_TOKEN": WEBHOOK_TOKEN}
        # named as pods on different nodes are: the lease (10 s) must lapse, no same-host shortcut
        replicas = [Replica(name, config, work, {**env, "RUNBOOK_REPLICA_NAME": f"bench-{name}"}).start()
                    for name in ("a", "b")]
        results = []
        try:
            for i in range(kills):
                results.append(_one(sim, store, replicas, i))
                progress(f"fig10: kill {i + 1}/{kills}: {results[-1][0]} after {results[-1][1]:.1f} s")
        finally:
            for replica in replicas:
                replica.close()
            store.close()
    return results


def run(kills: int = 6) -> list[Row]:
    with PostgresCluster(fsync=True) as pg, tempfile.TemporaryDirectory() as tmp:
        results = in_flight(pg, kills, Path(tmp))
    rows = []
    for outcome, held in (("applied", "the cordon held 2 s at the API server"),
                          ("not applied", "killed before sending")):
        times = [t for verdict, t, _, _ in results if verdict == outcome]
        rows.append(Row(f"10. change in flight, kill -9 -> verdict '{outcome}' (p50)", percentile(times, 50), "s",
                        note=f"{held}; max {max(times, default=float('nan')):.1f} s over {len(times)} kills; "
                             f"run_lease 10 s, step timeout 10 s, change_landing_grace {GRACE:g} s"))
    wrong = sum(not true for _, _, true, _ in results)
    twice = sum(sent > 1 for _, _, _, sent in results)
    rows.append(Row("10. verdicts contradicting the cluster, or cordons sent twice", float(wrong + twice), "runs",
                    target="0", met=wrong + twice == 0,
                    note=f"{len(results)} kills: {wrong} wrong verdicts, {twice} cordons sent twice"))
    return rows
