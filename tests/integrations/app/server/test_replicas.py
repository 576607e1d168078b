"""Two real `runbook serve` processes on one PostgreSQL database, one simulated cluster and one Slack, fed
by a real Alertmanager HA pair (Debian's 0.25, two gossiping processes) to which every alert is posted, as
Prometheus does. Member 1 notifies replica slot 1 and member 2 slot 2 (the Service's choice, fixed so the
tests know who got what), both at once (`peer_timeout` 0): every alert reaches both replicas.

Duplicates from the pair -> one run; kill -9 mid-step, while awaiting approval (the member whose replica is
dead retries, the other's notification gets through) and while a change is in flight; a double-clicked
approval landing on both replicas; a rolling restart and `pg_ctl restart -m immediate` during a burst."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from engine.errors import StoreError
from engine.records import RunRecord, RunStatus, StepStatus
from integrations.kubesim import SimulatedCluster, load_scenario
from integrations.postgres import PostgresStore
from integrations.testing.alertmanager_pair import AlertmanagerPair
from integrations.testing.postgres import PostgresCluster
from integrations.testing.replicas import Replica, free_port
from integrations.testing.server import CHANNEL, SIGNING_SECRET, WEBHOOK_TOKEN, wait_for
from integrations.testing.slack_fake import FakeSlack
from tests.conftest import require_postgres

ROOT = Path(__file__).resolve().parents[4]
NODE = "/api/v1/nodes/{}"
BURST_NODES = 200
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
    """Everything the replicas share, the Alertmanager pair in front of them, and a way to read the
    database as a third party."""

    def __init__(self, tmp_path: Path, database: PostgresCluster, sim: SimulatedCluster, slack: FakeSlack) -> None:
        self.sim, self.slack, self.tmp_path, self.database = sim, slack, tmp_path, database
        self.url = url = database.new_database()
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
        self.slots = [free_port(), free_port()]  # the addresses the pair's members notify
        self.pair = AlertmanagerPair(tmp_path / "alertmanagers",
                                     [f"http://127.0.0.1:{port}/hooks/alertmanager" for port in self.slots],
                                     WEBHOOK_TOKEN).start()
        self.replicas: list[Replica] = []

    def replica(self, name: str, slot: int | None = None) -> Replica:
        """A new replica; in `slot` (0 or 1) it is the one that slot's Alertmanager notifies."""
        port = self.slots[slot] if slot is not None else 0
        replica = Replica(name, self.config, self.tmp_path, self.env, port=port).start()
        self.replicas.append(replica)
        return replica

    def run(self, run_id: str) -> RunRecord:
        return self.store.get_run(run_id)

    def runs(self) -> dict[str, list[RunRecord]]:
        """Every run, by the node it is for."""
        found: dict[str, list[RunRecord]] = {}
        for run in self.store.list_runs(limit=10_000):
            found.setdefault(run.params["node"], []).append(run)
        return found

    def run_for(self, node: str, timeout: float = 60) -> str:
        """The id of the run the pair's notifications about `node` started."""
        runs = wait_for(lambda: self.runs().get(node), timeout, f"a run for {node}", interval=0.1)
        assert len(runs) == 1, f"{len(runs)} runs for one alert"
        return runs[0].id

    def owner(self, run_id: str) -> Replica:
        """The replica whose process holds the run's lease (owners are named host/pid/random)."""
        with psycopg.connect(self.url) as conn:
            row = conn.execute("SELECT owner FROM runs WHERE id = %s", (run_id,)).fetchone()
        assert row is not None and row[0], f"run {run_id} has no owner"
        pid = int(row[0].split("/")[1])
        return next(r for r in self.replicas if r.process is not None and r.process.pid == pid)

    def wait_status(self, run_id: str, *statuses: str, timeout: float = 60) -> RunRecord:
        def reached() -> RunRecord | None:
            run = self.run(run_id)
            return run if run.status in statuses else None

        return wait_for(reached, timeout, f"run {run_id} to reach {statuses}", interval=0.1)

    def changes_sent(self, node: str = "worker-c") -> int:
        """Cordon PATCHes of `node` the API server received, its one dry-run (before the card) excluded."""
        return self.sim.requests[("PATCH", NODE.format(node))] - 1

    def settled_and_posted_once(self, timeout: float = 90) -> dict[str, list[RunRecord]]:
        """Waits until every run waits for a person or has finished and chat is delivered; checks one Slack
        thread per run and no reply posted twice."""
        def settled() -> bool:
            return all(RunStatus(r.status).finished or r.status == "awaiting_approval"
                       for r in self.store.list_runs(limit=10_000))

        wait_for(settled, timeout, "every run to settle", interval=0.2)
        wait_for(lambda: self.store.outbox_pending() == 0, 60, "chat delivered", interval=0.2)
        runs = self.runs()
        assert len(self.slack.parents(CHANNEL)) == sum(len(r) for r in runs.values())  # none posted twice
        replies = [(m.thread_ts, m.text, json.dumps(m.blocks, sort_keys=True)) for m in self.slack.messages
                   if m.thread_ts is not None]
        twice = [r for r in set(replies) if replies.count(r) > 1]
        assert not twice, f"a Slack reply was posted twice: {twice[:3]}"
        return runs

    def close(self) -> None:
        for replica in self.replicas:
            replica.close()
        self.pair.stop()
        self.store.close()


