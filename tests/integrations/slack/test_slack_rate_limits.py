"""The Slack fake's rate limits (Slack's documented tiers) and the sender living within them.

The sender meets the limits at `time_scale=0.05` (buckets refill and `Retry-After` elapses 20x faster); the bucket
arithmetic itself is checked with an injected clock.
"""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from engine.run_store import RunStore
from integrations.slack.outbox import Message, Outbox
from integrations.slack.sender import OutboxSender
from integrations.testing.server import wait_for
from integrations.testing.slack_fake import SUITE_TIME_SCALE, FakeSlack
from integrations.testing.slack_limits import RateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_post_message_allows_a_burst_then_one_per_second_per_channel() -> None:
    clock = Clock()
    limits = RateLimits(clock=clock)
    assert [limits.check("chat.postMessage", "C1") for _ in range(5)] == [0.0] * 5  # the burst
    assert limits.check("chat.postMessage", "C1") == 1.0  # the sixth waits a whole second
    assert limits.check("chat.postMessage", "C2") == 0.0  # another channel has its own bucket
    clock.now += 0.5
    assert limits.check("chat.postMessage", "C1") == 1.0  # half a token: still a whole second, as Slack says
    assert limits.too_soon == 1  # that call came before the Retry-After it was given
    clock.now += 1.0
    assert limits.check("chat.postMessage", "C1") == 0.0
    assert limits.check("chat.postMessage", "C1") == 1.0
    assert limits.too_soon == 1
    assert limits.check("auth.test", "") == 0.0  # methods without a tier are not limited


def test_update_is_tier_3_across_channels_and_time_scale_shortens_waits() -> None:
    clock = Clock()
    limits = RateLimits(time_scale=0.01, clock=clock)
    assert all(limits.check("chat.update", f"C{i}") == 0.0 for i in range(10))
    assert limits.check("chat.update", "C99") == pytest.approx(0.02)  # 50/min: 1.2 s, rounded up, scaled
    clock.now += 0.012  # 1.2 scaled seconds refill one token
    assert limits.check("chat.update", "C99") == 0.0


def test_the_fake_answers_429_with_retry_after_and_counts_them() -> None:
    with FakeSlack(time_scale=1.0) as fake:  # real speed: the sixth call comes well within a second
        client = WebClient(token=fake.token, base_url=fake.url, timeout=2, retry_handlers=[])
        for i in range(5):
            client.chat_postMessage(channel="C1", text=f"m{i}")
        with pytest.raises(SlackApiError) as refused:
            client.chat_postMessage(channel="C1", text="m5")
        assert refused.value.response.status_code == 429
        assert refused.value.response.headers["Retry-After"] == "1"
        assert fake.ratelimited == 1 and len(fake.messages) == 5


def test_limited_by_default_at_the_suite_time_scale_and_unlimited_only_when_asked() -> None:
    with FakeSlack() as fake:  # the suite's default: Slack's tiers at SUITE_TIME_SCALE
        assert fake.limits is not None and fake.limits.time_scale == SUITE_TIME_SCALE
        auth = f"Bearer {fake.token}"
        # in-process, so the calls come far faster than the scaled refill (50 a second) however loaded the machine
        answers = [fake.handle("chat.postMessage", {"channel": "C1", "text": f"m{i}"}, auth) for i in range(30)]
        refused = [headers["Retry-After"] for status, _, headers in answers if status == 429]
        assert [status for status, _, _ in answers[:5]] == [200] * 5 and refused  # the burst, then 429s
        assert fake.ratelimited == len(refused) and len(fake.messages) == 30 - len(refused)
        assert float(refused[0]) == pytest.approx(SUITE_TIME_SCALE)  # one Slack second, scaled
    with FakeSlack(rate_limits=False) as fake:  # the opt-out, for tests whose point is not Slack's pace
        client = WebClient(token=fake.token, base_url=fake.url, timeout=2, retry_handlers=[])
        for i in range(20):
            client.chat_postMessage(channel="C1", text=f"m{i}")
        assert fake.ratelimited == 0 and len(fake.messages) == 20


def run_thread(run: str, channel: str, replies: int) -> list[Message]:
    parent = Message("chat.postMessage", {"channel": channel, "text": f"{run} parent"}, remember="parent")
    steps = [Message("chat.postMessage", {"channel": channel, "text": f"{run} reply {i}"}, thread="parent")
             for i in range(replies)]
    updates = [Message("chat.update", {"text": f"{run} parent v{i}"}, target="parent") for i in range(3)]
    return [parent, *steps, *updates]


def test_sender_loses_nothing_and_honours_every_429_against_real_limits(store: RunStore) -> None:
    """A storm's worth of runs in one channel (and a quiet second one) through the limited fake: every
    message arrives once, each run's thread in order, the fake did rate-limit, the sender never came
    back before the `Retry-After` it was given, and edits superseded by a later one were not sent."""
    runs = {f"r{i}": ("C1" if i < 8 else "C2") for i in range(10)}
    with FakeSlack(rate_limits=True, time_scale=0.05) as fake:  # 20 posts/s per channel: far below our pace
        outbox = Outbox(store)
        for run, channel in runs.items():
            outbox.put(run, run_thread(run, channel, replies=4))
        client = WebClient(token=fake.token, base_url=fake.url, timeout=5, retry_handlers=[])
        errors: list[str] = []
        sender = OutboxSender(outbox, client, on_error=errors.append, poll=0.02, backoff=0.01)
        sender.start()
        try:
            wait_for(lambda: outbox.pending() == 0, timeout=60, what="the outbox to drain under rate limits")
        finally:
            sender.stop()
    assert fake.ratelimited > 0, "the storm should have hit the limits"
    assert errors.count("ratelimited") == fake.ratelimited  # every 429 was seen and paused on
    assert fake.retried_too_soon == 0
    assert outbox.failures() == []
    assert len(fake.parents()) == len(runs) and len(fake.messages) == len(runs) * 5
    for run, channel in runs.items():
        [parent] = fake.find(lambda m, run=run: m.thread_ts is None and m.text.startswith(f"{run} "))
        # its three queued edits of the parent went out as one: the last (the earlier two were superseded)
        assert parent.channel == channel and parent.text == f"{run} parent v2" and parent.edits == 1
        assert [m.text for m in fake.thread(parent.ts)] == [f"{run} reply {i}" for i in range(4)]
