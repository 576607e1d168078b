"""What one server owns (run queue, sweeper, intake, chat operations, sinks) and how it starts and stops.

Built by `assemble` from the engine's assembly and an optional chat backend; reachable as
`app.state.services`, where the module-level request handlers (and tests, and the demo) find it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.errors import StoreError
from engine.events import EventSink, Fanout
from engine.policy import Policy
from engine.records import RunStatus
from engine.run_store import REFUSAL_LIMITS, RefusalLimits, RunStore
from engine.settings import Settings
from engine.triggers import ClusterScope
from integrations.app.server.chat import ChatBackend, ChatEndpoint
from integrations.app.server.chatops import ChatOps
from integrations.app.server.health import CommitHealth
from integrations.app.server.intake import Intake
from integrations.app.server.metrics import Metrics, MetricsSink
from integrations.app.server.runlog import LogSink
from integrations.app.server.sweeper import Sweeper
from integrations.app.server.workers import RunQueue
from integrations.app.wiring import Assembly
from integrations.kubernetes.owners import OwnerResolver

log = logging.getLogger("runbook.server")


@dataclass
class Services:
    engine: Assembly
    chat: ChatBackend | None
    metrics: Metrics
    queue: RunQueue
    sweeper: Sweeper
    intake: Intake
    chatops: ChatOps | None
    sink: EventSink
    token: str | None = None
    basic: str | None = None
    chat_endpoints: Mapping[str, ChatEndpoint] = field(default_factory=dict)
    refusal_limits: RefusalLimits = REFUSAL_LIMITS
    health: CommitHealth = field(init=False)
    _previous: tuple[EventSink, Policy] | None = None

    def __post_init__(self) -> None:
        self.health = CommitHealth(self.engine.store, limits=self.refusal_limits)

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    @property
    def store(self) -> RunStore:
        return self.engine.store

    def start(self) -> None:
        executor = self.engine.executor
        self._previous = (executor.sink, executor.policy)
        executor.sink = Fanout([executor.sink, self.sink])
        if self.chat is not None:  # approver and runner groups are the chat's user groups
            executor.policy = executor.policy.with_parts(directory=self.chat.directory)
        interrupted = self.store.recover_interrupted()
        if interrupted:
            log.warning("marked %d run(s) interrupted by the last shutdown: %s", len(interrupted), interrupted)
        self.queue.start()
        # Pending runs never started; awaiting runs may hold a decision recorded just before a stop.
        for run_id in self.store.run_ids((RunStatus.PENDING, RunStatus.AWAITING_APPROVAL)):
            self.queue.submit(run_id, force=True)
        self.sweeper.start()
        if self.chat is not None:
            self.chat.start()

    def stop(self) -> None:
        self.sweeper.stop()
        self.queue.stop()
        if self.chat is not None:
            self.chat.stop()
        if self._previous is not None:
            self.engine.executor.sink, self.engine.executor.policy = self._previous

    def problems(self) -> list[str]:
        """Why the server is not ready (empty: ready)."""
        problems = []
        try:
            self.store.list_runs(None, None, 1)
        except StoreError as exc:
            problems.append(f"run store unreachable: {exc}")
        else:
            cannot_commit = self.health.problem()
            if cannot_commit is not None:
                problems.append(cannot_commit)
        if self.queue.alive() < self.queue.size:
            problems.append(f"{self.queue.size - self.queue.alive()} of {self.queue.size} workers are not running")
        if not self.sweeper.alive:
            problems.append("the approval-timeout sweeper is not running")
        if self.chat is not None and not self.chat.alive:
            problems.append(f"the {self.chat.name} sender is not running")
        return problems


def assemble(assembly: Assembly, *, chat: ChatBackend | None, metrics: Metrics, sweep_interval: float | None,
             sinks: tuple[EventSink, ...]) -> Services:
    settings, executor = assembly.settings, assembly.executor
    queue = RunQueue(executor.resume, workers=settings.workers, capacity=settings.queue_size)
    fan: list[EventSink] = [LogSink(), MetricsSink(metrics), *sinks]
    metrics.watch_store(assembly.store)
    metrics.gauge("runbook_queue_depth", "Runs waiting for a worker.", queue.depth)
    metrics.gauge("runbook_workers_busy", "Workers carrying a run forward.", lambda: queue.busy)

    def note(run_id: str, body: str) -> None:
        """A message in the run's thread (and the log) that is not a run event, e.g. a resolved alert."""
        log.info("run %s: %s", run_id, body)
        if chat is not None:
            chat.note(run_id, body)

    lookup = OwnerResolver(assembly.kube) if assembly.kube is not None else None
    intake = Intake(assembly.catalog, executor, assembly.store, queue, metrics, cooldown=settings.dedup_cooldown,
                    note=note, lookup=lookup, scope=ClusterScope(settings.cluster_name, settings.cluster_label),
                    markup=chat.markup if chat else None)
    chatops = None
    if chat is not None:
        fan.append(chat.sink)
        metrics.gauge("runbook_chat_outbox_pending", "Chat messages not yet delivered.", chat.pending)
        metrics.gauge("runbook_chat_outbox_oldest_seconds", "Age of the oldest undelivered chat message.",
                      chat.oldest_pending_age)
        chatops = ChatOps(assembly.catalog, executor, queue, metrics, chat.markup, channel_of=chat.channel_of,
                          source=chat.name)
        if executor.policy.identities is not None:
            chat.show_outlook(executor.approval_outlook)
    token = settings.webhook_token.get_secret_value() if settings.webhook_token else None
    basic = settings.webhook_basic_auth.get_secret_value() if settings.webhook_basic_auth else None
    if token is None and basic is None:
        log.warning("the webhook accepts unauthenticated requests (set webhook_token or webhook_basic_auth)")
    interval = sweep_interval if sweep_interval is not None else min(5.0, settings.run_lease / 3)
    sweeper = Sweeper(assembly.store, executor, queue, lease=settings.run_lease, interval=interval)
    return Services(assembly, chat, metrics, queue, sweeper, intake, chatops, Fanout(fan), token, basic,
                    dict(chat.endpoints()) if chat else {})
