"""kill -9 of the replica executing an approved change, between "approved" and "executed", with real
`runbook serve` processes on one PostgreSQL database and one simulated cluster: another replica re-reads the
node (never re-sends the cordon) and reports truthfully: applied (the run goes on) or not applied (the run
ends saying so). Cordons are counted at the simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

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
triggers:
  alerts:
    - match: {alertname: NodeLost}
      params: {node: node}
policy: {approval_timeout: 30m}
steps:
  - id: cordon
    title: Cordon {{ params.node }}
    action: k8s.node.cordon
    with: {node: "{{ params.node }}"}
    timeout: 5s
    proposal: {summary: "Cordon {{ params.node }}", reason: the node is lost, risk: low}
  - id: verify
    title: Look at the node again
    action: k8s.node.inspect
    with: {node: "{{ params.node }}"}
"""


class Shared:
    """What the replicas share (database, cluster, Slack), and the database read as a third party."""

    def __init__(self, tmp_path: Path, url: str, sim: SimulatedCluster, slack: FakeSlack) -> None:
        self.sim, self.slack, self.tmp_path = sim, slack, tmp_path
        runbook = tmp_path / "ha-cordon.yaml"
        runbook.write_text(RUNBOOK, encoding="utf-8")
        self.config = tmp_path / "runbook.yaml"
        self.config.write_text(yaml.safe_dump({
            "database_url": url, "runbook_path": [str(runbook)], "approvers": ["U0ALICE"],
            "kubeconfig": str(sim.write_kubeconfig(tmp_path / "kubeconfig")), "slack_api_url": slack.url,
            "slack_channel": CHANNEL, "workers": 2, "run_lease": 3, "storm_window": 0,
            "change_landing_grace": 2}), encoding="utf-8")
        self.env = {"RUNBOOK_SLACK_BOT_TOKEN": slack.token, "RUNBOOK_SLACK_SIGNING_SECRET": SIGNING_SECRET,
                    "RUNBOOK_WEBHOOK_TOKEN": WEBHOOK_TOKEN}
        self.store = PostgresStore(url, "observer/0/test", migrate=True, pool_size=2)
        self.replicas: list[Replica] = []

    def replica(self, name: str) -> Replica:
        replica = Replica(name, self.config, self.tmp_path, self.env).start()
        self.replicas.append(replica)
        return replica

    def awaiting(self, replica: Replica, node: str) -> str:
        answer = replica.post_alerts([alert("NodeLost", {"node": node, "severity": "critical"})]).json()
        run_id = str(answer["started"][0]["run_id"])
        self.wait_status(run_id, "awaiting_approval")
        return run_id

    def wait_status(self, run_id: str, *statuses: str, timeout: float = 60) -> RunRecord:
        def reached() -> RunRecord | None:
            run = self.store.get_run(run_id)
            return run if run.status in statuses else None

        return wait_for(reached, timeout, f"run {run_id} to reach {statuses}", interval=0.1)

    def cordons(self, node: str) -> int:
        """Cordon PATCHes of `node` the API server received, the proposal's one dry-run excluded."""
        return self.sim.requests[("PATCH", NODE.format(node))] - 1

    def unschedulable(self, node: str) -> bool:
        return bool(((self.sim.get("Node", node) or {}).get("spec") or {}).get("unschedulable"))

    def close(self) -> None:
        for replica in self.replicas:
            replica.close()
        self.store.close()


@pytest.fixture
def shared(tmp_path: Path, postgres: PostgresCluster) -> Iterator[Shared]:
    scenario = load_scenario(ROOT / "runbooks" / "scenarios" / "kubesim-basic.yaml")
    with SimulatedCluster(objects=scenario) as sim, FakeSlack() as slack:
        cluster = Shared(tmp_path, postgres.new_database(), sim, slack)
        try:
            yield cluster
        finally:
            cluster.close()


def thread_saying(shared: Shared, words: str) -> str | None:
    """Every Slack message so far as one text, once one of them says `words`."""
    said = " ".join(json.dumps(m.blocks) for m in shared.slack.messages)
    return said if words in said else None


def verdict(shared: Shared, run_id: str) -> dict[str, object]:
    return next(e.detail for e in shared.store.audit_log(run_id) if e.action == "run.taken_over")


def test_kill_9_after_the_cordon_was_sent_the_next_replica_finds_it_applied_and_goes_on(shared: Shared) -> None:
    a, b = shared.replica("a"), shared.replica("b")
    run_id = shared.awaiting(a, "worker-c")
    # the API server holds the cordon 3 s before applying it: a dies with the request in flight
    shared.sim.faults.add(path=NODE.format("worker-c") + "$", method="PATCH", latency=3.0, times=1)
    assert a.click("U0ALICE", run_id, "cordon").status_code == 200
    wait_for(lambda: shared.cordons("worker-c") == 1, what="the cordon to reach the API server")
    a.kill()
    run = shared.wait_status(run_id, "succeeded", "failed", "interrupted", timeout=90)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert shared.cordons("worker-c") == 1 and shared.unschedulable("worker-c")  # sent once, never again
    cordon = next(s for s in run.steps if s.id == "cordon")
    assert cordon.status == StepStatus.SUCCEEDED and [c.outcome for c in run.mutations] == ["applied"]
    assert "runbook.dev/run-id=" + run_id in str(verdict(shared, run_id)["evidence"])
    assert b.process is not None and f"/{b.process.pid}/" in str(verdict(shared, run_id)["by"])
    assert verdict(shared, run_id)["outcome"] == "applied"
    assert [s.id for s in run.steps] == ["cordon", "verify"]  # carried on from the next step


def test_kill_9_before_the_cordon_was_sent_the_next_replica_reports_not_applied(shared: Shared) -> None:
    a, b = shared.replica("a"), shared.replica("b")
    run_id = shared.awaiting(a, "worker-b")
    # the read before the cordon hangs: a dies after committing its intent, before sending anything
    stall = shared.sim.faults.add(path=NODE.format("worker-b") + "$", method="GET", latency=4.0, times=1)
    assert a.click("U0ALICE", run_id, "cordon").status_code == 200
    wait_for(lambda: stall.hits == 1, what="the executing replica to read the node")
    assert any(s.id == "cordon" and s.status == StepStatus.RUNNING and s.proposal is not None
               for s in shared.store.get_run(run_id).steps)  # the intent is committed
    a.kill()
    run = shared.wait_status(run_id, "succeeded", "failed", "interrupted", timeout=90)
    assert run.status == RunStatus.FAILED and "not applied" in (run.error or "")
    assert "it was not sent again: re-run the runbook" in (run.error or "")
    assert shared.cordons("worker-b") == 0 and not shared.unschedulable("worker-b")
    assert [c.outcome for c in run.mutations] == ["not applied"]
    assert verdict(shared, run_id)["outcome"] == "not applied"
    assert b.process is not None and f"/{b.process.pid}/" in str(verdict(shared, run_id)["by"])
    said = wait_for(lambda: thread_saying(shared, "Changed: `patch Node worker-b`"), what="the run's end in chat")
    assert "not applied: the process carrying the run stopped" in said  # the step's reply and the run's end
    assert "Changed: `patch Node worker-b` (not applied)" in said, said
