"""Alert -> Slack thread -> Approve click -> remediation -> verification, over real sockets."""

from __future__ import annotations

from widgets import ALICE, BOB, MALLORY

from integrations.testing.server import CHANNEL, Harness, alert, wait_for
from integrations.testing.slack_fake import FakeSlack, flatten


def _awaiting(harness: Harness, target: str = "w1") -> str:
    response = harness.post_alerts([alert("WidgetDown", {"widget": target, "severity": "critical"})])
    assert response.status_code == 200, response.text
    started = response.json()["started"]
    assert len(started) == 1, response.json()
    run_id = started[0]["run_id"]
    harness.wait_status(run_id, "awaiting_approval")
    return run_id


def _thread_text(fake: FakeSlack) -> str:
    return fake.transcript()


def test_alert_to_approval_to_remediation(harness: Harness, fake_slack: FakeSlack, restarted: list[str]) -> None:
    run_id = _awaiting(harness)
    parent = wait_for(lambda: fake_slack.parents(CHANNEL), what="the run's parent message")[0]
    card = wait_for(lambda: [m for m in fake_slack.thread(parent.ts) if "Approval needed" in flatten(m)],
                    what="the approval card")[0]
    buttons = next(b for b in card.blocks if b["type"] == "actions")["elements"]
    assert [b["action_id"] for b in buttons] == ["runbook_approve", "runbook_reject"]
    assert '"run":"' + run_id in buttons[0]["value"]
    assert "w1 is down" in _thread_text(fake_slack)
    assert "+ state: up" in flatten(card)  # the dry-run diff
    assert restarted == []  # nothing changed before the approval

    response = harness.click(ALICE, run_id, "restart")
    assert response.status_code == 200, response.text
    run = harness.wait_status(run_id, "succeeded")
    assert restarted == ["w1"]
    assert [c["target"] for c in run.to_dict()["mutations"]] == ["widget/w1"]

    def finished_in_slack() -> bool:
        text = fake_slack.transcript()
        return "Run :white_check_mark: succeeded" in text and "approved by <@U0ALICE>" in text
    wait_for(finished_in_slack, what="the outcome in Slack")
    text = fake_slack.transcript()
    assert "w1 is back: True" in text  # the verification step's note
    assert ":hammer_and_wrench: executed `restart widget/w1`" in text
    # the parent is updated after the outcome is posted (messages of a run go out in order)
    wait_for(lambda: "succeeded" in flatten(fake_slack.parents(CHANNEL)[0]), what="the parent updated")
    # the card lost its buttons once decided
    card = next(m for m in fake_slack.thread(parent.ts) if m.ts == card.ts)
    assert not [b for b in card.blocks if b["type"] == "actions"]
    actions = [e.action for e in harness.engine.store.audit_log(run_id)]
    assert "step.approved" in actions and "remediation.executed" in actions


def test_reject_changes_nothing(harness: Harness, fake_slack: FakeSlack, restarted: list[str]) -> None:
    run_id = _awaiting(harness)
    assert harness.click(BOB, run_id, "restart", approve=False).status_code == 200
    run = harness.wait_status(run_id, "rejected")
    assert restarted == [] and run.mutations == []
    wait_for(lambda: "rejected by <@U0BOB>" in fake_slack.transcript(), what="the rejection in Slack")


def test_unauthorised_click_is_refused_ephemerally_and_audited(harness: Harness, fake_slack: FakeSlack,
                                                                restarted: list[str]) -> None:
    run_id = _awaiting(harness)
    assert harness.click(MALLORY, run_id, "restart").status_code == 200
    eph = wait_for(lambda: [e for e in fake_slack.ephemerals if e["user"] == MALLORY], what="an ephemeral refusal")
    assert "not an approver" in eph[0]["text"] and eph[0]["channel"] == CHANNEL
    assert harness.run(run_id).status == "awaiting_approval" and restarted == []
    refused = [e for e in harness.engine.store.audit_log(run_id) if e.action == "step.approve.refused"]
    assert refused and refused[0].actor == MALLORY


def test_group_member_may_approve(harness: Harness, fake_slack: FakeSlack, restarted: list[str]) -> None:
    run_id = _awaiting(harness)
    assert harness.click(BOB, run_id, "restart").status_code == 200  # BOB is in S0ONCALL
    harness.wait_status(run_id, "succeeded")
    assert restarted == ["w1"]
    assert fake_slack.calls("usergroups.users.list")


def test_resolved_alert_is_posted_in_the_thread(harness: Harness, fake_slack: FakeSlack) -> None:
    run_id = _awaiting(harness)
    resolved = alert("WidgetDown", {"widget": "w1", "severity": "critical"}, status="resolved")
    response = harness.post_alerts([resolved])
    assert response.status_code == 200 and response.json()["resolved"][0]["run_id"] == run_id
    wait_for(lambda: "Alert *WidgetDown* resolved" in fake_slack.transcript(), what="the resolution in the thread")
    assert [a["status"] for a in harness.engine.store.alerts(run_id)] == ["firing", "resolved"]


def test_without_slack_the_server_runs_and_logs(make_harness, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("INFO", logger="runbook")
    harness = make_harness(slack=False)
    run_id = _awaiting(harness)
    assert harness.command(ALICE, "help").status_code == 404
    assert f"run {run_id} (widget-down) awaits approval of restart" in caplog.text
