"""The outbox and its sender against the Slack fake, through the real `slack_sdk.WebClient`.

The sender's clock is injected and passes are driven by hand, so retry timing is checked without sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from engine.run_store import RunStore
from integrations.slack.outbox import Message, Outbox
from integrations.slack.sender import MAX_RETRY_AFTER, OutboxSender
from integrations.testing.slack_fake import FakeSlack
from tests.conftest import StoreFactory


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(store: RunStore, clock: Clock) -> Outbox:
    return Outbox(store, clock=clock)


@pytest.fixture
def sender(outbox: Outbox, fake: FakeSlack, clock: Clock) -> OutboxSender:
    client = WebClient(token=fake.token, base_url=fake.url, timeout=2, retry_handlers=[])
    errors: list[str] = []
    sender = OutboxSender(outbox, client, on_error=errors.append, backoff=1.0, max_backoff=8.0, clock=clock)
    sender.errors = errors  # type: ignore[attr-defined]
    return sender


def thread_of(run: str, n: int) -> list[Message]:
    parent = Message("chat.postMessage", {"channel": "C1", "text": f"{run} parent"}, remember="parent")
    replies = [Message("chat.postMessage", {"channel": "C1", "text": f"{run} reply {i}"}, thread="parent")
               for i in range(n)]
    return [parent, *replies, Message("chat.update", {"text": f"{run} parent (done)"}, target="parent")]


def drain(sender: OutboxSender, clock: Clock, passes: int = 50) -> None:
    for _ in range(passes):
        if sender.outbox.pending() == 0:
            return
        sender.deliver_due()
        clock.now += 1.0
    raise AssertionError("outbox did not drain")


def test_threads_in_order_and_parent_updated(outbox: Outbox, sender: OutboxSender, fake: FakeSlack,
                                             clock: Clock) -> None:
    outbox.put("r1", thread_of("r1", 3))
    drain(sender, clock)
    parent = fake.parents()[0]
    assert parent.text == "r1 parent (done)" and parent.edits == 1
    assert [m.text for m in fake.thread(parent.ts)] == ["r1 reply 0", "r1 reply 1", "r1 reply 2"]
    assert outbox.message("r1", "parent") == ("C1", parent.ts)
    assert outbox.run_for_message("C1", parent.ts) == "r1"


def test_ratelimit_pauses_the_channel_for_retry_after(outbox: Outbox, sender: OutboxSender, fake: FakeSlack,
                                                     clock: Clock) -> None:
    outbox.put("r1", thread_of("r1", 1))
    fake.fail("ratelimited", times=1, retry_after=30)
    assert sender.deliver_due() == 0
    assert sender.paused == {"C1": clock.now + 30} and sender.errors == ["ratelimited"]  # type: ignore[attr-defined]
    clock.now += 29
    assert sender.deliver_due() == 0 and len(fake.requests) == 1  # nothing sent inside the window
    clock.now += 2
    drain(sender, clock)
    assert [m.text for m in fake.messages] == ["r1 parent (done)", "r1 reply 0"]


def test_a_huge_retry_after_pauses_only_its_channel_and_is_capped(outbox: Outbox, sender: OutboxSender,
                                                                  fake: FakeSlack, clock: Clock) -> None:
    fake.fail("ratelimited", times=1, retry_after=999_999, channel="C1")
    outbox.put("r1", thread_of("r1", 1))
    outbox.put("r2", [Message("chat.postMessage", {"channel": "C2", "text": f"r2 {i}"}) for i in range(3)])
    for _ in range(3):  # C2 keeps flowing while C1 waits
        sender.deliver_due()
        clock.now += 1
    assert [m.text for m in fake.messages] == ["r2 0", "r2 1", "r2 2"]
    assert sender.paused["C1"] == pytest.approx(clock.now - 3 + MAX_RETRY_AFTER)
    clock.now += MAX_RETRY_AFTER
    drain(sender, clock)
    assert [m.text for m in fake.parents("C1")] == ["r1 parent (done)"]


def test_a_429_on_chat_update_pauses_it_in_every_channel_and_on_every_replica(make_store: StoreFactory,
                                                                               fake: FakeSlack, clock: Clock) -> None:
    """chat.update's limit (Tier 3) is per workspace: once one channel's edit is refused, the other channel's
    edit waits the same `Retry-After`, here and on another replica sharing the store."""
    client = WebClient(token=fake.token, base_url=fake.url, timeout=2, retry_handlers=[])
    here, there = (OutboxSender(Outbox(make_store(name), clock=clock), client, clock=clock, lanes=1)
                   for name in ("here", "there"))  # one lane at a time: the second edit is sent after the 429
    for run, channel in (("r1", "C1"), ("r2", "C2")):
        here.outbox.put(run, [Message("chat.postMessage", {"channel": channel, "text": f"{run} parent"},
                                      remember="parent"),
                              Message("chat.update", {"text": f"{run} done"}, target="parent")])
    assert here.deliver_due() == 2  # the parents
    fake.fail("ratelimited", times=1, retry_after=30, when=lambda params: "ts" in params)  # the first edit
    assert here.deliver_due() == 0
    assert here.paused == {"chat.update": clock.now + 30} and len(fake.calls("chat.update")) == 1
    clock.now += Outbox.CLAIM + 1  # this replica's claims lapsed; the pause, kept in the store, has not
    assert there.deliver_due() == 0 and len(fake.calls("chat.update")) == 1
    clock.now += 30 - Outbox.CLAIM
    assert there.deliver_due() + here.deliver_due() == 2
    assert sorted(m.text for m in fake.parents()) == ["r1 done", "r2 done"] and fake.ratelimited == 1


def test_a_hung_call_holds_up_only_its_channel(store: RunStore, fake: FakeSlack) -> None:
    from integrations.testing.server import wait_for

    outbox = Outbox(store)
    client = WebClient(token=fake.token, base_url=fake.url, timeout=10, retry_handlers=[])
    sender = OutboxSender(outbox, client, poll=0.05, backoff=0.05)
    fake.fail("hang", times=1, channel="C1")
    outbox.put("r1", thread_of("r1", 1))
    outbox.put("r2", [Message("chat.postMessage", {"channel": "C2", "text": f"r2 {i}"}) for i in range(3)])
    sender.start()
    try:
        # well inside the client's 10 s timeout: C2 does not wait for C1's hung call
        wait_for(lambda: len(fake.parents("C2")) == 3, timeout=5, what="C2's messages while C1 hangs")
        assert fake.parents("C1") == []
        fake.release()  # the hung call fails (500); C1 is retried and arrives in order
        wait_for(lambda: outbox.pending() == 0, timeout=20, what="C1 after the hang")
    finally:
        sender.stop()
    parent = fake.parents("C1")[0]
    assert parent.text == "r1 parent (done)" and [m.text for m in fake.thread(parent.ts)] == ["r1 reply 0"]


def test_a_call_hung_on_the_delivery_thread_holds_up_only_its_channel(store: RunStore, fake: FakeSlack) -> None:
    """The delivery thread sends the first due channel itself; what is queued while that call hangs goes out
    through its deputy, not after the hang."""
    from integrations.testing.server import wait_for

    outbox = Outbox(store)
    client = WebClient(token=fake.token, base_url=fake.url, timeout=10, retry_handlers=[])
    sender = OutboxSender(outbox, client, poll=0.05, backoff=0.05)
    fake.fail("hang", times=1, channel="C1")
    outbox.put("r1", thread_of("r1", 1))
    sender.start()
    try:
        assert fake.holding.wait(5), "C1's parent never reached Slack"
        outbox.put("r2", [Message("chat.postMessage", {"channel": "C2", "text": f"r2 {i}"}) for i in range(3)])
        sender.wake()
        wait_for(lambda: len(fake.parents("C2")) == 3, timeout=5, what="C2's messages queued while C1 hangs")
        assert fake.parents("C1") == []
        fake.release()
        wait_for(lambda: outbox.pending() == 0, timeout=20, what="C1 after the hang")
    finally:
        sender.stop()
    assert [m.text for m in fake.parents("C2")] == ["r2 0", "r2 1", "r2 2"]


def test_running_sender_delivers_each_message_once_across_channels(store: RunStore) -> None:
    """The delivery thread, its deputies and the lanes all dispatch and send at once: nothing twice, nothing lost,
    each thread in order."""
    from integrations.testing.server import wait_for

    with FakeSlack(rate_limits=False) as fake:
        outbox = Outbox(store)
        client = WebClient(token=fake.token, base_url=fake.url, timeout=5, retry_handlers=[])
        sender = OutboxSender(outbox, client, poll=0.02, backoff=0.05)
        sender.start()
        try:
            for i in range(24):
                channel = f"C{i % 4}"
                outbox.put(f"r{i}", [Message("chat.postMessage", {"channel": channel, "text": f"r{i} {n}"})
                                     for n in range(3)])
                sender.wake()
            wait_for(lambda: outbox.pending() == 0, timeout=30, what="every message delivered")
        finally:
            sender.stop()
        texts = [m.text for m in fake.messages]
    assert sorted(texts) == sorted(f"r{i} {n}" for i in range(24) for n in range(3))  # each exactly once
    for i in range(24):
        mine = [t for t in texts if t.startswith(f"r{i} ")]
        assert mine == [f"r{i} 0", f"r{i} 1", f"r{i} 2"]


def test_server_errors_back_off_per_run_without_blocking_other_runs(outbox: Outbox, sender: OutboxSender,
                                                                    fake: FakeSlack, clock: Clock) -> None:
    outbox.put("r1", thread_of("r1", 2))
    outbox.put("r2", thread_of("r2", 2))
    fake.fail("error500", times=1)  # hits r1's parent, the oldest item
    sender.deliver_due()
    assert [m.text for m in fake.parents()] == ["r2 parent"]  # r2 went ahead
    drain(sender, clock)
    for run in ("r1", "r2"):
        parent = next(m for m in fake.parents() if m.text.startswith(run))
        assert [m.text for m in fake.thread(parent.ts)] == [f"{run} reply 0", f"{run} reply 1"]
    # besides the fake's rate limits (on by default: six posts to C1 in a pass outrun its burst)
    assert [e for e in sender.errors if e != "ratelimited"] == ["server_error"]  # type: ignore[attr-defined]


def test_down_then_back_loses_nothing(outbox: Outbox, sender: OutboxSender, fake: FakeSlack, clock: Clock) -> None:
    fake.go_down()
    outbox.put("r1", thread_of("r1", 5))
    for _ in range(6):
        sender.deliver_due()
        clock.now += 10
    assert outbox.pending() == 7 and set(sender.errors) == {"unreachable"}  # type: ignore[attr-defined]
    fake.come_back()
    clock.now += 60  # past the longest backoff
    drain(sender, clock)
    parent = fake.parents()[0]
    assert [m.text for m in fake.thread(parent.ts)] == [f"r1 reply {i}" for i in range(5)]


def test_backoff_grows_and_is_capped(outbox: Outbox, sender: OutboxSender, fake: FakeSlack, clock: Clock) -> None:
    fake.go_down()
    outbox.put("r1", thread_of("r1", 0)[:1])
    waits = []
    for _ in range(6):
        start = clock.now
        sender.deliver_due()
        due = outbox.next_due_at()
        assert due is not None
        waits.append(due - start)
        clock.now = due
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    fake.come_back()


def test_permanent_errors_drop_one_message_not_the_thread(outbox: Outbox, sender: OutboxSender, fake: FakeSlack,
                                                          clock: Clock) -> None:
    outbox.put("r1", thread_of("r1", 0)[:1])
    outbox.put("r1", [Message("chat.postMessage", {"channel": "C-gone", "text": "lost"}),
                      Message("chat.postMessage", {"channel": "C1", "text": "after"}, thread="parent")])
    fake.unknown_channels.add("C-gone")
    drain(sender, clock)
    assert [f[2] for f in outbox.failures()] == ["channel_not_found"]
    assert [m.text for m in fake.thread(fake.parents()[0].ts)] == ["after"]


def test_update_without_parent_is_dropped(outbox: Outbox, sender: OutboxSender, clock: Clock) -> None:
    outbox.put("r1", [Message("chat.update", {"text": "x"}, target="parent")])
    drain(sender, clock)
    assert outbox.failures()[0][2] == "no parent message to update"


def test_sender_thread_delivers_and_survives_restart(store: RunStore, fake: FakeSlack) -> None:
    from integrations.testing.server import wait_for

    outbox = Outbox(store)
    outbox.put("r1", thread_of("r1", 2))  # queued before any sender exists (e.g. by a previous process)
    client = WebClient(token=fake.token, base_url=fake.url, timeout=2, retry_handlers=[])
    sender = OutboxSender(outbox, client, poll=0.05)
    sender.start()
    try:
        wait_for(lambda: outbox.pending() == 0, timeout=20, what="the sender thread to deliver")
        assert sender.alive
    finally:
        sender.stop()
    assert len(fake.messages) == 3