def with_burst_nodes(scenario: list[dict[str, Any]], count: int = BURST_NODES) -> list[dict[str, Any]]:
    """The scenario and nodes n0, n1, ... (copies of worker-a), so that the runs of a burst reach their card."""
    template = next(o for o in scenario if o["kind"] == "Node" and o["metadata"]["name"] == "worker-a")
    nodes = []
    for i in range(count):
        node = copy.deepcopy(template)
        node["metadata"].update(name=f"n{i}", uid=str(uuid.UUID(int=i)))
        node["metadata"]["labels"]["kubernetes.io/hostname"] = f"n{i}"
        nodes.append(node)
    return scenario + nodes


@contextmanager
def shared_parts(tmp_path: Path, database: PostgresCluster) -> Iterator[Cluster]:
    scenario = with_burst_nodes(load_scenario(ROOT / "runbooks" / "scenarios" / "kubesim-basic.yaml"))
    with SimulatedCluster(objects=scenario) as sim, FakeSlack() as slack:
        shared = Cluster(tmp_path, database, sim, slack)
        try:
            yield shared
        finally:
            shared.close()


@pytest.fixture
def cluster(tmp_path: Path, postgres: PostgresCluster, alertmanager_binary: str) -> Iterator[Cluster]:
    with shared_parts(tmp_path, postgres) as shared:
        yield shared


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


def lost(pause: float = 0, node: str = "worker-c") -> dict[str, str]:
    """The labels of the alert the test runbook triggers on."""
    return {"alertname": "NodeLost", "node": node, "pause": f"{pause:g}", "severity": "critical"}


class Burst:
    """Alerts for nodes n0, n1, ... fired at the pair until stopped, one every `every` seconds (Prometheus
    posting to both members each time)."""

    def __init__(self, pair: AlertmanagerPair, every: float = 0.25) -> None:
        self.pair = pair
        self.every = every
        self.fired: list[str] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._fire, name="burst")

    def _fire(self) -> None:
        while not self.stopped.is_set():
            assert len(self.fired) < BURST_NODES, "the burst outran the simulated cluster's nodes"
            node = f"n{len(self.fired)}"
            self.pair.fire(lost(node=node))  # both members answer 200: the alert is theirs now
            self.fired.append(node)
            self.stopped.wait(self.every)

    def wait(self, count: int, what: str) -> None:
        def reached() -> bool:
            assert self.thread.is_alive(), "the burst stopped: an Alertmanager refused an alert (see above)"
            return len(self.fired) >= count

        wait_for(reached, 90, what, interval=0.1)

    def __enter__(self) -> Burst:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(60)


def test_an_alert_pair_starts_one_run_and_a_double_click_is_one_decision(cluster: Cluster) -> None:
    a, b = cluster.replica("a", slot=0), cluster.replica("b", slot=1)
    cluster.pair.fire(lost())
    wait_for(lambda: a.metric("runbook_alerts_total") >= 1 and b.metric("runbook_alerts_total") >= 1,
             60, "both members' notifications to reach their replicas", interval=0.2)
    run_id = cluster.run_for("worker-c")  # one run, not one per notification
    assert a.metric("runbook_dedup_hits_total") + b.metric("runbook_dedup_hits_total") >= 1
    cluster.wait_status(run_id, "awaiting_approval")
    clicks = both(lambda: a.click("U0ALICE", run_id, "cordon", approve=True, nonce="1"),
                  lambda: b.click("U0BOB", run_id, "cordon", approve=False, nonce="2"))
    assert [c.status_code for c in clicks] == [200, 200]
    run = cluster.wait_status(run_id, "succeeded", "rejected")
    decisions = cluster.store.decisions(run_id)
    assert len(decisions) == 1
    assert run.status == ("succeeded" if decisions[0].decision == "approved" else "rejected")
    assert cluster.changes_sent() == (1 if run.status == "succeeded" else 0)
    cluster.settled_and_posted_once()
    texts = [m.text for m in cluster.slack.messages]
    assert len(texts) == len(set(texts)), "a Slack message was posted twice"


