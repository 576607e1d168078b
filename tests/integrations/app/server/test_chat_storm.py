"""Storms become one thread: runs of one runbook started close together are listed on one storm message
updated as they finish; a run keeps its own thread only when it needs a decision (or came first)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from widgets import WIDGET

from engine.actions import ActionRegistry
from engine.builtins import register_builtins
from integrations.slack.outbox import Message
from integrations.testing.server import CHANNEL, Harness, alert, make_engine, server_settings, wait_for
from integrations.testing.slack_fake import FakeSlack, flatten
from integrations.testing.slack_limits import SLACK_TIERS, RateLimits, Tier

ZONE = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: node-down, title: Node down, severity: warning}
params:
  node: {type: string, required: true, pattern: "^[a-z0-9-]+$"}
triggers:
  alerts:
    - match: {alertname: NodeDown}
      params: {node: node}
steps:
  - id: look
    title: Look at {{ params.node }}
    action: finding
    with:
      id: zone-outage
      severity: critical
      summary: "zone eu-1a lost power"
      evidence: [{object: "Node {{ params.node }}", field: status, value: NotReady}]
"""


def _settled(harness: Harness, run_ids: list[str], *statuses: str) -> bool:
    slack = harness.slack
    return (all(harness.run(r).status in statuses for r in run_ids)
            and slack is not None and slack.outbox.pending() == 0)


def _storm(fake: FakeSlack) -> str:
    [message] = fake.find(lambda m: m.thread_ts is None and m.text.startswith("Storm:"))
    return flatten(message)


def test_a_storm_is_one_message_listing_its_targets(make_harness: Callable[..., Harness],
                                                    fake_slack: FakeSlack) -> None:
    harness = make_harness(runbooks=(ZONE,), storm_window=120)
    nodes = [f"node-{i}" for i in range(6)]
    started = harness.post_alerts([alert("NodeDown", {"node": n}) for n in nodes]).json()["started"]
    run_ids = [s["run_id"] for s in started]
    assert len(run_ids) == 6
    wait_for(lambda: _settled(harness, run_ids, "succeeded") and "6 finished" in _storm(fake_slack),
             what="every run finished and the storm message caught up")
    parents = fake_slack.parents(CHANNEL)
    assert len(parents) == 2  # the first run's own (no storm was known yet) and the storm's; not six
    storm = _storm(fake_slack)
    assert "Storm: Node down" in storm and "6 targets, 6 finished" in storm
    assert "Shared cause* (6 of 6): zone eu-1a lost power" in storm
    assert all(f"`{n}`" in storm for n in nodes)
    assert sum(len(fake_slack.thread(p.ts)) for p in parents) == 1  # the first run's diagnosis only
    assert fake_slack.find(lambda m: m.text.startswith("Storm:"))[0].edits >= 1


def test_a_member_needing_a_decision_keeps_its_own_thread(make_harness: Callable[..., Harness],
                                                          fake_slack: FakeSlack) -> None:
    harness = make_harness(runbooks=(WIDGET,), storm_window=120)
    started = harness.post_alerts([alert("WidgetDown", {"widget": w}) for w in ("w1", "w2")]).json()["started"]
    run_ids = [s["run_id"] for s in started]
    wait_for(lambda: _settled(harness, run_ids, "awaiting_approval"), what="both runs awaiting approval")
    parents = fake_slack.parents(CHANNEL)
    assert len(parents) == 3  # each run's own (each awaits a decision) and the storm message
    own = [p for p in parents if not p.text.startswith("Storm:")]
    for parent in own:  # the whole digest thread, as without a storm
        assert [m.text.split(" ")[0] for m in fake_slack.thread(parent.ts)] == ["Diagnosis", "Approval"]
    assert "needs a decision" in _storm(fake_slack)


