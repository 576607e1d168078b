"""`runbook demo` (what `make demo` runs) tells the whole story: diagnosis, approvals, verification, chat."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from integrations.app.cli.main import app

ROOT = Path(__file__).resolve().parents[3]


def test_the_demo_runs_the_incident_end_to_end(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo"], env={"RUNBOOK_DB": str(tmp_path / "runs.db"),
                                                   "RUNBOOK_RUNBOOK_PATH": str(ROOT / "runbooks")})
    assert result.exit_code == 0, result.stdout + result.stderr
    out = result.stdout
    assert "kubelet on node-b stopped reporting" in result.stderr + out  # progress goes to stderr
    assert out.count("Approval needed") == 2  # cordon, then the force-delete with its data-safety warning
    # the first approval card shows the whole plan: the force-delete is planned, with its preview dry-run
    first_card = out[out.index("Approval needed"):out.index("approved `cordon`")]
    assert "Then, planned" in first_card and "(`force_delete_stuck`)" in first_card and "preview" in first_card
    assert "DATA SAFETY" in out and "Run ✅ succeeded" in out
    assert "patch Node node-b" in out and "delete Pod data/postgres-1" in out
