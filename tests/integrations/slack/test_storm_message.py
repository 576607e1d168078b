"""The storm message rendered from its members: targets named by what tells them apart, the shared cause,
Slack's section limit kept however many targets there are."""

from __future__ import annotations

from dataclasses import replace

from engine.model import Runbook
from engine.records import RunRecord, RunStatus, StepRecord, StepStatus
from engine.verdict import Finding
from integrations.slack import storm
from integrations.testing.slack_fake import Posted, flatten

RUNBOOK = Runbook.model_validate({
    "apiVersion": "runbook/v1", "kind": "Runbook",
    "metadata": {"name": "node-not-ready", "title": "Node NotReady", "severity": "critical"},
    "params": {"node": {"type": "string"}}, "steps": [{"id": "look", "title": "Look", "action": "noop"}]})


def member(i: int, status: RunStatus = RunStatus.SUCCEEDED) -> RunRecord:
    finding = Finding(id="node.many_not_ready", severity="critical", summary="41% of nodes NotReady in eu-1a")
    step = StepRecord(index=0, id="look", action="k8s.node.inspect", status=StepStatus.SUCCEEDED, findings=[finding])
    return RunRecord(id=f"run{i}", runbook="node-not-ready", status=status, requester="alertmanager", trigger={},
                     params={"node": f"node-{i:05d}", "many_nodes_percent": 30}, definition="",
                     created_at=float(i), steps=[step] if status.finished else [])


def shown(body: dict[str, object]) -> str:
    return flatten(Posted("C1", "1.0", str(body["text"]), list(body["blocks"])))  # type: ignore[arg-type]


def test_targets_are_named_by_what_differs_and_the_cause_is_shared() -> None:
    members = [member(0), member(1), member(2, RunStatus.RUNNING)]
    text = shown(storm.message(RUNBOOK, members))
    assert "3 targets, 2 finished" in text
    assert "Shared cause* (2 of 3): 41% of nodes NotReady in eu-1a" in text
    assert "`node-00000` :white_check_mark: succeeded" in text and "`node-00002` :gear: running" in text
    assert ", 30" not in text  # the threshold every member shares is not a target


def test_sixty_targets_stay_within_slack_limits() -> None:
    body = storm.message(RUNBOOK, [member(i) for i in range(120)], page="https://runbook.example/runs")
    blocks = body["blocks"]
    assert isinstance(blocks, list) and len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b.get("type") == "section")
    text = shown(body)
    assert text.count("• `node-") == storm.SHOWN and "… and 20 more" in text and "|All runs>" in text


def odd(i: int, finding_id: str = "node.disk_full", severity: str = "critical") -> RunRecord:
    finding = Finding(id=finding_id, severity=severity, summary=f"disk full on node-{i:05d}")  # type: ignore[arg-type]
    step = StepRecord(index=0, id="look", action="k8s.node.inspect", status=StepStatus.SUCCEEDED, findings=[finding])
    return replace(member(i), steps=[step])


def test_a_different_cause_stands_apart_once_the_storm_has_one() -> None:
    zone = [member(0), member(1)]
    assert storm.stands_apart(odd(2), [*zone, odd(2)])  # two share the zone: the disk is another incident
    assert not storm.stands_apart(odd(1), [member(0), odd(1)])  # one finished member is no storm cause yet
    assert not storm.stands_apart(member(2), [*zone, member(2)])  # the same cause
    assert not storm.stands_apart(odd(2, "node.ready", "info"), [*zone, odd(2, "node.ready", "info")])  # all-clear
    text = shown(storm.message(RUNBOOK, [*zone, odd(2), member(3)]))
    apart, _, rest = text.partition("`node-00000`")
    assert "Different cause* (1)" in apart and "`node-00002` :white_check_mark: succeeded — disk full on" in apart
    assert "Shared cause* (3 of 4): 41% of nodes NotReady in eu-1a" in apart and "node-00002" not in rest
