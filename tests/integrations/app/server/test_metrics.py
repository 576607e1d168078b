"""The operator's metrics: runs awaiting approval, the build, unmatched alerts by reason, and chat lag."""

from __future__ import annotations

import platform
import re

from integrations.testing.server import Harness, alert, wait_for
from integrations.testing.slack_fake import FakeSlack


def _scrape(harness: Harness) -> str:
    return harness.http.get(f"{harness.url}/metrics").text


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, f"{series} not in\n{text}"
    return float(match.group(1))


def test_awaiting_build_and_unmatched(harness: Harness) -> None:
    body = harness.post_alerts([alert("WidgetDown", {"widget": "w1"}), alert("WidgetDown", {"widget": "w2"}),
                                alert("NobodyCares", {"x": "1"})]).json()
    for started in body["started"]:
        harness.wait_status(started["run_id"], "awaiting_approval")
    text = _scrape(harness)
    assert _value(text, "runbook_runs_awaiting_approval") == 2
    assert _value(text, 'runbook_alerts_unmatched_total{reason="no-trigger"}') == 1
    assert re.search(rf'^runbook_build_info{{python="{platform.python_version()}",version="[^"]+"}} 1$', text,
                     re.MULTILINE)
    assert "# TYPE runbook_runs_awaiting_approval gauge" in text


def test_chat_backlog_and_its_age(harness: Harness, fake_slack: FakeSlack) -> None:
    """Slack down: messages stay queued and the age of the oldest grows."""
    fake_slack.go_down()
    run_id = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})]).json()["started"][0]["run_id"]
    harness.wait_status(run_id, "awaiting_approval")
    wait_for(lambda: _value(_scrape(harness), "runbook_chat_outbox_oldest_seconds") >= 1.0, timeout=30,
             what="the oldest queued chat message to be a second old")
    text = _scrape(harness)
    assert _value(text, "runbook_chat_outbox_pending") >= 2  # the parent message and the approval card at least