def test_kill_9_mid_step_another_replica_carries_the_run_and_approves_from_the_old_card(
        cluster: Cluster) -> None:
    cluster.replica("a", slot=0)
    cluster.replica("b", slot=1)
    cluster.pair.fire(lost(pause=12))
    run_id = cluster.run_for("worker-c")
    wait_for(lambda: any(s.id == "look" and s.status == StepStatus.RUNNING for s in cluster.run(run_id).steps),
             what="the slow step to start")
    wait_for(lambda: cluster.store.chat_message(run_id, "parent"), what="the run's thread, posted and recorded")
    dead = cluster.owner(run_id)
    dead.kill()
    survivor = next(r for r in cluster.replicas if r is not dead)
    run = cluster.wait_status(run_id, "awaiting_approval", timeout=90)  # the survivor re-runs the 12 s look
    actions = [(e.actor, e.action) for e in cluster.store.audit_log(run_id)]
    assert ("engine", "run.taken_over") in actions and ("engine", "run.interrupted") not in actions
    assert cluster.changes_sent() == 0
    assert survivor.click("U0ALICE", run_id, "cordon").status_code == 200  # the card the dead one posted
    run = cluster.wait_status(run_id, "succeeded")
    assert cluster.changes_sent() == 1 and len(run.mutations) == 1
    assert len(cluster.settled_and_posted_once()) == 1


def test_kill_9_while_awaiting_approval_then_while_the_change_is_in_flight(cluster: Cluster) -> None:
    a, b = cluster.replica("a", slot=0), cluster.replica("b", slot=1)
    cluster.pair.fire(lost())
    run_id = cluster.run_for("worker-c")
    cluster.wait_status(run_id, "awaiting_approval")
    a.kill()  # nothing is lost: the approval is in the database

    # an alert while a is down: member 1 retries against the dead address, member 2's notification gets through
    failed = cluster.pair.members[0].notifications()["requests_failed"]
    cluster.pair.fire(lost(node="worker-b"))
    second = cluster.run_for("worker-b")
    wait_for(lambda: cluster.pair.members[0].notifications()["requests_failed"] > failed, 60,
             "member 1 to have tried the dead replica", interval=0.2)
    assert b.click("U0ALICE", run_id, "cordon").status_code == 200
    cluster.wait_status(run_id, "succeeded")
    assert cluster.changes_sent() == 1

    # a's successor takes its place (member 1 now gets through to it); the second run is approved on b
    # while the API server holds the cordon for 8 s, and the replica carrying it dies meanwhile
    cluster.replica("c", slot=0)
    cluster.wait_status(second, "awaiting_approval")
    cluster.sim.faults.add(path=NODE.format("worker-b") + "$", method="PATCH", latency=8.0)
    assert b.click("U0ALICE", second, "cordon").status_code == 200
    wait_for(lambda: any(s.id == "cordon" and s.status == StepStatus.RUNNING for s in cluster.run(second).steps),
             what="the approved change to be under way")
    cluster.owner(second).kill()
    run = cluster.wait_status(second, "succeeded", timeout=60)  # the survivor re-read the node once it landed
    assert [c.outcome for c in run.mutations] == ["applied"]  # (test_replica_takeover.py: applied / not applied)
    assert cluster.changes_sent("worker-b") == 1  # sent once: the survivor never re-sends it
    assert set(cluster.runs()) == {"worker-c", "worker-b"} and all(len(r) == 1 for r in cluster.runs().values())


def test_a_rolling_restart_during_a_burst_loses_nothing_and_posts_nothing_twice(cluster: Cluster) -> None:
    slots = [cluster.replica("a", slot=0), cluster.replica("b", slot=1)]
    with Burst(cluster.pair) as burst:
        for i, name in enumerate(("a2", "b2")):  # stop one, start its successor in its place, repeat
            burst.wait(len(burst.fired) + 5, "alerts flowing")
            assert slots[i].stop() is not None, slots[i].log()[-2000:]
            slots[i] = cluster.replica(name, slot=i)
        burst.wait(len(burst.fired) + 5, "alerts after the restarts")
    fired = set(burst.fired)
    wait_for(lambda: fired <= set(cluster.runs()), 90, "a run for every alert the pair was given", interval=0.5)
    runs = cluster.settled_and_posted_once()
    assert set(runs) == fired and all(len(r) == 1 for r in runs.values()), "an alert started two runs"


@pytest.fixture
def crashable(tmp_path: Path, alertmanager_binary: str) -> Iterator[Cluster]:
    """The shared parts on a PostgreSQL of their own: this test crashes it."""
    require_postgres()
    with PostgresCluster() as database, shared_parts(tmp_path, database) as shared:
        yield shared


def test_a_database_crash_during_a_burst_loses_no_alert_and_runs_continue(crashable: Cluster) -> None:
    crashable.replica("a", slot=0)
    crashable.replica("b", slot=1)
    with Burst(crashable.pair) as burst:
        burst.wait(10, "the burst to get going")
        crashable.database.restart("immediate")
        burst.wait(len(burst.fired) + 10, "alerts after the crash")
    fired = set(burst.fired)

    def all_in_runs() -> bool:
        try:
            return fired <= set(crashable.runs())
        except StoreError:  # this observer's own pooled connection died with the server: read again
            return False

    # the replicas answered 503 while the database was down; the members re-send until they get a 200
    wait_for(all_in_runs, 120, "a run for every alert the pair was given", interval=0.5)
    runs = crashable.settled_and_posted_once(timeout=120)
    assert set(runs) == fired and all(len(r) == 1 for r in runs.values()), "an alert started two runs"
    assert all(r[0].status == "awaiting_approval" for r in runs.values())  # every run went on to its card
