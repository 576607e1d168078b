"""The persisted outbox of Slack API calls, kept by the run store (`RunStore.outbox_*`).

Run events are turned into outbox rows in one commit and nothing else happens on the executor's
thread: Slack being slow, rate-limiting or down can delay chat but never a run, and rows survive a
restart. Rows are delivered strictly in order per run (a thread reads top to bottom), and threaded
replies name their parent by a *key* ("parent", "proposal:<step>") resolved at send time, because the
parent's `ts` is only known once Slack has accepted it. A sender claims each message in the store
before sending it, so replicas sharing the store never send one twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.run_store import OutboxItem, OutboxMessage, RunStore

Message = OutboxMessage
Item = OutboxItem


class Outbox:
    """The run store's outbox seen from Slack, on one clock (injected in tests)."""

    CLAIM = 15.0  # seconds a claim (a message, a channel) stays with its sender: longer than one Slack call;
    # after a crash its messages go out from another replica this much later, the one in flight perhaps twice

    def __init__(self, store: RunStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def put(self, run_id: str, messages: list[Message]) -> None:
        """Queue messages for a run, all or none."""
        self.store.outbox_put(run_id, messages, self.clock())

    def due(self, limit: int = 50) -> list[Item]:
        """Claim the head message of each run whose retry time has come (so order per run holds)."""
        return self.store.outbox_claim(self.clock(), self.CLAIM, limit)

    def next_due_at(self) -> float | None:
        return self.store.outbox_next_at()

    def delivered(self, item: Item, remember: tuple[str, str] | None = None) -> None:
        """Mark `item` sent and, in the same commit, keep the (channel, ts) it created."""
        self.store.outbox_delivered(item, remember)

    def superseded(self, item: Item) -> bool:
        """True (and `item` is done) when a later queued edit of the same message replaces this one."""
        return self.store.outbox_superseded(item)

    def retry_later(self, item: Item, delay: float, error: str) -> None:
        self.store.outbox_retry(item, self.clock() + delay, error)

    def pause(self, method: str, delay: float) -> None:
        """Hold `method` for every channel and replica for `delay` seconds (its limit is per workspace)."""
        self.store.outbox_pause(method, self.clock() + delay)

    def give_up(self, item: Item, error: str) -> None:
        """Slack refused the call for good (e.g. channel_not_found); later items of the run still go."""
        self.store.outbox_give_up(item, error)

    def wait(self, timeout: float) -> None:
        """Sleep until the store hints at new work (a message queued here or on another replica) or `timeout`."""
        self.store.wait_for_work(timeout)

    def release(self) -> None:
        """Hand back this process's claims (a graceful stop), so another replica sends them at once."""
        self.store.outbox_release()

    def message(self, run_id: str, key: str) -> tuple[str, str] | None:
        """(channel, ts) of a message posted for the run under `key`, if Slack accepted it."""
        return self.store.chat_message(run_id, key)

    def run_for_message(self, channel: str, ts: str) -> str | None:
        return self.store.run_for_chat_message(channel, ts)

    def pending(self) -> int:
        return self.store.outbox_pending()

    def oldest_pending_age(self) -> float:
        """Seconds the oldest undelivered message has waited (0 when none): chat lagging behind the runs."""
        oldest = self.store.outbox_oldest_pending()
        return max(0.0, self.clock() - oldest) if oldest is not None else 0.0

    def failures(self) -> list[tuple[int, str, str]]:
        """(id, method, error) of items Slack refused for good: for the operator, not for retrying."""
        return self.store.outbox_failures()
