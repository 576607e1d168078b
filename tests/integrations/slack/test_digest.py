"""The chat digest: a real node-not-ready run over the simulated cluster, read as Slack would show it, plus
Slack's limits and hostile input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from engine.records import RunRecord, RunStatus, StepRecord, StepStatus
from engine.settings import Settings
from engine.verdict import Evidence, Finding
from integrations.app.clusters import open_cluster
from integrations.app.wiring import build
from integrations.slack import digest

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "runbooks" / "scenarios" / "node-not-ready" / "kubelet-stopped.yaml"
PAGE = "https://runbook.example/runs/abc"


def _texts(message: dict[str, Any]) -> list[str]:
    out = []
    for block in message["blocks"]:
        if "text" in block:
            out.append(block["text"]["text"])
        out += [f["text"] for f in block.get("fields", [])] + [e["text"] for e in block.get("elements", [])]
    return out


def _within_limits(message: dict[str, Any]) -> None:
    assert len(message["blocks"]) <= 50
    assert all(len(t) <= 3000 for t in _texts(message))
    assert all(t.count("```") % 2 == 0 for t in _texts(message))  # no code block cut open


@pytest.fixture(scope="module")
def node_run(tmp_path_factory: pytest.TempPathFactory) -> RunRecord:
    tmp = tmp_path_factory.mktemp("digest")
    settings = Settings.model_validate({"db": str(tmp / "runs.db"), "runbook_path": [str(ROOT / "runbooks")]})
    alert = {"labels": {"alertname": "KubeNodeNotReady", "node": "node-b", "cluster": "prod-eu"},
             "annotations": {"description": "node-b has been unready for more than 15 minutes.",
                             "runbook_url": "https://runbooks.example/node-not-ready"},
             "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up&g0.tab=1"}
    with open_cluster(settings, SCENARIO) as kube:
        engine = build(settings, kube=kube)
        try:
            return engine.executor.run(engine.catalog.get("node-not-ready"), {"node": "node-b"},
                                       requester="alertmanager", trigger={
                                           "kind": "alert", "alert": alert, "cluster": "prod-eu",
                                           "external_url": "http://alertmanager.example:9093"})
        finally:
            engine.close()


def test_parent_is_the_whole_story_in_one_message(node_run: RunRecord) -> None:
    from engine.model import Runbook

    message = digest.parent(node_run, Runbook.model_validate_json(node_run.definition), page=PAGE)
    _within_limits(message)
    body = "\n".join(_texts(message))
    assert f"node-b, 60, 30 · run {node_run.id}" in message["text"]  # each run's notification is its own
    assert ":raising_hand: awaiting approval" in body and "`node=node-b" in body and "`prod-eu`" in body
    assert "node-b has been unready for more than 15 minutes." in body
    assert "*Verdict:* :red_circle: 2 critical" in body and "kubelet on node-b stopped reporting" in body
    assert "1. :raising_hand: Cordon node-b so nothing new is scheduled there (`cordon`, awaiting approval)" in body
    assert "2. :clipboard: Force-delete" in body and "planned" in body
    assert f"<{PAGE}|Run page>" in body and "|Source>" in body and "|Runbook doc>" in body
    silence = next(t for t in _texts(message) if "Silence" in t)
    assert "http://alertmanager.example:9093/#/silences/new?filter=%7B" in silence
    assert "g0.expr=up&amp;g0.tab=1|Source>" in body  # & escaped for mrkdwn inside the link


def test_diagnosis_groups_by_severity_with_readable_evidence(node_run: RunRecord) -> None:
    message = digest.diagnosis(node_run, page=PAGE)
    assert message is not None
    _within_limits(message)
    texts = _texts(message)
    headers = [t for t in texts if t.startswith((":red_circle: *Critical*", ":large_orange_circle: *Warning*"))]
    assert [h.split("*")[1] for h in headers] == ["Critical", "Warning"]
    body = "\n".join(texts)
    assert "see it: `kubectl get lease -n kube-node-lease node-b -o yaml` ; `kubectl get node node-b -o yaml`" in body
    assert "```[\n  &quot;" not in body and '```[\n  "node.kubernetes.io/unreachable"\n]```' in body  # real newlines


def _run(findings: list[Finding], **fields: Any) -> RunRecord:
    step = StepRecord(0, "look", "finding", StepStatus.SUCCEEDED, findings=findings)
    values: dict[str, Any] = {"id": "r1", "runbook": "demo", "status": RunStatus.SUCCEEDED, "params": {},
                              "requester": "alertmanager", "trigger": {}, "definition": "{}", "steps": [step]}
    return RunRecord(**(values | fields))


def test_slack_limits_hold_for_huge_diagnoses() -> None:
    log = "\n".join(f"line {i}: " + "x" * 200 for i in range(400))
    findings = [Finding(id=f"f{i}", severity="warning", summary="s" * 900,
                        evidence=(Evidence(object=f"Pod ns/p{i}", field="log", value=log),) * 4) for i in range(80)]
    message = digest.diagnosis(_run(findings), page=PAGE)
    assert message is not None
    _within_limits(message)
    body = "\n".join(_texts(message))
    assert re.search(r"… \d+ more on the run page$", body)
    assert "_… cut; full text on the <https://runbook.example/runs/abc|run page>_" in body
    assert "`kubectl logs -n ns p0 --previous`" in body


def test_outside_data_cannot_ping_or_link() -> None:
    planted = Finding(id="x", severity="critical", summary="<!channel> hi <https://evil.example|click>",
                      evidence=(Evidence(object="Pod a/b", field="status", value="<@U0BOSS>"),))
    run = _run([planted], params={"selector": "", "node": "n1"}, trigger={
        "alert": {"labels": {"alertname": "<!here>"}, "generatorURL": "javascript:alert(1)",
                  "annotations": {"runbook_url": "https://ok.example/a|b>c"}}})
    from engine.model import Runbook

    runbook = Runbook.model_validate({"apiVersion": "runbook/v1", "kind": "Runbook",
                                      "metadata": {"name": "demo", "title": "Demo"},
                                      "steps": [{"id": "look", "title": "Look", "action": "notify",
                                                 "with": {"text": "hi"}}]})
    wire = json.dumps([digest.parent(run, runbook), digest.diagnosis(run)])
    assert "<!channel>" not in wire and "<!here>" not in wire and "<@U0BOSS>" not in wire
    assert "javascript:" not in wire and "<https://evil.example" not in wire
    assert "<https://ok.example/a%7Cb%3Ec|Runbook doc>" in wire
    assert "`node=n1`" in wire and "selector" not in wire  # empty params are dropped
