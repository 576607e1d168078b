"""Issue 13 through the CLI's JSON contract: every instance of a finding is kept (two workloads down are two
findings) and the whole plan is in the verdict before the first approval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from integrations.app.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "runbooks" / "scenarios"


def _verdict(tmp_path: Path, runbook: str, scenario: str, *params: str) -> dict[str, Any]:
    args = ["run", runbook, "--scenario", str(SCENARIOS / scenario), "--output", "json", "--quiet"]
    for pair in params:
        args += ["--param", pair]
    result = CliRunner().invoke(app, args, env={"RUNBOOK_DB": str(tmp_path / "runs.db"),
                                               "RUNBOOK_RUNBOOK_PATH": str(ROOT / "runbooks")})
    assert result.exit_code == 0, result.stderr
    verdict: dict[str, Any] = json.loads(result.stdout)
    return verdict


def test_two_workloads_down_are_two_findings(tmp_path: Path) -> None:
    verdict = _verdict(tmp_path, "node-not-ready", "node-not-ready/two-workloads-down.yaml", "node=node-b")
    lost = [f["summary"] for f in verdict["findings"] if f["id"] == "node_pods.no_ready_replica"]
    assert len(lost) == 2
    assert any("shop/cart" in s for s in lost) and any("shop/checkout" in s for s in lost)


def test_the_verdict_holds_the_whole_plan(tmp_path: Path) -> None:
    verdict = _verdict(tmp_path, "billing-cronjob-failed", "billing-cronjob-failed/oom-killed.yaml",
                       "namespace=billing", "cronjob=billing-monthly")
    assert [(i["step"], i["status"]) for i in verdict["plan"]] == [("raise_memory", "awaiting_approval"),
                                                                  ("recovery_run", "planned")]
    recovery = verdict["plan"][1]
    assert recovery["condition"] == "after raise_memory is approved and succeeds"
    assert [c["verb"] for c in recovery["preview"]] and all(c["dry_run"] for c in recovery["preview"])
    assert [p["id"] for p in verdict["proposals"]] == ["raise_memory"]
    assert verdict["mutations"] == []


def test_a_second_run_for_the_same_target_proposes_nothing_and_says_why(tmp_path: Path) -> None:
    first = _verdict(tmp_path, "node-not-ready", "node-not-ready/kubelet-stopped.yaml", "node=node-b")
    assert first["status"] == "awaiting_approval" and [p["id"] for p in first["proposals"]] == ["cordon"]
    second = _verdict(tmp_path, "node-not-ready", "node-not-ready/kubelet-stopped.yaml", "node=node-b")
    assert second["status"] == "succeeded" and second["proposals"] == [] and second["plan"] == []
    open_run = next(f for f in second["findings"] if f["id"] == "already-handled")
    assert first["run_id"] in open_run["summary"] and "awaiting approval" in open_run["summary"]
    assert "node.kubelet_stopped" in {f["id"] for f in second["findings"]}  # the diagnosis is still shown
    other = _verdict(tmp_path, "node-not-ready", "node-not-ready/kubelet-stopped.yaml", "node=node-b",
                     "many_nodes_percent=40")
    assert [p["id"] for p in other["proposals"]] == ["cordon"]  # other params: another target, not the same run
