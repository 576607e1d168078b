"""A change is sent at most once, and when its answer is lost the run says what is true: in the step's output,
in the chat thread (the Slack outbox) and in the audit. Real executor, store and actions against kubesim over
HTTP, with the simulator losing answers after it applied the request (`after=True` faults)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from slack_sdk import WebClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kubernetes"))
from k8s_objects import cronjob, node, ts

from engine.executor import Executor
from engine.loader import Loader
from engine.policy import Policy as ApprovalPolicy
from engine.records import RunRecord, RunStatus, StepRecord
from engine.run_store import RunStore
from engine.sqlstore.sqlite import SqliteStore
from integrations.app.wiring import build_registry
from integrations.kubernetes.client import Kube, Policy
from integrations.kubesim import SimulatedCluster
from integrations.slack.outbox import Outbox
from integrations.slack.sender import OutboxSender
from integrations.slack.sink import Router, SlackSink
from integrations.testing.server import wait_for
from integrations.testing.slack_fake import FakeSlack, flatten

# The client gives up on an answer after 0.5 s; the simulator applies the change and answers after 1.5 s.
POLICY = Policy(call_timeout=0.5, connect_timeout=0.5, attempts=3, backoff=0.01, max_backoff=0.05)

RUNBOOK = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: once, title: Once}
params:
  node: {type: string, default: node-a}
policy: {approval_timeout: 1h}
chat: {channel: "#ops"}
steps:
  - id: change
    title: Change
    action: ACTION
    with: ARGS
    proposal: {summary: change it, reason: a test, risk: low}
"""


def run_once(sim: SimulatedCluster, tmp_path: Path, action: str, args: str, *faults: dict[str, Any]
             ) -> tuple[RunRecord, StepRecord, RunStore]:
    """Propose, then approve with `faults` in place (the real request's answer lost); the run and its store."""
    kube = Kube.from_url(sim.url, "admin-token", policy=POLICY)
    registry = build_registry(kube)
    runbook = Loader(registry).load_text(RUNBOOK.replace("ACTION", action).replace("ARGS", args))
    store = SqliteStore(str(tmp_path / "runs.db"))
    executor = Executor(registry, store, sink=SlackSink(store, Outbox(store), Router()),
                        policy=ApprovalPolicy(approvers=("alice",)))
    run = executor.run(runbook, {}, requester="alertmanager")
    assert run.status == RunStatus.AWAITING_APPROVAL, [s.error for s in run.steps]
    for fault in faults:
        sim.faults.add(**fault)
    run = executor.decide(run.id, True, "alice", step="change")
    kube.close()
    return run, next(s for s in run.steps if s.id == "change"), store


def chat_thread(store: RunStore) -> str:
    """The run's Slack thread, as delivered to the Slack fake by the real sender."""
    with FakeSlack() as fake:
        client = WebClient(token=fake.token, base_url=fake.url, timeout=2, retry_handlers=[])
        outbox = Outbox(store)
        sender = OutboxSender(outbox, client)
        # pass after pass until nothing waits: a pass may send nothing while a 429's Retry-After runs out
        wait_for(lambda: sender.deliver_due() >= 0 and outbox.pending() == 0, timeout=20, interval=0.01,
                 what="the outbox delivered")
        (parent,) = fake.parents("#ops")
        return "\n".join(flatten(reply) for reply in fake.thread(parent.ts))


def audited(store: RunStore, run_id: str) -> list[dict[str, Any]]:
    return [e.detail for e in store.audit_log(run_id) if e.action.startswith("remediation.")]


