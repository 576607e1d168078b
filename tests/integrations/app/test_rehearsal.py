"""`runbook test` must be able to fail: wrong expectations, bad files and missing scenarios are caught."""

from __future__ import annotations

from pathlib import Path

from engine.loader import Loader
from integrations.app.rehearsal import collect, rehearse
from integrations.app.wiring import build_registry

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = (ROOT / "runbooks" / "node-not-ready.yaml").read_text(encoding="utf-8").split("\ntests:\n")[0]
SCENARIO = ROOT / "runbooks" / "scenarios" / "node-not-ready" / "healthy.yaml"


def write_case(folder: Path, expect: str) -> Path:
    (folder / "scenarios").mkdir(parents=True)
    (folder / "scenarios" / "healthy.yaml").write_text(SCENARIO.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "node-not-ready.yaml").write_text(RUNBOOK, encoding="utf-8")
    (folder / "tests").mkdir()
    path = folder / "tests" / "cases.yaml"
    path.write_text(f"""runbook: node-not-ready
tests:
  - name: healthy
    scenario: ../scenarios/healthy.yaml
    params: {{node: node-b}}
    expect: {expect}
""", encoding="utf-8")
    return path


def test_cases_beside_the_runbook_pass_when_the_verdict_matches(tmp_path: Path) -> None:
    write_case(tmp_path, "{status: succeeded, findings: [node.healthy], no_proposals: [cordon]}")
    cases, problems = collect([tmp_path], Loader(build_registry()))
    assert problems == [] and [c.test.name for c in cases] == ["healthy"]
    result = rehearse(cases[0])
    assert result.passed, result.failures


def test_a_wrong_expectation_fails_and_says_why(tmp_path: Path) -> None:
    write_case(tmp_path, "{status: awaiting_approval, findings: [node.kubelet_stopped], proposals: [cordon],"
                         " no_findings: [node.healthy], objects: [{kind: Node, name: node-b, field: spec.unschedulable,"
                         " equals: true}]}")
    cases, _ = collect([tmp_path], Loader(build_registry()))
    failures = rehearse(cases[0]).failures
    assert any("status is succeeded, expected awaiting_approval" in f for f in failures)
    assert any("finding 'node.kubelet_stopped' missing" in f for f in failures)
    assert any("finding 'node.healthy' present but must not be" in f for f in failures)
    assert any("proposal 'cordon' missing" in f for f in failures)
    assert any("Node node-b spec.unschedulable is absent, expected True" in f for f in failures)


def test_a_missing_scenario_is_a_located_problem(tmp_path: Path) -> None:
    path = write_case(tmp_path, "{status: succeeded}")
    path.write_text(path.read_text().replace("../scenarios/healthy.yaml", "../scenarios/nope.yaml"))
    _, problems = collect([tmp_path], Loader(build_registry()))
    assert [(p.file, p.path) for p in problems] == [(str(path), "tests[0].scenario")]
    assert "nope.yaml" in problems[0].message
