"""A proposal's dry-runs read each object once and ask no access review for what the API server authorized
(against the simulated API server, through the real client); an approved change is reviewed and read
afresh before it is sent."""

from __future__ import annotations

from pathlib import Path

from engine.executor import Executor
from engine.loader import Loader
from engine.policy import Policy
from engine.records import RunStatus
from engine.sqlstore.sqlite import SqliteStore
from integrations.app.clusters import SIM_TOKEN
from integrations.app.wiring import build_registry
from integrations.kubernetes.access import SSAR, AccessChecker
from integrations.kubernetes.client import Kube
from integrations.kubesim import SimulatedCluster

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "runbooks" / "scenarios" / "node-not-ready" / "kubelet-stopped.yaml"
NODE = ("GET", "/api/v1/nodes/node-b")
REVIEW = ("POST", SSAR)


def test_a_proposal_asks_and_reads_once_and_an_approved_change_afresh() -> None:
    runbook = Loader(build_registry()).load_file(ROOT / "runbooks" / "node-not-ready.yaml")
    with SimulatedCluster.from_files([SCENARIO]) as sim, Kube.from_url(sim.url, SIM_TOKEN) as kube:
        executor = Executor(build_registry(kube), SqliteStore(":memory:"), checker=AccessChecker(kube),
                            policy=Policy(approvers=("oncall",)))
        sim.reset_requests()
        run = executor.run(runbook, {"node": "node-b"}, requester="alertmanager")
        assert run.status == RunStatus.AWAITING_APPROVAL and run.awaiting_step == "cordon"
        assert [i.step for i in run.plan] == ["cordon", "force_delete_stuck"]
        # The cordon's dry-run and the force-delete's preview got every request they need through the
        # authorizer, so nothing is reviewed; the preview's read of node-b (to warn that it is not Ready)
        # is the one the cordon's dry-run made.
        assert REVIEW not in sim.requests
        assert sim.requests[NODE] == 2  # the blast-radius step's read, the cordon's dry-run's read
        force = next(i for i in run.plan if i.step == "force_delete_stuck")
        assert any("node-b is not Ready" in line for c in force.preview for line in c.diff)

        sim.reset_requests()
        run = executor.decide(run.id, True, "oncall", step="cordon")
        assert sim.get("Node", "node-b")["spec"]["unschedulable"] is True
        assert run.status == RunStatus.AWAITING_APPROVAL and run.awaiting_step == "force_delete_stuck"
        # Executing the cordon reviews nodes get+patch and reads again; the force-delete's proposal reads.
        assert sim.requests[REVIEW] == 2 and sim.requests[NODE] == 2
