"""Signature checks, user-group lookups, Block Kit rendering and the fake's transcript."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from engine.events import RunEvent
from engine.records import RunRecord, RunStatus, StepRecord, StepStatus
from engine.verdict import Finding
from integrations.slack import digest, render
from integrations.slack.directory import Directory, is_group
from integrations.slack.verify import Verifier, sign
from integrations.testing.slack_fake import FakeSlack, Posted, flatten

SECRET = "shh"


def test_verifier_reasons() -> None:
    now = 1_700_000_000
    verifier = Verifier(SECRET, clock=lambda: now)
    body = b"token=x&text=list"
    assert verifier.problem(body, {k.lower(): v for k, v in sign(SECRET, body, now).items()}) is None
    assert "forged" in (verifier.problem(body, _lower(sign("other", body, now))) or "")
    assert "tampered" in (verifier.problem(body + b"!", _lower(sign(SECRET, body, now))) or "")
    assert "stale" in (verifier.problem(body, _lower(sign(SECRET, body, now - 301))) or "")
    assert "missing" in (verifier.problem(body, {}) or "")
    assert "malformed" in (verifier.problem(body, {"x-slack-request-timestamp": "soon", "x-slack-signature": "v0=1"})
                           or "")


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_directory_static_api_handles_cache_and_failures() -> None:
    with FakeSlack(usergroups={"S1": ["U1", "U2"]}, handles={"oncall": "S1"}) as fake:
        client = WebClient(token=fake.token, base_url=fake.url, retry_handlers=[])
        ticks = [0.0]
        directory = Directory(client, {"S9": ["U9"]}, ttl=60, clock=lambda: ticks[0])
        assert directory.groups_of("U1", ["S1", "U5", "@oncall", "S9"]) == {"S1", "@oncall"}
        assert directory.groups_of("U9", ["S9"]) == {"S9"}
        assert directory.groups_of("U1", ["S1"]) == {"S1"}
        assert len(fake.calls("usergroups.users.list")) == 1 and len(fake.calls("usergroups.list")) == 1
        ticks[0] = 61
        fake.usergroups["S1"] = ["U2"]
        assert directory.groups_of("U1", ["S1"]) == frozenset()  # membership refreshed after the ttl
        assert directory.groups_of("U1", ["S404"]) == frozenset()  # no_such_subteam: fail closed
        fake.go_down()
        ticks[0] = 200
        assert directory.groups_of("U2", ["S1"]) == {"S1"}  # Slack down: the last known answer stands
        fake.come_back()
    assert is_group("S0ONCALL") and is_group("@sre") and not is_group("U123") and not is_group("Sam")


def test_text_is_escaped_redacted_and_bounded() -> None:
    assert render.text("<!channel> & <https://evil|click>") == "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"
    assert "xoxb-1234567890" not in render.text("token is xoxb-1234567890-abcdef")
    assert render.text("x" * 50, limit=10) == "x" * 9 + "…"
    assert render.who("U123ABC") == "<@U123ABC>" and render.who("alertmanager") == "alertmanager"


def test_proposal_card_buttons_and_decided_form() -> None:
    data = {"summary": "Cordon n1", "target": "n1", "action": "k8s.node.cordon", "risk": "low", "reason": "NotReady",
            "dry_run": [{"verb": "patch", "target": "Node n1", "diff": ["spec.unschedulable: false -> true"]}],
            "warnings": ["pods stay"]}
    card = render.proposal("run1", "cordon", data, 1_700_000_000.0)
    actions = next(b for b in card["blocks"] if b["type"] == "actions")["elements"]
    assert [(a["action_id"], a["value"]) for a in actions] == [
        ("runbook_approve", '{"run":"run1","step":"cordon"}'), ("runbook_reject", '{"run":"run1","step":"cordon"}')]
    decided = render.proposal("run1", "cordon", data, None, outcome="approved by <@U1>")
    assert not [b for b in decided["blocks"] if b["type"] == "actions"]
    assert "approved by <@U1>" in str(decided["blocks"][-1])


def test_step_results_skip_noise() -> None:
    assert render.step_result({"status": "skipped", "id": "x"}) is None
    assert render.step_result({"status": "proposed", "id": "x", "findings": []}) is None
    found = [{"id": "f", "severity": "critical", "summary": "s", "evidence": []}]  # findings: the diagnosis reply
    assert render.step_result({"status": "succeeded", "id": "x", "action": "k8s.x", "findings": found}) is None
    said = render.step_result({"status": "succeeded", "id": "x", "action": "notify", "output": {"text": "a\nb"}})
    assert said is not None and said["blocks"][1]["text"]["text"] == "a\nb"  # a real newline, not `\\n`
    failed = render.step_result({"status": "failed", "id": "x", "title": "T", "action": "a",
                                 "error": "boom password=hunter2"})
    assert failed is not None and "hunter2" not in str(failed) and "boom" in str(failed)


def test_parent_message_for_alert_and_slack_runs() -> None:
    from engine.actions import ActionRegistry
    from engine.builtins import register_builtins
    from engine.loader import Loader

    runbook = Loader(register_builtins(ActionRegistry())).load_text(
        "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: rb, title: Thing <broken>, severity: critical}\n"
        "steps: [{id: a, title: A, action: noop}]\n")
    run = RunRecord("r1", "rb", RunStatus.RUNNING, {"node": "n1", "x": None}, "alertmanager",
                    {"kind": "alert", "alert": {"labels": {"alertname": "NodeDown", "severity": "critical"}}}, "{}")
    body = str(digest.parent(run, runbook))
    assert "Thing &lt;broken&gt;" in body and "alert *NodeDown* (critical)" in body and "`node=n1`" in body
    run.trigger, run.requester = {"kind": "slack"}, "U07"
    assert "<@U07> via `/runbook`" in str(digest.parent(run, runbook))
    assert isinstance(RunEvent("run_started", "r1", "rb"), RunEvent)


def test_fake_transcript() -> None:
    with FakeSlack() as fake:
        client = WebClient(token=fake.token, base_url=fake.url, retry_handlers=[])
        parent = client.chat_postMessage(channel="C1", text="parent", blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Run* &lt;x&gt;"}},
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Approve"}}]}])
        client.chat_postMessage(channel="C1", text="a reply", thread_ts=parent["ts"])
        client.chat_update(channel="C1", ts=parent["ts"], text="parent v2")
        client.chat_postEphemeral(channel="C1", user="U1", text="only you")
        assert client.auth_test()["user_id"] == "U0BOT"
        try:
            WebClient(token="wrong", base_url=fake.url, retry_handlers=[]).auth_test()
        except SlackApiError as exc:
            assert exc.response["error"] == "invalid_auth"
        else:
            raise AssertionError("a wrong token must be refused")
        text = fake.transcript()
    assert text.splitlines()[0] == "#C1"
    assert "*Run* <x>\n  [Approve]" in text and "(edited 1x)" in text
    assert "    ↳ a reply" in text and "(only visible to U1 in #C1) only you" in text
    assert flatten(fake.messages[1]) == "a reply"


def test_router_prefers_runbook_then_severity_then_default_then_origin() -> None:
    from engine.actions import ActionRegistry
    from engine.builtins import register_builtins
    from engine.loader import Loader
    from integrations.slack.sink import Router

    loader = Loader(register_builtins(ActionRegistry()))

    def runbook(extra: str, severity: str = "critical"):  # type: ignore[no-untyped-def]
        return loader.load_text(f"apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: rb, title: T, "
                                f"severity: {severity}}}\n{extra}steps: [{{id: a, title: A, action: noop}}]\n")

    run = RunRecord("r1", "rb", RunStatus.RUNNING, {}, "U1", {"kind": "slack", "channel": "C0ORIGIN"}, "{}")
    router = Router("C0DEFAULT", {"critical": "C0PAGE"})
    assert router.channel(runbook("chat: {channel: C0OWN}\n"), run) == "C0OWN"
    assert router.channel(runbook(""), run) == "C0PAGE"
    assert router.channel(runbook("", "info"), run) == "C0DEFAULT"
    assert Router().channel(runbook("", "info"), run) == "C0ORIGIN"
    run.trigger = {}
    assert Router().channel(runbook("", "info"), run) is None


def test_the_notification_text_is_redacted_and_escaped_too() -> None:
    from integrations.slack import render

    card = render.proposal("r1", "fix", {"summary": "Restart <!channel> password=hunter2", "risk": "low"}, None)
    assert "hunter2" not in card["text"] and "<!channel>" not in card["text"] and "&lt;!channel&gt;" in card["text"]


def test_the_approval_card_shows_the_rest_of_the_plan() -> None:
    data = {"summary": "Cordon node-b", "action": "k8s.node.cordon", "target": "Node node-b", "risk": "low",
            "planned": [{"step": "drain", "summary": "Drain node-b",
                         "condition": "after cordon is approved and succeeds",
                         "preview": [{"verb": "evict", "target": "Pod shop/cart-1", "diff": ["evict shop/cart-1"]}]}]}
    body = _shown(render.proposal("run1", "cordon", data, None))
    assert "Then, planned:" in body and "2. Drain node-b (`drain`)" in body
    assert "after cordon is approved and succeeds" in body and "preview `Pod shop/cart-1`: evict shop/cart-1" in body
    assert "Then, planned" not in _shown(render.proposal("run1", "cordon", {**data, "planned": []}, None))


def test_many_findings_of_one_id_are_grouped_and_none_is_lost() -> None:
    findings = [Finding(id="node_pods.no_ready_replica", severity="critical", summary=f"app-{n} has no ready replica")
                for n in range(6)]
    findings.append(Finding(id="node.kubelet_stopped", severity="critical", summary="kubelet stopped"))
    step = StepRecord(0, "pods", "k8s.node.pods", StepStatus.SUCCEEDED, findings=findings)
    run = RunRecord("r1", "rb", RunStatus.SUCCEEDED, {}, "alertmanager", {}, "{}", steps=[step])
    body = _shown(digest.diagnosis(run))
    assert "6 × `node_pods.no_ready_replica`" in body and "kubelet stopped" in body
    assert all(f"app-{n} has no ready replica" in body for n in range(6))


def _shown(message: dict[str, Any] | None) -> str:
    assert message is not None
    return flatten(Posted("C1", "1.0", message["text"], message["blocks"]))


def test_channel_names_show_one_hash() -> None:
    from integrations.slack.markup import SlackMarkup

    markup = SlackMarkup()
    assert markup.channel("#ops-alerts") == "#ops-alerts" == markup.channel("ops-alerts")
    assert markup.channel("C0OPS") == "<#C0OPS>"
