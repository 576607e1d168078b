"""Delivers the outbox to Slack, in order per run, never giving up on transient failures, one channel
never holding up another.

Messages are grouped by lane (the channel they go to) and each lane is sent by its own task on a small
pool, so a call that hangs (up to the client's per-call timeout) or a channel that is rate-limited
delays only that channel's messages. A 429 pauses what Slack's limit covers for the `Retry-After` it
names (capped; hammering makes limits longer): `chat.postMessage` is limited per channel, so its lane;
every other method (`chat.update` is Tier 3) per workspace, so that method in every channel, and the
pause is kept in the store so every replica holds it. 5xx, timeouts and connection errors back off per
run, exponentially up to `max_backoff`; errors Slack will repeat forever (`channel_not_found`, bad
blocks) mark that one item dead so the rest of the thread still arrives. A channel's pause is this
replica's own pacing (in memory; no other replica sends to a channel this one holds), and the paused
message itself waits in the store, so no replica sends it before its time.

The delivery thread sends the first due lane itself: a message handed to a pool thread waits for that thread
to get the interpreter, which a run busy diagnosing holds (2-3 ms of a first message's 10 in bench figure
3). While it sends, its deputy (a thread of its own, woken only then) dispatches what is queued or falls due,
so a call hung there still holds up only its own channel. Dispatch passes never overlap (`_dispatching`), so a
message read in one pass is never sent by another as well.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from engine.background import Background
from engine.errors import RunbookError, StoreError
from integrations.slack.outbox import Item, Outbox

log = logging.getLogger("runbook.slack")

# Errors Slack answers with 200/4xx that will not go away by retrying the same call.
PERMANENT = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "no_text", "invalid_blocks",
    "invalid_blocks_format", "too_many_attachments", "message_not_found", "cant_update_message",
    "edit_window_closed", "user_not_in_channel", "invalid_arguments", "restricted_action", "invalid_ts",
})
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, SlackClientError, http.client.HTTPException)


# Slack's limits are per method per workspace, except chat.postMessage's, which is per channel
# (https://api.slack.com/docs/rate-limits).
PER_CHANNEL = frozenset({"chat.postMessage"})
MAX_RETRY_AFTER = 300.0  # a Retry-After beyond this (or `inf`) is a bad header, not a reason to stop for good
PARENT_WAITS = 10  # tries for a reply whose parent lives in another conversation, then it goes to the channel
RECORD_FOR = 10.0  # seconds to keep recording a message Slack took while the store is away: inside the claim


class OutboxSender:
    """Owns the delivery thread and the lane pool. `on_error(reason)` feeds the chat-error metric."""

    def __init__(
        self,
        outbox: Outbox,
        client: WebClient,
        *,
        on_error: Callable[[str], None] = lambda reason: None,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        poll: float = 1.0,
        lanes: int = 4,
        clock: Callable[[], float] = time.time,
        refresh: Callable[[Item], dict[str, Any] | None] = lambda item: None,
    ) -> None:
        self.outbox = outbox
        self.refresh = refresh  # a message's body as of now, for messages that show a changing state (storms)
        self.client = client
        self.on_error = on_error
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.poll = poll
        self.lanes = lanes
        self.clock = clock
        self.paused: dict[str, float] = {}  # lane, or workspace-wide method -> until when it is rate-limited
        self._busy: set[str] = set()  # lanes a task is sending right now
        self._tasks: set[Future[int]] = set()
        self._lock = threading.Lock()
        self._dispatching = threading.Lock()  # one dispatch pass at a time: the delivery thread's or its deputy's
        self._pool: ThreadPoolExecutor | None = None
        self._wake = threading.Event()
        self._inline = threading.Event()  # the delivery thread is in a pass or sending a lane itself
        self._deputy_wake = threading.Event()
        self._thread = Background("slack-sender", self._loop, on_stop=self._wake.set)
        self._deputy = Background("slack-sender-deputy", self._stand_in, on_stop=self._deputy_wake.set)
        self._stop = self._thread.stopping

    # lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._busy.clear()
        self._thread.start()
        self._deputy.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop passing, then wait up to `timeout` for the calls in flight (a lane stops after its current one)."""
        deadline = time.monotonic() + timeout  # one for all: the delivery thread may be in a call itself
        self._thread.stop(timeout)
        self._deputy.stop(max(0.0, deadline - time.monotonic()))
        # each lane finishes the message it is sending, records it, and stops: handing back the claim of a
        # message Slack already has would make another replica post it again (a hung call past `timeout`
        # is handed back regardless: its outcome is unknown, at most one duplicate)
        while time.monotonic() < deadline:
            with self._lock:
                if not self._busy:
                    break
            time.sleep(0.02)
        with self._dispatching:  # a deputy's pass under way ends first; later ones claim nothing (stopping)
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
        with self._lock:
            tasks = list(self._tasks)
        wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        try:  # what this process claimed but did not send goes to another replica now, not after the claim lapses
            self.outbox.release()
        except RunbookError as exc:
            log.warning("could not hand back the outbox claims: %s", exc)

    @property
    def alive(self) -> bool:
        return self._thread.alive() == 1

    def wake(self) -> None:
        """Something was queued: deliver now rather than at the next poll."""
        self._wake.set()
        if self._inline.is_set():  # the delivery thread is sending: its deputy dispatches
            self._deputy_wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self._pass(inline=True)
            with self._lock:
                sending = bool(self._busy)
            if sending:  # a lane finishing (or something queued here) starts the next pass
                self._wake.wait(self.poll)
            else:
                self._idle(self.poll)

    def _pass(self, inline: bool = False) -> None:
        """One dispatch pass that never ends its thread (the delivery thread's or the deputy's)."""
        try:
            self._dispatch(inline)
        except RunbookError as exc:  # e.g. the store is locked or unreachable for longer than its timeout
            log.warning("slack delivery pass could not read the outbox: %s", exc)
        except Exception:  # a sending thread must outlive any one bad message or client bug
            log.exception("slack delivery pass failed; retrying")

    def _idle(self, timeout: float) -> None:
        """Until something is queued here (`wake`), another replica hints at work through the store (its
        messages may now be ours to send), or `timeout`: the hints are only hints, the poll is the rule."""
        if not self._wake.is_set() and not self._stop.is_set():
            self.outbox.wait(timeout)

    # delivery -------------------------------------------------------------------------------------

    def deliver_due(self) -> int:
        """One pass, waited for: every lane's due messages; returns how many were delivered."""
        return sum(task.result() for task in self._dispatch())

    def _dispatch(self, inline: bool = False) -> list[Future[int]]:
        """Hand each due lane that is neither being sent nor paused to a task of its own; with `inline` (the
        delivery thread), send the first one here."""
        with self._dispatching:
            if inline:
                self._inline.set()  # from here on a wake-up goes to the deputy too
            try:
                lanes = self._claim_lanes()
                own = next(iter(lanes), None) if inline else None
                tasks = [self._submit(lane, items) for lane, items in lanes.items() if lane != own]
            except BaseException:
                if inline:
                    self._inline.clear()
                raise
        if own is None:
            if inline:
                self._inline.clear()
            return tasks
        done: Future[int] = Future()
        done.set_result(self._send_lane(own, lanes[own], inline=True))
        return [*tasks, done]

    def _stand_in(self) -> None:
        """The deputy: dispatch passes while the delivery thread sends a lane itself, when woken and every
        `poll` (retries falling due, other replicas' hints) for as long as that send lasts."""
        while not self._deputy.stopping.is_set():
            self._deputy_wake.wait(self.poll)
            self._deputy_wake.clear()
            if self._inline.is_set() and not self._stop.is_set():
                self._pass()

    def _claim_lanes(self) -> dict[str, list[Item]]:
        """Claim the due messages and mark their lanes busy: those neither being sent nor paused."""
        lanes: dict[str, list[Item]] = {}
        if self._stop.is_set():
            return lanes
        with self._lock:
            sending = set(self._busy)
        # a message being sent is claimed again here; its lane was busy when `due` read it, so it is skipped
        # (even if the lane finishes meanwhile: the message read may be the one it just delivered)
        due = self.outbox.due()
        now = self.clock()
        with self._lock:
            self.paused = {lane: until for lane, until in self.paused.items() if until > now}
            for item in due:
                if item.lane not in self._busy and item.lane not in sending and not self._held(item, now):
                    lanes.setdefault(item.lane, []).append(item)
            self._busy.update(lanes)
        return lanes

    def _submit(self, lane: str, items: list[Item]) -> Future[int]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="slack-lane")
            task = self._pool.submit(self._send_lane, lane, items)
            self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: Future[int]) -> None:
        with self._lock:
            self._tasks.discard(task)

    def _send_lane(self, lane: str, items: list[Item], inline: bool = False) -> int:
        sent = 0
        try:
            for item in items:
                if self._stop.is_set():
                    break
                if not self._held(item, self.clock()):  # a 429 meanwhile paused its channel or its method
                    sent += self._deliver(item)
        except RunbookError as exc:
            log.warning("slack delivery to %s could not reach the store: %s", lane, exc)
        finally:
            with self._lock:
                self._busy.discard(lane)
            if inline:
                self._inline.clear()
            self.wake()  # the next pass: the delivery thread's, or while it sends, its deputy's
        return sent

    def _parent(self, item: Item, thread: str) -> tuple[str, str] | None:
        """(channel, ts) to reply under: `key` in the item's own conversation, or for `key|conversation`
        that key if the run has it, else the other conversation's parent (a storm member's note)."""
        key, _, other = thread.partition("|")
        return self.outbox.message(item.run_id, key) or (self.outbox.message(other, "parent") if other else None)

    def _held(self, item: Item, now: float) -> bool:
        return self.paused.get(_scope(item), 0.0) > now

    def _deliver(self, item: Item) -> bool:
        message = item.message
        if self.outbox.superseded(item):  # a later edit of the same message is queued: it alone goes
            return False
        payload = {**message.payload, **(self.refresh(item) or {})}
        if message.target:
            where = self.outbox.message(item.run_id, message.target)
            if where is None:  # the message to edit was never posted (Slack refused it for good)
                self.outbox.give_up(item, f"no {message.target} message to update")
                return False
            payload["channel"], payload["ts"] = where
        if message.thread:
            parent = self._parent(item, message.thread)
            if parent is not None:
                payload["channel"], payload["thread_ts"] = parent
            elif "|" in message.thread and item.attempts < PARENT_WAITS:  # the other conversation's parent is
                self.outbox.retry_later(item, self.backoff, "thread parent not posted yet")  # still queued
                return False
        try:
            response = self.client.api_call(message.method, json=payload)
        except SlackApiError as exc:
            self._failed(item, exc)
            return False
        except NETWORK_ERRORS as exc:
            self._retry(item, f"{type(exc).__name__}: {exc}", "unreachable")
            return False
        remember = None
        if message.remember and response.get("ts"):
            remember = (str(response.get("channel") or payload.get("channel")), str(response["ts"]))
        self._record(item, remember)
        return True

    def _record(self, item: Item, remember: tuple[str, str] | None) -> None:
        """Slack took the message: record that, retrying while the store is away (a database restart), for
        less than the claim lasts, so no other sender has it meanwhile. Given up, it is posted again."""
        deadline = time.monotonic() + RECORD_FOR
        delay = 0.1
        while True:
            try:
                self.outbox.delivered(item, remember)
                return
            except StoreError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.info("recording a delivered slack message of run %s failed (%s); trying again", item.run_id,
                         exc)
                time.sleep(delay)
                delay = min(2 * delay, 1.0)

    def _failed(self, item: Item, exc: SlackApiError) -> None:
        response: Any = exc.response
        status = getattr(response, "status_code", 0)
        error = ""
        if isinstance(getattr(response, "data", None), dict):
            error = str(response.data.get("error", ""))
        if status == 429 or error == "ratelimited":
            delay = _retry_after(getattr(response, "headers", {}) or {}, default=self.backoff)
            scope = _scope(item)
            with self._lock:
                self.paused[scope] = max(self.paused.get(scope, 0.0), self.clock() + delay)
            self.on_error("ratelimited")
            if scope == item.message.method:
                self.outbox.pause(scope, delay)
            log.info("slack rate-limited %s in %s; pausing %s %.0fs", item.message.method, item.lane,
                     "that channel" if scope == item.lane else f"{scope} in every channel", delay)
            self.outbox.retry_later(item, delay, "ratelimited")
        elif error in PERMANENT:
            self.on_error(error)
            log.error("slack refused %s for run %s: %s; dropping this message", item.message.method,
                      item.run_id, error)
            self.outbox.give_up(item, error)
        else:
            self._retry(item, error or f"HTTP {status}", "server_error" if status >= 500 else (error or "error"))

    def _retry(self, item: Item, error: str, reason: str) -> None:
        delay = min(self.max_backoff, self.backoff * 2 ** min(item.attempts, 16))
        self.on_error(reason)
        log.warning("slack %s for run %s failed (%s); retrying in %.1fs", item.message.method, item.run_id,
                    error, delay)
        self.outbox.retry_later(item, delay, error)


def _scope(item: Item) -> str:
    """What one of Slack's rate limits covers: the channel (lane) for chat.postMessage, else the method."""
    return item.lane if item.message.method in PER_CHANNEL else item.message.method


def _retry_after(headers: Any, default: float) -> float:
    value = None
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name) if hasattr(headers, "get") else None
        if value:
            break
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value))) if value is not None else default
    except ValueError:
        return default
