"""The CLI contract other tools depend on: exit codes, JSON output, approvals across processes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from integrations.app.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "runbooks" / "scenarios" / "kubesim-basic.yaml"

Invoke = Callable[..., "Result"]


class Result:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr

    def json(self) -> dict:
        return json.loads(self.stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Invoke:
    runner = CliRunner()
    env = {"RUNBOOK_DB": str(tmp_path / "runs.db"), "RUNBOOK_RUNBOOK_PATH": str(ROOT / "runbooks"),
           "RUNBOOK_USER": "alice", "RUNBOOK_APPROVERS": "alice,bob"}

    def invoke(*args: str, **more_env: str) -> Result:
        result = runner.invoke(app, list(args), env=env | more_env)
        return Result(result.exit_code, result.stdout, result.stderr)

    return invoke


def run_json(cli: Invoke, node: str = "worker-c", *extra: str) -> dict:
    result = cli("run", "node-not-ready", "-p", f"node={node}", "--scenario", str(SCENARIO), "-o", "json", *extra)
    assert result.exit_code == 0, result.stderr
    return result.json()


def test_run_prints_one_json_document_and_pauses_for_approval(cli: Invoke) -> None:
    doc = run_json(cli)
    assert set(doc) >= {"run_id", "runbook", "status", "params", "steps", "findings", "proposals", "mutations",
                        "created_at", "updated_at", "finished_at"}
    assert doc["status"] == "awaiting_approval" and doc["runbook"] == "node-not-ready"
    assert doc["params"]["node"] == "worker-c" and doc["mutations"] == []
    assert "node.kubelet_stopped" in [f["id"] for f in doc["findings"]]
    [proposal] = doc["proposals"]
    [diff] = proposal["dry_run"][0]["diff"]
    assert proposal["id"] == "cordon" and diff.startswith("spec.unschedulable: ") and diff.endswith("-> true")


def test_approve_from_another_process_executes_and_verifies(cli: Invoke) -> None:
    run_id = run_json(cli)["run_id"]
    refused = cli("approve", run_id, "--as", "alice")
    assert refused.exit_code == 2 and "forbids approving your own request" in refused.stderr
    done = cli("approve", run_id, "cordon", "--as", "bob", "-o", "json").json()
    assert done["status"] == "succeeded"
    assert [m["request"]["body"] for m in done["mutations"]] == [
        {"metadata": {"annotations": {"runbook.dev/run-id": run_id}}, "spec": {"unschedulable": True}}]
    assert [m["outcome"] for m in done["mutations"]] == ["applied"]
    verify = next(s for s in done["steps"] if s["id"] == "verify_node")
    assert verify["output"]["unschedulable"] is True
    shown = cli("show", run_id, "-o", "json").json()
    assert shown["status"] == "succeeded"
    history = cli("history", "--status", "succeeded")
    assert run_id in history.stdout


def test_nobody_may_approve_until_approvers_are_configured(cli: Invoke) -> None:
    run_id = run_json(cli)["run_id"]
    refused = cli("approve", run_id, "cordon", "--as", "bob", RUNBOOK_APPROVERS="")
    assert refused.exit_code == 2 and "no approvers are configured" in refused.stderr
    assert "`approvers`" in refused.stderr


def test_a_freeze_refuses_approvals_until_it_is_lifted(cli: Invoke) -> None:
    run_id = run_json(cli)["run_id"]
    assert cli("freeze", "on").exit_code == 2  # a freeze must say why
    assert cli("freeze", "on", "--reason", "release week", "--as", "carol").exit_code == 0
    refused = cli("approve", run_id, "cordon", "--as", "bob")
    assert refused.exit_code == 2 and "changes are frozen by carol: release week" in refused.stderr
    assert cli("show", run_id, "-o", "json").json()["status"] == "awaiting_approval"
    assert "the freeze is off" in cli("freeze", "off", "--as", "carol").stdout
    assert cli("approve", run_id, "cordon", "--as", "bob", "-o", "json").json()["status"] == "succeeded"
    audit = cli("audit").stdout
    assert "freeze.on" in audit and "freeze.off" in audit and "step.approve.refused" in audit


def test_unknown_run_ids_and_closed_windows(cli: Invoke) -> None:
    run_json(cli)
    assert "no run with id 'nope'" in cli("approve", "nope", "--as", "bob").stderr


def test_reject_ends_the_run_and_changes_nothing(cli: Invoke) -> None:
    run_id = run_json(cli)["run_id"]
    result = cli("reject", run_id, "--as", "bob", "--reason", "change freeze", "-o", "json")
    assert result.exit_code == 0
    assert result.json()["status"] == "rejected" and result.json()["mutations"] == []
    audit = cli("audit", run_id)
    assert "step.rejected" in audit.stdout and "bob" in audit.stdout


def test_healthy_node_exits_zero_with_nothing_proposed(cli: Invoke) -> None:
    doc = run_json(cli, "worker-a")
    assert doc["status"] == "succeeded" and doc["proposals"] == []
    assert {f["severity"] for f in doc["findings"]} == {"info"}


def test_dry_run_never_pauses(cli: Invoke) -> None:
    doc = run_json(cli, "worker-c", "--dry-run")
    assert doc["status"] == "succeeded" and [p["id"] for p in doc["proposals"]] == ["cordon"]


@pytest.mark.parametrize(("args", "message"), [
    (("run", "node-not-redy", "-p", "node=a"), "did you mean 'node-not-ready'"),
    (("run", "node-not-ready", "-p", "nod=a"), "unknown param 'nod'"),
    (("run", "node-not-ready", "-p", "node"), "--param expects key=value"),
    (("approve", "nope"), "no run store at"),
    (("show", "nope"), "no run store at"),
    (("history", "--status", "sleeping"), "unknown status 'sleeping'"),
])
def test_bad_input_exits_2_with_a_reason(cli: Invoke, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2 and message in result.stderr


def test_validate_reports_every_problem_with_its_location(cli: Invoke, tmp_path: Path) -> None:
    assert cli("validate", str(ROOT / "runbooks")).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "runbooks" / "node-not-ready.yaml").read_text()
                   .replace("action: k8s.node.cordon", "action: k8s.node.cordn")
                   .replace("    with: {node: \"{{ params.node }}\"}\n    retry", "    with: {}\n    retry"))
    result = cli("validate", str(bad))
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert any(f"{bad}:" in line and "steps[8].action: unknown action 'k8s.node.cordn'" in line for line in lines)
    assert any("steps[3].with.node: field required" in line for line in lines)


def test_list_and_schema(cli: Invoke) -> None:
    listed = cli("list")
    assert "node-not-ready" in listed.stdout and "billing-cronjob-failed" in listed.stdout
    schema = json.loads(cli("schema").stdout)
    assert schema["title"] == "runbook/v1 Runbook" and "steps" in schema["properties"]


def test_version_and_shell_completion() -> None:
    runner = CliRunner()
    assert re.fullmatch(r"runbook \d+\.\d+\.\d+\S*\n", runner.invoke(app, ["--version"]).stdout)
    # what bash's completion function asks (installed by `runbook --install-completion`)
    words = runner.invoke(app, [], prog_name="runbook",
                          env={"_RUNBOOK_COMPLETE": "complete_bash", "COMP_WORDS": "runbook hist", "COMP_CWORD": "1"})
    assert words.stdout.split() == ["history"]
    formats = runner.invoke(app, [], prog_name="runbook", env={
        "_RUNBOOK_COMPLETE": "complete_bash", "COMP_WORDS": "runbook audit --output ", "COMP_CWORD": "3"})
    assert formats.stdout.split() == ["text", "json"]


def test_every_listing_speaks_json_and_audit_times_are_readable(cli: Invoke) -> None:
    run_id = run_json(cli)["run_id"]
    history = cli("history", "-o", "json").json()["runs"]
    assert [r["run_id"] for r in history] == [run_id] and history[0]["status"] == "awaiting_approval"
    runbooks = {r["name"]: r for r in cli("list", "--output", "json").json()["runbooks"]}
    assert runbooks["node-not-ready"]["params"]["node"]["required"] is True
    assert "cordon" in runbooks["node-not-ready"]["steps"]
    actions = {a["name"]: a for a in cli("actions", "-o", "json").json()["actions"]}
    assert actions["k8s.node.cordon"]["kind"] == "remediate" and actions["k8s.node.cordon"]["permissions"]
    one = cli("actions", "k8s.node.cordon", "-o", "json").json()
    assert one["arguments"]["node"]["required"] is True and one["documentation"] and one["read_back"] is True
    assert "re-reads the target (read-back)" in cli("actions", "k8s.node.cordon").stdout
    assert "effect unknown (no read-back)" in cli("actions", "k8s.node.drain").stdout
    entries = cli("audit", run_id, "-o", "json").json()["entries"]
    assert entries[0]["run_id"] == run_id and entries[0]["time"].startswith(entries[0]["time"][:4] + "-")
    assert cli("show", run_id, "-o", "json").json()["run_id"] == run_id
    text = cli("audit", run_id).stdout.splitlines()
    assert text and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ ", line) for line in text)
    bad = cli("history", "-o", "yaml")
    assert bad.exit_code == 2 and "must be one of text, json, not 'yaml'" in bad.stderr
