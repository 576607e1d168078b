"""`chat_detail: steps` replies: one per finished step, short, escaped, within Slack's limits."""

from __future__ import annotations

import json

from integrations.slack.steplog import step_reply


def _finding(n: int) -> dict[str, object]:
    return {"id": f"f{n}", "severity": "warning", "summary": f"<!channel> finding {n}", "evidence": []}


def test_a_step_reply_is_short_escaped_and_within_slack_limits() -> None:
    record = {"id": "pods", "title": "Pods on <node>", "action": "k8s.node.pods", "status": "failed",
              "output": {}, "findings": [_finding(n) for n in range(40)], "error": "boom\n" * 2000,
              "changes": [{"verb": "patch", "target": "Node n1", "dry_run": False, "outcome": "effect_unknown"}],
              "started_at": 10.0, "finished_at": 12.5}
    reply = step_reply(record)
    assert reply is not None and reply["text"] == "step Pods on &lt;node&gt;: failed"
    body = json.dumps(reply["blocks"], ensure_ascii=False)
    assert len(reply["blocks"]) <= 50 and all(len(b["text"]["text"]) <= 3000 for b in reply["blocks"]
                                               if b["type"] == "section")
    assert ":x: *Pods on &lt;node&gt;* · `k8s.node.pods` · failed" in body
    assert "<!channel>" not in body and "&lt;!channel&gt; finding 4" in body and "finding 5 " not in body
    assert "35 more in the diagnosis" in body and "(effect_unknown)" in body
    assert "full text on the run page" in body and "took 2.5 s" in body


def test_output_shows_when_there_are_no_findings_and_proposed_steps_wait_for_their_card() -> None:
    quiet = {"id": "node", "action": "k8s.node.inspect", "status": "succeeded", "output": {"cause": "x" * 5000}}
    reply = step_reply(quiet)
    assert reply is not None and "```" in json.dumps(reply["blocks"]) and len(json.dumps(reply)) < 2000
    skipped = step_reply({"id": "s", "action": "finding", "status": "skipped"})
    assert skipped is not None and ":fast_forward: *s*" in json.dumps(skipped["blocks"], ensure_ascii=False)
    assert step_reply({"id": "cordon", "action": "k8s.node.cordon", "status": "proposed"}) is None