def test_storms_off_by_window_zero(make_harness: Callable[..., Harness], fake_slack: FakeSlack) -> None:
    harness = make_harness(runbooks=(ZONE,), storm_window=0)
    started = harness.post_alerts([alert("NodeDown", {"node": f"n{i}"}) for i in range(3)]).json()["started"]
    run_ids = [s["run_id"] for s in started]
    wait_for(lambda: _settled(harness, run_ids, "succeeded"), what="every run finished")
    assert len(fake_slack.parents(CHANNEL)) == 3
    assert not fake_slack.find(lambda m: m.text.startswith("Storm:"))


def test_with_chat_detail_steps_each_storm_member_keeps_its_thread_and_log(
        make_harness: Callable[..., Harness], fake_slack: FakeSlack) -> None:
    harness = make_harness(runbooks=(ZONE,), storm_window=120, chat_detail="steps")
    nodes = [f"node-{i}" for i in range(4)]
    started = harness.post_alerts([alert("NodeDown", {"node": n}) for n in nodes]).json()["started"]
    run_ids = [s["run_id"] for s in started]
    wait_for(lambda: _settled(harness, run_ids, "succeeded") and "4 finished" in _storm(fake_slack),
             what="every run finished and the storm message caught up")
    own = [p for p in fake_slack.parents(CHANNEL) if not p.text.startswith("Storm:")]
    assert len(own) == 4  # a log needs a thread: every member posts its own, beside the storm message
    for parent in own:
        thread = fake_slack.thread(parent.ts)
        node = next(n for n in nodes if f"node={n}`" in flatten(parent))
        assert [m.text.split(" ")[0] for m in thread] == ["step", "Diagnosis", "run"]
        assert f"*Look at {node}* · `finding` · succeeded" in flatten(thread[0])


def _is_storm(params: dict[str, object]) -> bool:
    return str(params.get("text", "")).startswith("Storm:")


def test_the_storm_message_reaches_its_final_state_after_429s(tmp_path: Path) -> None:
    """Edits at two a second for the whole workspace (a very tight Tier 3, at Slack's own pace) and the storm
    message's first three calls refused outright: its edits wait out each `Retry-After` while members finish,
    and it still ends listing every target finished."""
    tight = RateLimits({**SLACK_TIERS, "chat.update": Tier(per_second=2.0, burst=1, scope="workspace")})
    with FakeSlack(rate_limits=tight) as fake:
        fake.fail("ratelimited", times=3, retry_after=0.2, when=_is_storm)
        settings = server_settings(str(tmp_path / "runs.db"), fake.url, storm_window=120)
        harness = Harness(make_engine(settings, register_builtins(ActionRegistry()), (ZONE,)), fake).start()
        try:
            nodes = [f"node-{i}" for i in range(8)]
            started = harness.post_alerts([alert("NodeDown", {"node": n}) for n in nodes]).json()["started"]
            run_ids = [s["run_id"] for s in started]
            wait_for(lambda: _settled(harness, run_ids, "succeeded") and "8 finished" in _storm(fake), timeout=60,
                     what="the storm message to catch up after its 429s")
        finally:
            harness.close()
    storm = _storm(fake)
    assert "8 targets, 8 finished" in storm and all(f"`{n}` :white_check_mark: succeeded" in storm for n in nodes)
    assert sum(r.status == 429 and _is_storm(r.params) for r in fake.requests) >= 3
    assert fake.retried_too_soon == 0


