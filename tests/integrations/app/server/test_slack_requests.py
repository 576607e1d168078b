"""Slash commands and button clicks as real, signed HTTP requests; forged and replayed ones refused."""

from __future__ import annotations

import time

from widgets import ALICE, BOB, CAROL, MALLORY

from integrations.testing.server import SIGNING_SECRET, Harness, wait_for
from integrations.testing.slack_fake import FakeSlack


def _refusals(harness: Harness) -> list[str]:
    return [e.detail["reason"] for e in harness.engine.store.audit_log() if e.action == "slack.request.refused"]


def test_forged_signature_is_refused_and_audited(harness: Harness) -> None:
    response = harness.command(ALICE, "run widget-down target=w1", secret="not-the-secret")
    assert response.status_code == 401
    assert "signature mismatch" in response.json()["error"]
    assert harness.engine.store.list_runs() == []
    assert any("forged" in r for r in _refusals(harness))


def test_stale_timestamp_is_refused_as_replay(harness: Harness) -> None:
    response = harness.command(ALICE, "list", timestamp=int(time.time()) - 600)
    assert response.status_code == 401 and "stale timestamp" in response.json()["error"]
    assert any("replayed" in r for r in _refusals(harness))


def test_tampered_body_and_missing_headers_are_refused(harness: Harness) -> None:
    from urllib.parse import urlencode

    from integrations.slack import sign

    body = urlencode({"text": "list", "user_id": ALICE}).encode()
    headers = sign(SIGNING_SECRET, body)
    tampered = body.replace(b"list", b"help")
    url = f"{harness.url}/slack/commands"
    assert harness.http.post(url, content=tampered, headers=headers).status_code == 401
    assert harness.http.post(url, content=body).status_code == 401
    assert harness.http.post(url, content=body, headers=headers).status_code == 200
    replayed = harness.http.post(url, content=body, headers=headers)  # captured and sent again, inside the window
    assert replayed.status_code == 401 and "replayed request" in replayed.json()["error"]
    absurd = {**headers, "X-Slack-Request-Timestamp": "1" + "0" * 400}
    assert harness.http.post(url, content=body, headers=absurd).status_code == 401


def test_forged_click_changes_nothing(harness: Harness, restarted: list[str]) -> None:
    run_id = harness.post_alerts([{**_widget_alert()}]).json()["started"][0]["run_id"]
    harness.wait_status(run_id, "awaiting_approval")
    assert harness.click(ALICE, run_id, "restart", secret="forged").status_code == 401
    assert harness.run(run_id).status == "awaiting_approval" and restarted == []


def test_help_list_status(harness: Harness) -> None:
    assert "`run NAME" in harness.command(ALICE, "help").json()["text"]
    listing = harness.command(ALICE, "list").json()
    assert listing["response_type"] == "ephemeral"
    assert "*widget-down*" in listing["text"] and "`target`*" in listing["text"]
    assert "No run" in harness.command(ALICE, "status nope").json()["text"]
    assert "I don't understand" in harness.command(ALICE, "frobnicate").json()["text"]


def test_run_from_slack_then_approve_by_command(harness: Harness, fake_slack: FakeSlack,
                                                restarted: list[str]) -> None:
    reply = harness.command(CAROL, "run widget-down target=w7").json()["text"]
    assert reply.startswith("Started run `"), reply
    run_id = reply.split("`")[1]
    run = harness.wait_status(run_id, "awaiting_approval")
    assert run.requester == CAROL and run.trigger["kind"] == "slack"
    wait_for(lambda: "<@U0CAROL> via `/runbook`" in fake_slack.transcript(), what="the parent naming the requester")
    status = harness.command(BOB, f"status {run_id}").json()["text"]
    assert "awaiting approval" in status
    unnamed = harness.command(BOB, f"approve {run_id}").json()["text"]  # an approval names what it approves
    assert "Name the step you approve" in unnamed and f"/runbook approve {run_id} restart" in unnamed
    assert harness.run(run_id).status == "awaiting_approval"
    assert "Approved" in harness.command(BOB, f"approve {run_id} restart").json()["text"]
    harness.wait_status(run_id, "succeeded")
    assert restarted == ["w7"]


def test_run_with_bad_params_or_unknown_runbook(harness: Harness) -> None:
    text = harness.command(ALICE, "run widget-down target=Not_Valid!").json()["text"]
    assert "does not match the pattern" in text and "Params of *widget-down*" in text
    assert "did you mean 'widget-down'" in harness.command(ALICE, "run widget-dwn target=w1").json()["text"]
    assert "is not `key=value`" in harness.command(ALICE, "run widget-down w1").json()["text"]
    assert "unknown param 'targte'" in harness.command(ALICE, "run widget-down targte=w1").json()["text"]
    assert harness.engine.store.list_runs() == []


