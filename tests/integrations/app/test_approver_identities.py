"""Approvers act with their own Kubernetes permissions: the settings map Slack people and groups to
identities, the cluster's RBAC (SubjectAccessReview) says who can approve before anyone clicks, and an
approval executes with impersonation, against a simulated API server enforcing RBAC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.actions import Identity
from engine.errors import ApprovalError
from engine.executor import Executor
from engine.loader import Loader
from engine.records import RunRecord, RunStatus
from engine.settings import Settings
from engine.sqlstore.sqlite import SqliteStore
from integrations.app.identities import MappedIdentities, impersonation_targets
from integrations.app.rbac import generate
from integrations.app.rehearsal import RBAC_TOKEN
from integrations.app.wiring import build_registry, policy_from
from integrations.kubernetes.access import SAR, AccessChecker
from integrations.kubernetes.client import Kube
from integrations.kubesim import SimulatedCluster
from integrations.slack.render import outlook as render_outlook

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "runbooks" / "scenarios" / "node-not-ready" / "kubelet-stopped.yaml"
SA_USER = "system:serviceaccount:runbook:runbook"
SETTINGS = Settings.model_validate({"identities": {
    "UALICE": "alice@corp.example",
    "UBOB": {"user": "bob@corp.example", "groups": ["dev"]},
    "SONCALL": {"groups": ["node-operators"]},
}})


def node_operators() -> list[dict[str, Any]]:
    """A team's own RBAC: the `node-operators` group may cordon nodes; alice is bound directly too."""
    rbac = "rbac.authorization.k8s.io/v1"
    role = {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": "node-operator"},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}]}
    binding = {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": "node-operators"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "node-operator"},
               "subjects": [{"kind": "Group", "name": "node-operators", "apiGroup": "rbac.authorization.k8s.io"},
                            {"kind": "User", "name": "alice@corp.example", "apiGroup": "rbac.authorization.k8s.io"}]}
    return [role, binding]


def test_people_and_their_slack_groups_resolve_to_kubernetes_identities() -> None:
    mapped = MappedIdentities(SETTINGS.identities)
    assert mapped.resolve("UALICE", frozenset()) == Identity("alice@corp.example")
    assert mapped.resolve("UBOB", frozenset({"SONCALL"})) == Identity("bob@corp.example", ("dev", "node-operators"))
    assert mapped.resolve("UCAROL", frozenset({"SONCALL"})) is None  # a group alone names no user
    shared = MappedIdentities(Settings.model_validate({"identities": {"SONCALL": {"user": "oncall",
                                                                                   "groups": ["sre"]}}}).identities)
    assert shared.resolve("UCAROL", frozenset({"SONCALL"})) == Identity("oncall", ("sre",))
    assert impersonation_targets(SETTINGS) == (["alice@corp.example", "bob@corp.example"], ["dev", "node-operators"])


def test_an_identity_needs_a_user_or_groups() -> None:
    with pytest.raises(ValueError, match="needs a user or groups"):
        Settings.model_validate({"identities": {"U1": {}}})


@pytest.fixture
def cluster() -> Iterator[tuple[SimulatedCluster, Executor, RunRecord]]:
    registry = build_registry()
    runbook = Loader(registry).load_file(ROOT / "runbooks" / "node-not-ready.yaml")
    rbac = generate([runbook], registry, impersonate=impersonation_targets(SETTINGS))
    # With approvers mapped the engine keeps only its read-only role: not even the dry-run writes as it.
    bound = {o["roleRef"]["name"] for o in rbac if o["kind"].endswith("Binding")}
    assert bound == {"runbook-diagnose", "runbook-impersonate"}
    sim = SimulatedCluster.from_files([SCENARIO], rbac=True, tokens={RBAC_TOKEN: SA_USER})
    sim.load([*rbac, *node_operators()])
    with sim, Kube.from_url(sim.url, RBAC_TOKEN) as kube:
        executor = Executor(build_registry(kube), SqliteStore(":memory:"), checker=AccessChecker(kube),
                            policy=policy_from(SETTINGS))
        run = executor.run(runbook, {"node": "node-b"}, requester="alertmanager")
        assert run.status == RunStatus.AWAITING_APPROVAL and run.awaiting_step == "cordon"
        yield sim, executor, run


def test_the_thread_says_who_can_approve_before_anyone_clicks(
        cluster: tuple[SimulatedCluster, Executor, RunRecord]) -> None:
    _, executor, run = cluster
    runbook = Loader(build_registry()).load_file(ROOT / "runbooks" / "node-not-ready.yaml")
    assert executor.policy.approvers_of(runbook) == ("UALICE", "UBOB", "SONCALL")
    executor.policy = executor.policy.with_parts(approvers=("UALICE", "UBOB", "SONCALL", "UDAVE"))
    outlook = {o.approver: o for o in executor.approval_outlook(run, runbook)}
    assert outlook["UALICE"].can and outlook["UALICE"].identity == Identity("alice@corp.example")
    assert not outlook["UBOB"].can and "bob@corp.example, who may not run k8s.node.cordon" in str(
        outlook["UBOB"].refusal) and "nodes:patch" in str(outlook["UBOB"].refusal)
    assert not outlook["SONCALL"].can and "no Kubernetes identity mapped" in str(outlook["SONCALL"].refusal)
    assert not outlook["UDAVE"].can
    note = render_outlook("cordon", executor.approval_outlook(run, runbook))
    assert note is not None and ":white_check_mark: <@UALICE> as `alice@corp.example`" in note
    assert ":no_entry: <@UBOB>: UBOB acts in Kubernetes as bob@corp.example" in note
    assert "<!subteam^SONCALL>" in note and "Nobody" not in note


def test_an_approval_executes_as_the_approver_not_as_the_engine(
        cluster: tuple[SimulatedCluster, Executor, RunRecord]) -> None:
    sim, executor, run = cluster
    cordon = next(p for p in run.proposals if p.step == "cordon")  # the server's dry-run, asked as alice
    assert cordon.dry_run_as == "alice@corp.example" and cordon.dry_run and all(c.dry_run for c in cordon.dry_run)
    with pytest.raises(ApprovalError, match="bob@corp.example, who may not run k8s.node.cordon"):
        executor.decide(run.id, True, "UBOB", step="cordon")
    assert not sim.get("Node", "node-b")["spec"].get("unschedulable")
    # The engine has no remediation binding, so it could not cordon: only alice's impersonated request can.
    with pytest.raises(ApprovalError, match="UCAROL has no Kubernetes identity mapped"):
        executor.decide(run.id, True, "UCAROL", step="cordon", groups=frozenset({"SONCALL"}))
    executor.decide(run.id, True, "UALICE", step="cordon")
    assert sim.get("Node", "node-b")["spec"]["unschedulable"] is True
    executed = [e for e in executor.store.audit_log(run.id) if e.action == "remediation.executed"]
    assert executed[0].detail["as"] == "alice@corp.example"


def test_through_the_server_slack_says_who_can_approve_and_clicks_execute_as_the_clicker(tmp_path: Path) -> None:
    from integrations.app.wiring import build
    from integrations.testing.server import CHANNEL, Harness, alert, server_settings, wait_for
    from integrations.testing.slack_fake import FakeSlack, flatten

    registry = build_registry()
    runbook = Loader(registry).load_file(ROOT / "runbooks" / "node-not-ready.yaml")
    sim = SimulatedCluster.from_files([SCENARIO], rbac=True, tokens={RBAC_TOKEN: SA_USER})
    sim.load([*generate([runbook], registry, impersonate=impersonation_targets(SETTINGS)), *node_operators()])
    with sim, Kube.from_url(sim.url, RBAC_TOKEN) as kube, FakeSlack() as fake:
        settings = server_settings(str(tmp_path / "runs.db"), fake.url, identities=SETTINGS.identities,
                                   runbook_path=(str(ROOT / "runbooks" / "node-not-ready.yaml"),))
        harness = Harness(build(settings, kube=kube), fake).start()
        try:
            assert harness.post_alerts([alert("KubeNodeNotReady", {"node": "node-b"})]).status_code == 200
            run_id = wait_for(lambda: next(iter(r.id for r in harness.engine.store.list_runs(None, None, 5)), None))
            harness.wait_status(run_id, "awaiting_approval")
            note = wait_for(lambda: next((flatten(m) for m in fake.find(lambda m: "Who can approve" in flatten(m))),
                                         None), what="the who-can-approve note")
            assert "<@UALICE> as `alice@corp.example`" in note and "<@UBOB>: UBOB acts in Kubernetes as" in note
            card = fake.find(lambda m: m.channel == CHANNEL and "Approval needed" in str(m.text))
            assert card and ":mag: dry-run as `alice@corp.example`" in flatten(card[0])
            harness.click("UBOB", run_id, "cordon")
            wait_for(lambda: fake.find(lambda m: "who may not run k8s.node.cordon" in flatten(m)) or None,
                     what="bob's refusal")
            assert not sim.get("Node", "node-b")["spec"].get("unschedulable")
            assert harness.click("UALICE", run_id, "cordon").status_code == 200
            wait_for(lambda: sim.get("Node", "node-b")["spec"].get("unschedulable") or None, what="the cordon")
        finally:
            harness.close()


def test_identities_can_come_from_the_environment() -> None:
    settings = Settings.load(environ={"RUNBOOK_IDENTITIES": "U1=alice@corp.example,U2=bob@corp.example"})
    assert MappedIdentities(settings.identities).resolve("U2", frozenset()) == Identity("bob@corp.example")


def test_the_approvers_access_is_reviewed_again_at_approval(
        cluster: tuple[SimulatedCluster, Executor, RunRecord]) -> None:
    """The proposal's dry-run as alice asked the cluster about her; her approval asks again, right before acting."""
    sim, executor, run = cluster
    sim.reset_requests()
    with pytest.raises(ApprovalError):  # bob cannot: nothing executes, so this is the approval check alone
        executor.decide(run.id, True, "UBOB", step="cordon")
    assert sim.requests[("POST", SAR)] == 2  # nodes get, patch as bob (patch missing)
    sim.reset_requests()
    executor.decide(run.id, True, "UALICE", step="cordon")
    # alice's nodes get+patch at the approval and again right before executing (2 + 2), then the force-delete's
    # proposal asks about alice and bob (pods get+delete, nodes get: 6)
    assert sim.requests[("POST", SAR)] == 2 + 2 + 6
