"""The runbooks' verdicts generalise: scenarios written apart from the runbooks (runbooks/scenarios/
unseen/) are diagnosed through the CLI contract, naming the cause with evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from integrations.app.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
UNSEEN = ROOT / "runbooks" / "scenarios" / "unseen"

CASES = [
    ("node-not-ready", "node-disk-pressure.yaml", ["node=worker-7"], "node.pressure", "cordon"),
    ("billing-cronjob-failed", "cronjob-configmap-missing.yaml", ["namespace=finance", "cronjob=invoice-export"],
     "cronjob.missing_configmap", "repoint"),  # renamed to the one look-alike: re-pointing is the fix (issue 13)
    ("duplicate-migration", "migration-overlap-selector.yaml", ["namespace=payments", "selector=app=ledger-migrate"],
     "jobs.duplicate_run", "stop_duplicate"),
    ("pod-crashloop", "worker-bad-flag-after-rollout.yaml", ["namespace=queue", "pod=worker-7f5c8d9b6-k2x9q"],
     "crashloop-since-rollout", "rollback"),
    ("job-failed", "export-image-not-found.yaml", ["namespace=data", "job=nightly-export-29401561"],
     "job-image-pull", None),
    ("hpa-maxed", "gateway-hpa-saturated.yaml", ["namespace=edge", "hpa=gateway"], "hpa-needs-more", "raise_max"),
    ("pvc-pending-or-full", "analytics-pvc-bad-parameters.yaml", ["namespace=analytics", "pvc=warehouse"],
     "pvc-provisioner-error", None),
]


@pytest.mark.parametrize(("runbook", "scenario", "params", "cause", "proposal"), CASES)
def test_verdict_names_the_cause_with_evidence(tmp_path: Path, runbook: str, scenario: str, params: list[str],
                                               cause: str, proposal: str | None) -> None:
    args = ["run", runbook, "--scenario", str(UNSEEN / scenario), "--output", "json", "--quiet"]
    for pair in params:
        args += ["--param", pair]
    result = CliRunner().invoke(app, args, env={"RUNBOOK_DB": str(tmp_path / "runs.db"),
                                               "RUNBOOK_RUNBOOK_PATH": str(ROOT / "runbooks")})
    assert result.exit_code == 0, result.stderr
    verdict = json.loads(result.stdout)
    found = {f["id"]: f for f in verdict["findings"]}
    assert cause in found, sorted(found)
    assert found[cause]["evidence"], "the cause must come with evidence naming object and field"
    assert all(e["object"] and e["field"] for e in found[cause]["evidence"])
    assert [p["id"] for p in verdict["proposals"]] == ([proposal] if proposal else [])
    assert verdict["mutations"] == []
