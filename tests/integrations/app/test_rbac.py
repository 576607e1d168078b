"""`runbook rbac` grants exactly enough: every flagship case passes under the generated roles in a simulator
that enforces RBAC, and taking away any single granted permission makes some case fail saying what to grant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from engine.actions import ActionRegistry
from engine.loader import Loader
from engine.model import Runbook
from engine.settings import Settings
from integrations.app.cli.main import app
from integrations.app.identities import impersonation_targets
from integrations.app.rbac import generate, needs, rule_keys, rules
from integrations.app.rehearsal import Authz, Case, CaseResult, collect, rehearse
from integrations.app.wiring import build_registry

ROOT = Path(__file__).resolve().parents[3]
FLAGSHIP = ("node-not-ready", "billing-cronjob-failed", "duplicate-migration")


@pytest.fixture(scope="module")
def registry() -> ActionRegistry:
    return build_registry()


@pytest.fixture(scope="module")
def cases(registry: ActionRegistry) -> list[Case]:
    found, problems = collect([ROOT / "runbooks"], Loader(registry))
    assert not problems
    assert {c.runbook.name for c in found} >= set(FLAGSHIP)
    return found


def runbooks_of(cases: list[Case]) -> list[Runbook]:
    return list({c.runbook.name: c.runbook for c in cases}.values())


def failure_text(result: CaseResult) -> str:
    steps = result.run.steps if result.run else []
    return "\n".join([*result.failures, *(s.error or "" for s in steps)])


def test_the_cli_prints_valid_multi_document_yaml() -> None:
    result = CliRunner().invoke(app, ["rbac", str(ROOT / "runbooks"), "--namespace", "ops",
                                      "--service-account", "healer"])
    assert result.exit_code == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds[0] == "ServiceAccount" and docs[0]["metadata"] == {
        "name": "healer", "namespace": "ops", "labels": {"app.kubernetes.io/name": "runbook"}}
    assert {"ClusterRole", "ClusterRoleBinding"} <= set(kinds)
    roles = {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRole"}
    assert roles == {"healer-diagnose", "healer-remediate"}
    for binding in (d for d in docs if d["kind"].endswith("Binding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "healer", "namespace": "ops"}]


def test_diagnosis_is_read_only_and_secrets_are_only_ever_read(cases: list[Case], registry: ActionRegistry) -> None:
    objects = generate(runbooks_of(cases), registry)
    for role in (o for o in objects if o["kind"] in ("Role", "ClusterRole")):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            if role["metadata"]["name"].endswith("-diagnose"):
                assert set(rule["verbs"]) <= {"get", "list"}
            if "secrets" in rule["resources"]:  # both metadata-only requests (PartialObjectMetadata)
                assert set(rule["verbs"]) <= {"get", "list"}


@pytest.mark.parametrize("targets", [(), ("billing", "shop", "data")], ids=["cluster-wide", "target-namespaces"])
def test_every_flagship_case_passes_under_the_generated_roles(
        cases: list[Case], registry: ActionRegistry, targets: tuple[str, ...]) -> None:
    objects = generate(runbooks_of(cases), registry, targets=targets)
    if targets:  # namespaced grants become Roles: no Secret is readable outside those namespaces
        secrets = [o for o in objects if any("secrets" in r["resources"] for r in o.get("rules", []))]
        assert secrets and all(o["kind"] == "Role" for o in secrets)
    failed = {c.test.name: r.failures for c in cases if not (r := rehearse(c, Authz(tuple(objects)))).passed}
    assert not failed


def test_removing_any_granted_permission_fails_a_case_saying_what_to_grant(
        cases: list[Case], registry: ActionRegistry) -> None:
    """Finer than removing whole rules: each (resource, verb) of each rule is taken away on its own. Only the
    cases whose runbook declares that permission are re-run, up to the first that fails."""
    objects = generate(runbooks_of(cases), registry)
    unproven: list[str] = []
    for index, role in enumerate(objects):
        if "rules" not in role:
            continue
        granted = set().union(*(rule_keys(r) for r in role["rules"]))
        for key in sorted(granted):
            _, resource, sub, verb = key
            smaller = {**role, "rules": rules({k: set() for k in granted - {key}})}
            cut: list[dict[str, Any]] = [*objects[:index], smaller, *objects[index + 1:]]
            label = f"{role['metadata']['name']}: {resource}{'/' + sub if sub else ''} {verb}"
            for case in (c for c in cases if key in needs(c.runbook, registry)):
                result = rehearse(case, Authz(tuple(cut)))
                if not result.passed:
                    text = failure_text(result)
                    assert "forbidden" in text and "grant " + resource in text, (label, text)
                    break
            else:
                unproven.append(label)
    assert not unproven, f"granted but no case needs it: {unproven}"


def test_mapped_identities_add_impersonation_of_exactly_those(cases: list[Case], registry: ActionRegistry) -> None:
    settings = Settings.model_validate({"identities": {
        "U024BE7LH": "alice@corp.example",
        "U0G9QF9C6": {"user": "bob@corp.example", "groups": ["sre"]},
        "S0614TZR7": {"groups": ["oncall"]},
    }})
    objects = generate(runbooks_of(cases), registry, impersonate=impersonation_targets(settings))
    role = next(o for o in objects if o["metadata"]["name"] == "runbook-impersonate")
    assert role["kind"] == "ClusterRole" and role["rules"] == [
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"],
         "resourceNames": ["alice@corp.example", "bob@corp.example"]},
        {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": ["oncall", "sre"]},
    ]
    assert not any(o["metadata"]["name"] == "runbook-impersonate" for o in generate(runbooks_of(cases), registry))


def test_with_mapped_approvers_the_engine_is_not_bound_to_remediate_unless_a_runbook_falls_back(
        cases: list[Case], registry: ActionRegistry) -> None:
    """Remediations and their dry-runs then run as an approver; the remediate role stays, unbound, as the list
    of what approvers need. A runbook that lets approvals fall back to the engine's own role keeps it bound."""
    impersonate = (["alice@corp.example"], ["sre"])

    def bound(runbooks: list[Runbook]) -> set[str]:
        objects = generate(runbooks, registry, impersonate=impersonate)
        assert any(o["kind"] == "ClusterRole" and o["metadata"]["name"] == "runbook-remediate" for o in objects)
        return {o["roleRef"]["name"] for o in objects if o["kind"].endswith("Binding")}

    runbooks = runbooks_of(cases)
    assert not any(r.policy.fallback_to_engine for r in runbooks)
    assert bound(runbooks) == {"runbook-diagnose", "runbook-impersonate"}
    lenient = runbooks[0].model_copy(update={"policy": runbooks[0].policy.model_copy(
        update={"fallback_to_engine": True})})
    assert bound([lenient, *runbooks[1:]]) == {"runbook-diagnose", "runbook-remediate", "runbook-impersonate"}


def test_a_runbook_pinned_to_namespaces_gets_roles_there(tmp_path: Path, registry: ActionRegistry) -> None:
    source = (ROOT / "runbooks" / "billing-cronjob-failed.yaml").read_text(encoding="utf-8")
    enum = "    type: enum\n    values: [billing, finance]\n    default: billing\n"
    pinned = source.replace("    type: string\n    default: billing\n", enum, 1)
    assert pinned != source
    (tmp_path / "billing.yaml").write_text(pinned.split("\ntests:")[0] + "\n", encoding="utf-8")
    runbook = Loader(registry).load_file(tmp_path / "billing.yaml")
    objects = generate([runbook], registry)
    by_kind = {(o["kind"], o["metadata"].get("namespace")) for o in objects if o["kind"].endswith("Role")}
    assert by_kind == {("Role", "billing"), ("Role", "finance")}
