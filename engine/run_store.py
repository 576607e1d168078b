"""The store interface: everything durable the engine and its plug-ins keep goes through it.

Two backends implement it: SQLite (`engine.sqlstore.sqlite`, the embedded default) and PostgreSQL
(`integrations.postgres`, for several replicas on one database). Nothing else contains SQL.

Ownership of a running run is a lease with an epoch: a claim bumps the epoch, and every later write
for the run (and so every change it sends) names the epoch it holds; a replica whose lease was taken
over finds its writes refused and stops. Decisions and claims are compare-and-set.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from engine.records import AuditEntry, Decision, Freeze, RunRecord, RunStatus, StepRecord


@dataclass(frozen=True)
class SchemaState:
    """What the database says about its schema: its version and the oldest engine it still serves."""

    version: int
    min_engine: str


@dataclass(frozen=True)
class OutboxMessage:
    """One chat API call to make for a run.

    `thread`: key of the message to reply under; `target`: key of the message an update edits;
    `remember`: key under which to keep the posted message's channel and ts. `channel`: where it goes,
    known up front for most calls (it orders and paces the channel's sender); empty when only the
    thread parent knows it.
    """

    method: str
    payload: dict[str, Any] = field(default_factory=dict)
    thread: str | None = None
    target: str | None = None
    remember: str | None = None
    channel: str = ""


@dataclass(frozen=True)
class OutboxItem:
    """A claimed message. `lane`: the channel it is paced by (its own, its thread parent's, or `run:<id>`
    while neither is known); a sender sends one lane's messages in order and lanes independently."""

    id: int
    run_id: str
    message: OutboxMessage
    attempts: int
    lane: str = ""


@dataclass(frozen=True)
class RefusedRequest:
    """A request refused before it was authenticated, to audit rate-limited. `source`: who sent it to what
    (client address and endpoint); `detail` goes into the audit row of the first one per window."""

    actor: str
    action: str
    source: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefusalLimits:
    """How refusals are audited: the first per source per `window` seconds gets its own row and the rest
    of that window one summary row; all sources together get at most `cap` such rows per window, and
    what the cap left out is counted in one more row when the window ends."""

    window: float = 60.0
    cap: int = 60


REFUSAL_LIMITS = RefusalLimits()


@dataclass(frozen=True)
class OpenRun:
    """An unfinished run as another run of its runbook sees it: who is on which target, without its steps."""

    id: str
    status: RunStatus
    requester: str
    created_at: float
    params: dict[str, Any]


class RunStore(ABC):
    """Durable run state shared by every process and replica using the same database."""

    LEASE_GRACE = 60.0  # seconds a run's owner may overrun its step's timeout before others give up on it
    backend = "abstract"
    # its calls wait on a database server: a caller on an event loop hands them to a thread instead
    remote = False
    instance: str

    # lifecycle ------------------------------------------------------------------------------------

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def schema(self) -> SchemaState:
        """The schema the database holds (raises SchemaError when it has none)."""

    @abstractmethod
    def wait_for_work(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds, returning early when another process hints that there is new
        work (a run or a chat message). Only a hint: callers poll regardless."""

    @abstractmethod
    def hint_work(self) -> None:
        """Tell the other processes on this database that there is new work (best effort)."""

    @abstractmethod
    def redaction_key(self) -> bytes:
        """The installation's key for redaction markers: made at random when the schema is created (so
        reading it needs no write), the same for every replica and restart on this database, and different
        on any other."""

    # runs -----------------------------------------------------------------------------------------

    @abstractmethod
    def create_run(self, runbook: str, definition: str, params: dict[str, Any], requester: str,
                   trigger: dict[str, Any] | None = None, *, auto_approve: bool = False, dry_run: bool = False,
                   dedup_key: str | None = None, cooldown: float = 0.0) -> tuple[str, bool]:
        """Create a pending run and return (run_id, True); with `dedup_key`, return (existing_id, False)
        instead while a run with that key is active or finished less than `cooldown` seconds ago. Two
        processes creating the same key at once get one run (a unique constraint decides)."""

    @abstractmethod
    def find_by_dedup_key(self, key: str, cooldown: float | None = None) -> str | None:
        """The newest run with `key`; with `cooldown`, only one still active or finished less than
        `cooldown` seconds ago (the rule `create_run` deduplicates by)."""

    @abstractmethod
    def attach_by_dedup_keys(self, alerts: list[tuple[str, str, str, dict[str, Any]]],
                             cooldown: float) -> dict[str, str]:
        """A webhook's (dedup_key, fingerprint, status, alert) rows: each alert whose key has a run by the rule
        of `find_by_dedup_key` is kept with that run, all in one unsynced write; returns key -> run id for
        those keys. The other alerts are not kept: their runs are started by `create_run`, which decides
        races, and the caller attaches them there. One write, because on a database server every round
        trip of a webhook is time the whole alert storm waits."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord: ...

    @abstractmethod
    def list_runs(self, runbook: str | None = None, status: str | None = None, limit: int = 50) -> list[RunRecord]:
        ...

    @abstractmethod
    def open_runs(self, runbook: str, limit: int = 200) -> list[OpenRun]:
        """Unfinished runs of `runbook` (pending, running, awaiting approval), newest first, without their
        steps: every run's start asks, so it is one light query, not `list_runs` per status."""

    @abstractmethod
    def run_ids(self, statuses: tuple[RunStatus, ...]) -> list[str]: ...

    @abstractmethod
    def approvals_due(self, now: float) -> list[str]:
        """Runs still awaiting a decision whose approval window closed before `now`."""

    @abstractmethod
    def update_run(self, run_id: str, audit: tuple[str, str, dict[str, Any]] | None = None, **fields: Any) -> bool:
        """Update a run this process owns while it is running, under the epoch it holds (and append
        `audit` = (actor, action, detail) in the same commit); False when it no longer holds it."""

    @abstractmethod
    def claim(self, run_id: str, expected: RunStatus, new: RunStatus, lease: float = 300.0, **fields: Any) -> bool:
        """Atomically move a run from `expected` to `new`, owning it under a new epoch; False when
        someone else got there first."""

    @abstractmethod
    def recover_interrupted(self) -> list[str]:
        """Mark running runs whose owner's lease ran out (a process or replica that died) interrupted,
        except those it left sending a change (`take_over_in_flight` settles them); runs awaiting
        approval keep waiting. Call `take_over` first to carry on the others instead."""

    @abstractmethod
    def take_over(self, limit: int | None = None, lease: float = 300.0) -> list[str]:
        """Claim (under a new epoch) up to `limit` running runs whose owner's lease ran out and that were
        not sending a change; the caller carries them on. Rows another process is claiming are skipped."""

    @abstractmethod
    def take_over_in_flight(self, limit: int | None = None, lease: float = 300.0) -> list[str]:
        """Claim (under a new epoch) up to `limit` running runs whose owner's lease ran out while it was
        sending an approved change: the caller re-reads the target (never re-sends) and records what is
        true, or `release`s the run to read it again later. The claim fences the old owner out."""

    @abstractmethod
    def release(self, run_id: str) -> bool:
        """Give up this process's lease on a running run at once (it stays running, for anyone to claim
        again); False when this process no longer held it."""

    @abstractmethod
    def holds(self, run_id: str) -> bool:
        """Whether this process holds the run's current lease epoch (it claimed or took it over)."""

    @abstractmethod
    def heartbeat(self, run_ids: list[str], lease: float) -> list[str]:
        """Extend this process's leases on `run_ids`; returns those it still holds."""

    # steps ----------------------------------------------------------------------------------------

    @abstractmethod
    def save_step(self, run_id: str, step: StepRecord, cursor: int | None = None, lease: float | None = None,
                  durable: bool = True) -> bool:
        """Insert or replace a step's record in one commit, only while this process holds the run
        (False, nothing written, otherwise). With `cursor`, also move the run's cursor; with `lease`,
        renew the lease. `durable=False` may skip the sync for records safe to lose (read-only results)."""

    # decisions, alerts, audit ---------------------------------------------------------------------

    @abstractmethod
    def record_decision(self, decision: Decision, awaiting: bool = True) -> bool:
        """Store a decision unless the step already has one (compare-and-set: the first wins). With
        `awaiting`, also only while the run still waits on that step. False when refused."""

    @abstractmethod
    def decisions(self, run_id: str) -> list[Decision]: ...

    def attach_alert(self, run_id: str, fingerprint: str, status: str, payload: dict[str, Any]) -> None:
        """Keep an alert with its run. Need not be synced: Alertmanager re-sends on its repeat interval."""
        self.attach_alerts([(run_id, fingerprint, status, payload)])

    @abstractmethod
    def attach_alerts(self, alerts: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        """Keep (run_id, fingerprint, status, alert) rows in one unsynced commit: a webhook's alerts together."""

    @abstractmethod
    def alerts(self, run_id: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    def audit(self, actor: str, action: str, run_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
        ...

    @abstractmethod
    def audit_log(self, run_id: str | None = None, limit: int = 1000) -> list[AuditEntry]: ...

    @abstractmethod
    def audit_refusal(self, refused: RefusedRequest, now: float, limits: RefusalLimits = REFUSAL_LIMITS) -> bool:
        """Count a refused request and audit it within `limits` (every refusal ends up counted in exactly
        one audit row once its window is closed); True when this one got its own row. Not synced: a
        flood of refusals must not cost a disk sync each. The counters are in the store, so replicas
        share one budget."""

    @abstractmethod
    def close_refusal_windows(self, now: float, limits: RefusalLimits = REFUSAL_LIMITS) -> None:
        """Write the summaries of refusal windows that have ended (called now and then, e.g. with the probe)."""

    @abstractmethod
    def probe_commit(self, now: float) -> None:
        """Commit (synced) this process's heartbeat row: raises StoreError when the store cannot commit
        (read-only, disk full, database down). Cheap: readiness calls it, not every request."""

    # blast radius ---------------------------------------------------------------------------------

    @abstractmethod
    def freeze_on(self, freeze: Freeze) -> None:
        """Turn the global change freeze on (or change its reason), audited in the same commit."""

    @abstractmethod
    def freeze_off(self, actor: str, reason: str = "") -> Freeze | None:
        """End the freeze, audited in the same commit; the freeze that was on (None: there was none)."""

    @abstractmethod
    def freeze_state(self) -> Freeze | None: ...

    @abstractmethod
    def changes_in_flight(self) -> int:
        """Approved remediations of active runs not yet finished (waiting for a worker or executing)."""

    @abstractmethod
    def changes_to_target_since(self, target: str, since: float) -> int:
        """Remediations of `target` approved since `since` (executed, executing or about to)."""

    # chat outbox ----------------------------------------------------------------------------------

    @abstractmethod
    def outbox_put(self, run_id: str, messages: list[OutboxMessage], now: float) -> None:
        """Queue chat calls for a run, all or none, in order, due from `now`."""

    @abstractmethod
    def outbox_claim(self, now: float, lease: float, limit: int = 50) -> list[OutboxItem]:
        """Claim the head message of each run whose retry time has come, for `lease` seconds, skipping
        runs whose head another sender holds and channels another process is sending to. A claimed
        message is not handed out again until delivered, rescheduled or its claim lapses (a crash)."""

    @abstractmethod
    def outbox_delivered(self, item: OutboxItem, remember: tuple[str, str] | None = None) -> None:
        """Mark `item` sent and, in the same commit, keep the (channel, ts) it created."""

    @abstractmethod
    def outbox_superseded(self, item: OutboxItem) -> bool:
        """When `item` edits a message (`target`) that a later pending item of its run edits again, mark it
        done without sending and return True: the later edit shows a newer state (edits are Tier 3)."""

    @abstractmethod
    def outbox_retry(self, item: OutboxItem, at: float, error: str) -> None: ...

    @abstractmethod
    def outbox_give_up(self, item: OutboxItem, error: str) -> None: ...

    @abstractmethod
    def outbox_pause(self, scope: str, until: float) -> None:
        """Hold every message of `scope` (a chat method whose rate limit covers the whole workspace) until
        `until`: no replica claims one before then (a later pause only extends it)."""

    @abstractmethod
    def outbox_release(self) -> None:
        """Give back every claim this process holds (a graceful stop): another sender takes them at once."""

    @abstractmethod
    def outbox_next_at(self) -> float | None: ...

    @abstractmethod
    def outbox_pending(self) -> int: ...

    @abstractmethod
    def outbox_oldest_pending(self) -> float | None:
        """When the oldest undelivered message was queued (None when none is)."""

    @abstractmethod
    def outbox_failures(self) -> list[tuple[int, str, str]]:
        """(id, method, error) of messages the chat service refused for good."""

    @abstractmethod
    def chat_message(self, run_id: str, key: str) -> tuple[str, str] | None:
        """(channel, ts) of a message posted for the run under `key`."""

    @abstractmethod
    def run_for_chat_message(self, channel: str, ts: str) -> str | None: ...

    @abstractmethod
    def first_seen(self, signature: str, now: float, window: float) -> bool:
        """Remember a signed request's signature for `window` seconds; False when it was already seen."""

    # retention ------------------------------------------------------------------------------------

    @abstractmethod
    def prune(self, before: float, audit: bool = False) -> dict[str, int]:
        """Delete finished runs (with their steps, decisions, alerts, outbox) that ended before `before`,
        and, only with `audit`, audit entries older than it. Returns rows deleted per table."""