def test_runners_policy_with_user_groups(harness: Harness) -> None:
    refused = harness.command(MALLORY, "run echo text=hi").json()["text"]
    assert "You may not run *echo*" in refused
    assert any(e.action == "run.refused" and e.actor == MALLORY for e in harness.engine.store.audit_log())
    started = harness.command(BOB, 'run echo "text=hello world"').json()["text"]  # BOB is in S0ONCALL
    assert started.startswith("Started run"), started
    harness.wait_status(started.split("`")[1], "succeeded")


def test_self_approval_is_forbidden(harness: Harness, fake_slack: FakeSlack, restarted: list[str]) -> None:
    run_id = harness.command(BOB, "run widget-down target=w2").json()["text"].split("`")[1]
    harness.wait_status(run_id, "awaiting_approval")
    assert harness.click(BOB, run_id, "restart").status_code == 200
    eph = wait_for(lambda: [e for e in fake_slack.ephemerals if e["user"] == BOB], what="the refusal")
    assert "forbids approving your own request" in eph[0]["text"]
    assert harness.run(run_id).status == "awaiting_approval" and restarted == []
    assert any(e.action == "step.approve.refused" and e.actor == BOB for e in harness.engine.store.audit_log(run_id))
    harness.click(CAROL, run_id, "restart")
    harness.wait_status(run_id, "succeeded")


def test_reject_by_command_with_reason(harness: Harness, fake_slack: FakeSlack) -> None:
    run_id = harness.command(ALICE, "run widget-down target=w3").json()["text"].split("`")[1]
    harness.wait_status(run_id, "awaiting_approval")
    assert "Rejected" in harness.command(BOB, f"reject {run_id} not during the freeze").json()["text"]
    run = harness.wait_status(run_id, "rejected")
    assert "not during the freeze" in (run.error or "")
    wait_for(lambda: "rejected `restart`: not during the freeze" in fake_slack.transcript(), what="the rejection")


def test_malformed_interaction_payload(harness: Harness) -> None:
    assert harness.signed_post("/slack/interactions", {"payload": "{not json"}).status_code == 400
    assert harness.signed_post("/slack/interactions", {"nothing": "here"}).status_code == 400
    assert harness.signed_post("/slack/interactions", {"payload": '{"type":"view_submission","user":{"id":"U1"}}'}
                               ).status_code == 200
    for odd in ('{"type":"block_actions","user":{"id":"U1"},"actions":"x"}',
                '{"type":"block_actions","user":{"id":"U1"},"actions":[],"channel":"C1"}'):
        assert harness.signed_post("/slack/interactions", {"payload": odd}).status_code == 400


def _widget_alert() -> dict[str, object]:
    from integrations.testing.server import alert

    return alert("WidgetDown", {"widget": "w1"})


def test_freeze_from_chat_refuses_approvals_until_lifted(make_harness, fake_slack: FakeSlack,  # type: ignore[no-untyped-def]
                                                         restarted: list[str]) -> None:
    harness = make_harness(approvers=(ALICE,))  # the server's approvers may freeze from chat
    assert "may not freeze" in harness.command(MALLORY, "freeze on I feel like it").json()["text"]
    assert "Changes are frozen" in harness.command(ALICE, "freeze on release week").json()["text"]
    run_id = harness.post_alerts([_widget_alert()]).json()["started"][0]["run_id"]
    harness.wait_status(run_id, "awaiting_approval")  # diagnoses and proposals go on
    wait_for(lambda: "changes are frozen by U0ALICE: release week" in fake_slack.transcript(), what="the warning")
    assert harness.click(BOB, run_id, "restart").status_code == 200
    eph = wait_for(lambda: [e for e in fake_slack.ephemerals if e["user"] == BOB], what="the refusal")
    assert "changes are frozen by U0ALICE: release week" in eph[0]["text"] and restarted == []
    assert "freeze is off" in harness.command(ALICE, "freeze off").json()["text"]
    harness.click(CAROL, run_id, "restart")
    harness.wait_status(run_id, "succeeded")
    actions = [(e.actor, e.action) for e in harness.engine.store.audit_log()]
    assert (MALLORY, "freeze.on.refused") in actions and (ALICE, "freeze.on") in actions
    assert (ALICE, "freeze.off") in actions and (BOB, "step.approve.refused") in actions