def test_a_stale_storm_edit_sent_last_cannot_turn_the_message_back(make_harness: Callable[..., Harness],
                                                                     fake_slack: FakeSlack) -> None:
    """Two members finishing at once may queue their edits in the other order (each rendered from what it
    read): the storm message is rendered when sent, so an edit that goes last shows the latest state."""
    harness = make_harness(runbooks=(ZONE,), storm_window=120)
    started = harness.post_alerts([alert("NodeDown", {"node": f"n{i}"}) for i in range(3)]).json()["started"]
    run_ids = [s["run_id"] for s in started]
    wait_for(lambda: _settled(harness, run_ids, "succeeded") and "3 finished" in _storm(fake_slack),
             what="the storm settled")
    assert harness.slack is not None
    anchor = min((harness.run(r) for r in run_ids), key=lambda r: r.created_at)
    said = "Storm: Node down (node-down) — 3 targets, 0 finished"  # as rendered before any member finished
    stale = {"text": said, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": said}}]}
    edits = fake_slack.find(lambda m: m.text.startswith("Storm:"))[0].edits
    harness.slack.outbox.put(f"storm:{anchor.id}", [Message("chat.update", stale, target="parent")])
    harness.slack.sender.wake()
    wait_for(lambda: fake_slack.find(lambda m: m.text.startswith("Storm:"))[0].edits > edits, what="the late edit")
    assert "3 targets, 3 finished" in _storm(fake_slack)


MIXED = ZONE.replace(  # one node of five has another problem
    '''      id: zone-outage
      severity: critical
      summary: "zone eu-1a lost power"''',
    '''      id: "{{ 'disk-full' if params.node == 'node-odd' else 'zone-outage' }}"
      severity: critical
      summary: "{{ 'disk full on /var' if params.node == 'node-odd' else 'zone eu-1a lost power' }}"''')


def _reply_texts(fake: FakeSlack, parent_ts: str) -> list[str]:
    return [flatten(m) for m in fake.thread(parent_ts)]


def test_a_member_with_a_different_cause_gets_its_own_thread_and_notes_find_their_thread(
        make_harness: Callable[..., Harness], fake_slack: FakeSlack) -> None:
    """Four nodes lost to a zone outage and, in the same minute, a fifth with a full disk: the storm lists the
    fifth first, under its own cause, and it gets a thread of its own like any run outside a storm; an alert
    resolved for a member without a thread is said in the storm's thread, naming the member."""
    assert "disk-full" in MIXED
    harness = make_harness(runbooks=(MIXED,), storm_window=120)
    started = harness.post_alerts([alert("NodeDown", {"node": f"node-{i}"}) for i in range(4)]).json()["started"]
    run_ids = [s["run_id"] for s in started]
    wait_for(lambda: _settled(harness, run_ids, "succeeded") and "4 finished" in _storm(fake_slack),
             what="the zone's four runs")  # the storm's cause is established before the odd one finishes
    [odd] = harness.post_alerts([alert("NodeDown", {"node": "node-odd"})]).json()["started"]
    wait_for(lambda: _settled(harness, [odd["run_id"]], "succeeded") and "5 finished" in _storm(fake_slack),
             what="the odd run and the storm message")
    storm = _storm(fake_slack)
    apart, _, rest = storm.partition("`node-0`")
    assert "Shared cause* (4 of 5): zone eu-1a lost power" in storm
    assert "Different cause* (1)" in apart and "`node-odd` :white_check_mark: succeeded — disk full on /var" in apart
    assert "node-odd" not in rest
    assert len(fake_slack.parents(CHANNEL)) == 3  # the anchor's own, the storm's and the odd run's; none for 1-3
    [own] = [p for p in fake_slack.parents(CHANNEL) if "node-odd" in flatten(p) and not p.text.startswith("Storm:")]
    [diagnosis] = fake_slack.thread(own.ts)  # as a run outside a storm that succeeded: its diagnosis
    assert diagnosis.text.startswith("Diagnosis") and "disk full on /var" in flatten(diagnosis)

    harness.post_alerts([alert("NodeDown", {"node": n}, status="resolved") for n in ("node-2", "node-odd")])
    [storm_parent] = fake_slack.find(lambda m: m.thread_ts is None and m.text.startswith("Storm:"))
    wait_for(lambda: any("resolved" in t for t in _reply_texts(fake_slack, storm_parent.ts))
             and any("resolved" in t for t in _reply_texts(fake_slack, own.ts)), what="both notes")
    [in_storm] = [t for t in _reply_texts(fake_slack, storm_parent.ts) if "resolved" in t]
    assert in_storm.startswith("`node-2`: ") and "Alert *NodeDown* resolved" in in_storm
    assert not any("node-2" in t for t in _reply_texts(fake_slack, own.ts))
