"""Slack rate-limiting or down never blocks a run nor loses a message; order per thread is kept."""

from __future__ import annotations

from widgets import ALICE

from integrations.testing.server import Harness, alert, wait_for
from integrations.testing.slack_fake import FakeSlack, flatten


def _delivered(harness: Harness) -> bool:
    slack = harness.slack
    return slack is not None and slack.outbox.pending() == 0


def _thread_order(fake: FakeSlack) -> list[str]:
    parent = fake.parents()[0]
    return [flatten(m).split("\n")[0] for m in fake.thread(parent.ts)]


def test_rate_limited_then_success(harness: Harness, fake_slack: FakeSlack) -> None:
    fake_slack.fail("ratelimited", times=2, retry_after=1)
    run_id = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})]).json()["started"][0]["run_id"]
    harness.wait_status(run_id, "awaiting_approval")
    wait_for(lambda: _delivered(harness), what="the outbox to drain")
    assert [r.status for r in fake_slack.requests][:3] == [429, 429, 200]  # the same call, retried
    assert fake_slack.requests[0].params == fake_slack.requests[2].params  # (the wait itself: test_slack_outbox)
    assert harness.metrics.chat_errors.value(reason="ratelimited") == 2
    assert len(fake_slack.parents()) == 1
    assert [line.split("*")[1] for line in _thread_order(fake_slack)] == ["Diagnosis", "Approval needed:"]


def test_slack_down_for_a_while_then_back(harness: Harness, fake_slack: FakeSlack, restarted: list[str]) -> None:
    fake_slack.go_down()
    run_id = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})]).json()["started"][0]["run_id"]
    harness.wait_status(run_id, "awaiting_approval")  # the run is not held up by chat
    assert harness.command(ALICE, f"approve {run_id} restart").status_code == 200  # slash commands still answer
    harness.wait_status(run_id, "succeeded")
    slack = harness.slack
    assert slack is not None and slack.outbox.pending() > 0
    wait_for(lambda: harness.metrics.chat_errors.value(reason="unreachable") >= 2, what="failed deliveries")
    fake_slack.come_back()
    wait_for(lambda: _delivered(harness), timeout=60, what="everything delivered after the outage")
    assert restarted == ["w1"]
    order = _thread_order(fake_slack)
    assert order[0].startswith(":stethoscope: *Diagnosis*")
    assert order[1].startswith(":raising_hand: *Approval needed:*")
    assert order[2].startswith(":+1: <@U0ALICE> approved")
    assert order[3].startswith(":white_check_mark: *Restart w1*")  # what it changed
    assert order[4].startswith(":white_check_mark: *Verify w1*")  # what it said
    assert order[5].startswith("*Run :white_check_mark: succeeded*")
    assert "succeeded" in flatten(fake_slack.parents()[0])
    assert slack.outbox.failures() == []


def test_slack_hanging_does_not_block_runs(harness: Harness, fake_slack: FakeSlack) -> None:
    fake_slack.fail("hang", times=1)
    first = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})]).json()["started"][0]["run_id"]
    second = harness.post_alerts([alert("WidgetDown", {"widget": "w2"})]).json()["started"][0]["run_id"]
    harness.wait_status(first, "awaiting_approval")
    harness.wait_status(second, "awaiting_approval")
    wait_for(lambda: _delivered(harness), timeout=60, what="delivery after the client timeout")
    assert len(fake_slack.parents()) == 2
    fake_slack.release()


def test_unknown_channel_is_given_up_without_blocking_others(harness: Harness, fake_slack: FakeSlack) -> None:
    fake_slack.unknown_channels.add("C0INCIDENTS")
    run_id = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})]).json()["started"][0]["run_id"]
    harness.wait_status(run_id, "awaiting_approval")
    slack = harness.slack
    assert slack is not None
    wait_for(lambda: _delivered(harness), what="the outbox to settle")
    assert slack.outbox.failures() and all(f[2] in ("channel_not_found", "no parent message to update")
                                           or "no parent" in f[2] for f in slack.outbox.failures())
