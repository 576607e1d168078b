"""Two real `runbook serve` processes on one PostgreSQL database, one simulated cluster and one Slack:
duplicates from an Alertmanager pair, kill -9 mid-step, while awaiting approval and while a change is in
flight, and a double-clicked approval landing on both replicas."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from engine.records import RunRecord, RunStatus, StepStatus
from integrations.kubesim import SimulatedCluster, load_scenario
from integrations.postgres import PostgresStore
from integrations.testing.postgres import PostgresCluster
from integrations.testing.replicas import Replica
from integrations.testing.server import CHANNEL, SIGNING_SECRET, WEBHOOK_TOKEN, alert, wait_for
from integrations.testing.slack_fake import FakeSlack

ROOT = Path(__file__).resolve().parents[4]
NODE = "/api/v1/nodes/{}"
RUNBOOK = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: ha-cordon, title: Cordon a lost node, severity: critical}
params:
  node: {type: string, required: true}
  pause: {type: string, default: "0"}
triggers:
  alerts:
    - match: {alertname: NodeLost}
      params: {node: node, pause: pause}
policy: {approval_timeout: 30m}
steps:
  - id: look
    title: Look at the node slowly
    action: sleep
    with: {seconds: "{{ params.pause | float }}"}
  - id: cordon
    title: Cordon {{ params.node }}
    action: k8s.node.cordon
    with: {node: "{{ params.node }}"}
    proposal: {summary: "Cordon {{ params.node }}", reason: the node is lost, risk: low}
"""


class Cluster:
    """Everything two replicas share, and a way to read the database as a third party."""

    def __init__(self, tmp_path: Path, url: str, sim: SimulatedCluster, slack: FakeSlack) -> None:
        self.sim, self.slack, self.tmp_path = sim, slack, tmp_path
        runbook = tmp_path / "ha-cordon.yaml"
        runbook.write_text(RUNBOOK, encoding="utf-8")
        self.config = tmp_path / "runbook.yaml"
        self.config.write_text(yaml.safe_dump({
            "database_url": url, "runbook_path": [str(runbook)], "approvers": ["U0ALICE", "U0BOB"],
            "kubeconfig": str(sim.write_kubeconfig(tmp_path / "kubeconfig")), "slack_api_url": slack.url,
            "slack_channel": CHANNEL, "workers": 2, "run_lease": 3, "storm_window": 0}),  # a thread per run
            encoding="utf-8")
        self.env = {"RUNBOOK_SLACK_BOT_TOKEN": slack.token, "RUNBOOK_SLACK_SIGNING_SECRET": SIGNING_SECRET,
                    "RUNBOOK_WEBHOOK_TOKEN": WEBHOOK_TOKEN}
        self.store = PostgresStore(url, "observer/0/test", migrate=True, pool_size=2)
        self.replicas: list[Replica] = []

    def replica(self, name: str) -> Replica:
        replica = Replica(name, self.config, self.tmp_path, self.env).start()
        self.replicas.append(replica)
        return replica

    def run(self, run_id: str) -> RunRecord:
        return self.store.get_run(run_id)

    def wait_status(self, run_id: str, *statuses: str, timeout: float = 60) -> RunRecord:
        def reached() -> RunRecord | None:
            run = self.run(run_id)
            return run if run.status in statuses else None

        return wait_for(reached, timeout, f"run {run_id} to reach {statuses}", interval=0.1)

    def changes_sent(self, node: str = "worker-c") -> int:
        """Cordon PATCHes of `node` the API server received, its one dry-run (before the card) excluded."""
        return self.sim.requests[("PATCH", NODE.format(node))] - 1

    def close(self) -> None:
        for replica in self.replicas:
            replica.close()
        self.store.close()


@pytest.fixture
def cluster(tmp_path: Path, postgres: PostgresCluster) -> Iterator[Cluster]:
    scenario = load_scenario(ROOT / "runbooks" / "scenarios" / "kubesim-basic.yaml")
    with SimulatedCluster(objects=scenario) as sim, FakeSlack() as slack:
        shared = Cluster(tmp_path, postgres.new_database(), sim, slack)
        try:
            yield shared
        finally:
            shared.close()


