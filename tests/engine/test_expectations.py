"""Rehearsal expectations on single steps: status, text a notify step posted, any output field."""

from __future__ import annotations

from engine.expectations import check_expectations
from engine.model import TestExpect as Expect
from engine.records import RunRecord, RunStatus, StepRecord, StepStatus


def run() -> RunRecord:
    record = RunRecord(id="r1", runbook="rb", status=RunStatus.SUCCEEDED, params={}, requester="t", trigger={},
                       definition="{}")
    record.steps = [
        StepRecord(0, "history", "k8s.rollout.history", StepStatus.SUCCEEDED,
                   output={"current_revision": 2, "revisions": [{"images": ["web:1.0"]}]}),
        StepRecord(1, "report", "notify", StepStatus.SUCCEEDED, output={"text": "Rolled back to revision 1."}),
        StepRecord(2, "undo", "k8s.rollout.undo", StepStatus.SKIPPED),
    ]
    return record


def expect(**steps: object) -> list[str]:
    return check_expectations(run(), Expect.model_validate({"steps": steps}))


def test_matching_step_expectations_pass() -> None:
    assert expect(history={"status": "succeeded", "output": {"current_revision": 2,
                                                              "revisions[0].images[0]": "web:1.0"}},
                  report={"contains": "revision 1"}, undo={"status": "skipped"}) == []


def test_each_mismatch_is_named() -> None:
    assert expect(history={"output": {"current_revision": 3}}) == [
        "step 'history' output current_revision is 2, expected 3"]
    assert expect(history={"output": {"previous_revision": 1}}) == [
        "step 'history' output previous_revision is absent, expected 1"]
    assert expect(report={"contains": "revision 7"}) == [
        "step 'report' output does not contain 'revision 7': 'Rolled back to revision 1.'"]
    assert expect(undo={"status": "succeeded"}) == ["step 'undo' is skipped, expected succeeded"]
    assert expect(verify={"status": "succeeded"}) == ["step 'verify' did not run"]
