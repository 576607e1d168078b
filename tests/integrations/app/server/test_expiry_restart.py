"""Approval windows close on time; a restarted server picks up runs awaiting approval."""

from __future__ import annotations

from collections.abc import Callable

from widgets import ALICE, BOB, WIDGET, new_engine, registry_with_restart

from integrations.testing.server import Harness, alert, make_engine, wait_for
from integrations.testing.slack_fake import FakeSlack, flatten

SHORT = WIDGET.replace("approval_timeout: 1h", "approval_timeout: 1s")


def test_approval_expires_and_late_click_is_refused(make_harness: Callable[..., Harness], fake_slack: FakeSlack,
                                                     restarted: list[str]) -> None:
    harness = make_harness(runbooks=(SHORT,))
    run_id = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})]).json()["started"][0]["run_id"]
    run = harness.wait_status(run_id, "timed_out", "awaiting_approval")
    run = harness.wait_status(run_id, "timed_out")  # the sweeper closes the window
    assert "nothing was changed" in (run.error or "")
    wait_for(lambda: "Approval timed out" in fake_slack.transcript(), what="the timeout in the thread")
    wait_for(lambda: [m for m in fake_slack.messages if "expired: nobody decided in time" in flatten(m)],
             what="the card marked expired")
    harness.click(ALICE, run_id, "restart")
    eph = wait_for(lambda: [e for e in fake_slack.ephemerals if e["user"] == ALICE], what="the refusal")
    assert "timed_out" in eph[0]["text"]
    assert restarted == [] and harness.run(run_id).status == "timed_out"


def test_click_after_restart_still_works(make_harness: Callable[..., Harness], fake_slack: FakeSlack,
                                         restarted: list[str]) -> None:
    harness = make_harness()
    run_id = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})]).json()["started"][0]["run_id"]
    harness.wait_status(run_id, "awaiting_approval")
    wait_for(lambda: harness.slack and harness.slack.outbox.pending() == 0, what="chat delivered")

    harness.restart(new_engine(harness, restarted))  # a new process: new engine, app and sender, same store

    assert harness.run(run_id).status == "awaiting_approval"
    assert harness.click(BOB, run_id, "restart").status_code == 200
    harness.wait_status(run_id, "succeeded")
    assert restarted == ["w1"]
    # the new process threads under the parent the old one posted
    wait_for(lambda: "approved by <@U0BOB>" in fake_slack.transcript(), what="the decision in the same thread")
    parents = fake_slack.parents()
    assert len(parents) == 1
    wait_for(lambda: any("succeeded" in flatten(m) for m in fake_slack.thread(parents[0].ts)),
             what="the outcome in the same thread")
    # an alert repeat after the restart still dedups onto the same run (the key lives in the store)
    again = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})]).json()
    assert again["deduplicated"][0]["run_id"] == run_id


def test_pending_runs_are_picked_up_on_start(make_harness: Callable[..., Harness], restarted: list[str]) -> None:
    harness = make_harness()
    harness.stop()
    engine = harness.engine
    run_id, _ = engine.executor.start(engine.catalog.get("widget-down"), {"target": "w9"}, requester=ALICE)
    harness.restart(make_engine(engine.settings, registry_with_restart(restarted), (WIDGET,)))
    harness.wait_status(run_id, "awaiting_approval")