def both(*calls: Any) -> list[Any]:
    """Run the calls at the same moment on separate threads; their results in order."""
    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def one(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def lost(pause: float = 0, node: str = "worker-c") -> dict[str, Any]:
    return alert("NodeLost", {"node": node, "pause": f"{pause:g}", "severity": "critical"})


def test_an_alert_pair_starts_one_run_and_a_double_click_is_one_decision(cluster: Cluster) -> None:
    a, b = cluster.replica("a"), cluster.replica("b")
    answers = both(lambda: a.post_alerts([lost()]).json(), lambda: b.post_alerts([lost()]).json())
    assert sorted(len(x["started"]) for x in answers) == [0, 1]
    assert sorted(len(x["deduplicated"]) for x in answers) == [0, 1]
    run_id = next(x["started"][0]["run_id"] for x in answers if x["started"])
    cluster.wait_status(run_id, "awaiting_approval")
    clicks = both(lambda: a.click("U0ALICE", run_id, "cordon", approve=True, nonce="1"),
                  lambda: b.click("U0BOB", run_id, "cordon", approve=False, nonce="2"))
    assert [c.status_code for c in clicks] == [200, 200]
    run = cluster.wait_status(run_id, "succeeded", "rejected")
    decisions = cluster.store.decisions(run_id)
    assert len(decisions) == 1
    assert run.status == ("succeeded" if decisions[0].decision == "approved" else "rejected")
    assert cluster.changes_sent() == (1 if run.status == "succeeded" else 0)
    wait_for(lambda: cluster.store.outbox_pending() == 0, what="chat delivered")
    assert len(cluster.slack.parents(CHANNEL)) == 1  # one thread, not one per replica
    texts = [m.text for m in cluster.slack.messages]
    assert len(texts) == len(set(texts)), "a Slack message was posted twice"


def test_kill_9_mid_step_another_replica_carries_the_run_and_approves_from_the_old_card(
        cluster: Cluster) -> None:
    a, b = cluster.replica("a"), cluster.replica("b")
    run_id = a.post_alerts([lost(pause=12)]).json()["started"][0]["run_id"]
    wait_for(lambda: any(s.id == "look" and s.status == StepStatus.RUNNING for s in cluster.run(run_id).steps),
             what="the slow step to start")
    wait_for(lambda: cluster.store.chat_message(run_id, "parent"), what="the run's thread, posted and recorded")
    a.kill()
    run = cluster.wait_status(run_id, "awaiting_approval", timeout=90)  # b re-runs the 12 s look
    actions = [(e.actor, e.action) for e in cluster.store.audit_log(run_id)]
    assert ("engine", "run.taken_over") in actions and ("engine", "run.interrupted") not in actions
    assert cluster.changes_sent() == 0
    assert b.click("U0ALICE", run_id, "cordon").status_code == 200  # the card replica a posted
    run = cluster.wait_status(run_id, "succeeded")
    assert cluster.changes_sent() == 1 and len(run.mutations) == 1
    wait_for(lambda: cluster.store.outbox_pending() == 0, what="chat delivered")
    assert len(cluster.slack.parents(CHANNEL)) == 1


def test_kill_9_while_awaiting_approval_then_while_the_change_is_in_flight(cluster: Cluster) -> None:
    a, b = cluster.replica("a"), cluster.replica("b")
    run_id = a.post_alerts([lost()]).json()["started"][0]["run_id"]
    cluster.wait_status(run_id, "awaiting_approval")
    a.kill()  # nothing is lost: the approval is in the database
    assert b.click("U0ALICE", run_id, "cordon").status_code == 200
    cluster.wait_status(run_id, "succeeded")
    assert cluster.changes_sent() == 1

    # a second run, approved on b while the API server holds the cordon for 8 s; b dies meanwhile
    c = cluster.replica("c")
    run_id = c.post_alerts([lost(node="worker-b")]).json()["started"][0]["run_id"]
    cluster.wait_status(run_id, "awaiting_approval")
    cluster.sim.faults.add(path=NODE.format("worker-b") + "$", method="PATCH", latency=8.0)
    assert b.click("U0ALICE", run_id, "cordon").status_code == 200
    wait_for(lambda: any(s.id == "cordon" and s.status == StepStatus.RUNNING for s in cluster.run(run_id).steps),
             what="the approved change to be under way")
    b.kill()
    run = cluster.wait_status(run_id, "succeeded", timeout=60)  # c re-read the node once the held cordon landed
    assert [c.outcome for c in run.mutations] == ["applied"]  # (test_replica_takeover.py: applied / not applied)
    assert cluster.changes_sent("worker-b") == 1  # sent once: c never re-sends it


def test_a_rolling_restart_during_a_burst_loses_nothing_and_posts_nothing_twice(cluster: Cluster) -> None:
    replicas = [cluster.replica("a"), cluster.replica("b")]
    acknowledged: list[str] = []
    stop = threading.Event()

    def burst() -> None:  # as Alertmanager: each alert re-sent to the next replica until one acknowledges it
        i = 0
        while not stop.is_set():
            node = f"n{i}"
            for attempt in range(200):
                replica = replicas[(i + attempt) % len(replicas)]
                try:
                    if replica.post_alerts([lost(node=node)]).status_code == 200:
                        acknowledged.append(node)
                        break
                except httpx.TransportError:
                    pass
                stop.wait(0.05)
            i += 1
            stop.wait(0.1)

    sender = threading.Thread(target=burst)
    sender.start()
    try:
        for i, name in enumerate(("a2", "b2")):  # stop one, start its successor, repeat
            wait_for(lambda i=i: len(acknowledged) >= 5 * (i + 1), what="alerts flowing")  # type: ignore[misc]
            assert replicas[i].stop() is not None, replicas[i].log()[-2000:]
            replicas[i] = cluster.replica(name)
        wait_for(lambda: len(acknowledged) >= 15, what="alerts after the restarts")
    finally:
        stop.set()
        sender.join(60)
    runs = {r.params["node"]: r for r in cluster.store.list_runs(limit=1000)}
    assert set(acknowledged) <= set(runs), "an acknowledged alert has no run"
    wait_for(lambda: all(RunStatus(cluster.run(r.id).status).finished or cluster.run(r.id).status ==
                         "awaiting_approval" for r in runs.values()), timeout=90, what="every run to settle")
    wait_for(lambda: cluster.store.outbox_pending() == 0, timeout=60, what="chat delivered")
    assert len(cluster.slack.parents(CHANNEL)) == len(runs)  # one thread per run, none posted twice
    replies = [(m.thread_ts, m.text, json.dumps(m.blocks, sort_keys=True)) for m in cluster.slack.messages
               if m.thread_ts is not None]
    twice = [r for r in set(replies) if replies.count(r) > 1]
    assert not twice, f"a Slack reply was posted twice: {twice[:3]}"