def test_a_cordon_that_outlived_the_read_timeout_is_reported_applied(tmp_path: Path) -> None:
    with SimulatedCluster([node("node-a")]) as sim:
        run, step, store = run_once(sim, tmp_path, "k8s.node.cordon", "{node: node-a}",
                                    {"path": "/api/v1/nodes/node-a$", "method": "PATCH", "latency": 1.5, "after": True})
        assert sim.requests[("PATCH", "/api/v1/nodes/node-a")] == 2  # the dry-run, then the change: once
        stored = sim.get("Node", "node-a")
    assert stored["spec"]["unschedulable"] is True
    assert stored["metadata"]["annotations"]["runbook.dev/run-id"] == run.id
    assert run.status == RunStatus.SUCCEEDED and step.output["outcome"] == "applied"
    (change,) = [c for c in step.changes if not c.dry_run]
    assert change.outcome == "applied" and "re-reading Node node-a shows it applied" in change.diff[-1]
    (entry,) = audited(store, run.id)
    assert [c["outcome"] for c in entry["changes"]] == ["applied"] and entry["error"] is None
    assert "outcome: applied" in chat_thread(store)


def test_a_job_created_but_whose_answer_was_lost_is_found_not_created_twice(tmp_path: Path) -> None:
    cron = cronjob(created=ts(3600))
    with SimulatedCluster([cron]) as sim:
        collection = "/apis/batch/v1/namespaces/billing/jobs"
        run, step, store = run_once(sim, tmp_path, "k8s.job.create_from_cronjob",
                                    "{namespace: billing, cronjob: billing-report}",
                                    {"path": f"{collection}$", "method": "POST", "drop": True, "after": True})
        assert sim.requests[("POST", collection)] == 2  # the dry-run, then the create: once
        jobs = [j for j in sim.list("Job", "billing") if j["metadata"]["name"] == step.output["job"]]
    assert len(jobs) == 1 and jobs[0]["metadata"]["annotations"]["runbook.dev/run-id"] == run.id
    assert run.status == RunStatus.SUCCEEDED, run.error
    (change,) = [c for c in step.changes if not c.dry_run]
    assert change.outcome == "applied" and change.result["uid"] == jobs[0]["metadata"]["uid"]
    (entry,) = audited(store, run.id)
    assert entry["changes"] and entry["changes"][0]["outcome"] == "applied"
    assert "outcome: applied" in chat_thread(store)


def test_a_change_provably_not_applied_is_sent_once_more_with_a_precondition(tmp_path: Path) -> None:
    with SimulatedCluster([node("node-a")]) as sim:
        run, step, _ = run_once(sim, tmp_path, "k8s.node.cordon", "{node: node-a}",
                                {"path": "/api/v1/nodes/node-a$", "method": "PATCH", "status": 503, "times": 1})
        assert sim.requests[("PATCH", "/api/v1/nodes/node-a")] == 3  # dry-run, lost (not applied), conditional
        assert sim.get("Node", "node-a")["spec"]["unschedulable"] is True
    (change,) = [c for c in step.changes if not c.dry_run]
    assert run.status == RunStatus.SUCCEEDED and change.outcome == "applied"
    assert "showed it was not applied" in change.diff[-1] and "conditional on resourceVersion" in change.diff[-1]


def test_when_even_the_re_read_fails_the_effect_is_unknown_and_says_what_to_check(tmp_path: Path) -> None:
    node_path = "/api/v1/nodes/node-a$"
    with SimulatedCluster([node("node-a")]) as sim:
        run, step, store = run_once(sim, tmp_path, "k8s.node.cordon", "{node: node-a}",
                                    {"path": node_path, "method": "GET", "times": 1},  # the action's read passes
                                    {"path": node_path, "method": "GET", "status": 503},  # the re-read fails
                                    {"path": node_path, "method": "PATCH", "drop": True, "after": True})
        assert sim.requests[("PATCH", "/api/v1/nodes/node-a")] == 2  # the dry-run, then the change: once
        assert sim.get("Node", "node-a")["spec"]["unschedulable"] is True
    assert run.status == RunStatus.FAILED
    assert "effect unknown" in (step.error or "") and "check Node node-a" in (step.error or "")
    (change,) = [c for c in step.changes if not c.dry_run]
    assert change.outcome == "effect unknown"
    (entry,) = audited(store, run.id)
    assert [c["outcome"] for c in entry["changes"]] == ["effect unknown"] and "effect unknown" in entry["error"]
    assert "check Node node-a" in chat_thread(store)
