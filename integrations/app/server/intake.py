"""Alert intake: from a parsed Alertmanager payload to started, deduplicated or rejected runs.

Synchronous and HTTP-free (the route calls it in a thread), so it can be tested directly.
Every alert ends in exactly one bucket of the summary; none is silently dropped. When the worker queue
is full, alerts that would start a new run are `deferred` and the route answers 503 + Retry-After:
Alertmanager retries the whole payload, and the alerts already handled dedup onto their runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.catalog import Catalog
from engine.chat import Markup, PlainMarkup
from engine.errors import ParamError, TransientError
from engine.executor import Executor
from engine.run_store import RunStore
from engine.triggers import OTHER_CLUSTER, UNRESOLVED, ClusterScope, NoMatch, OwnerLookup
from integrations.alertmanager import Alert, Match, WebhookPayload, key_for, match_alert
from integrations.app.server.metrics import Metrics
from integrations.app.server.workers import RunQueue

log = logging.getLogger("runbook.server")
REQUESTER = "alertmanager"
_NOTE_EACH = 3  # alerts per run resolved one message each; beyond that one message when all are resolved


@dataclass
class Summary:
    started: list[dict[str, Any]] = field(default_factory=list)
    deduplicated: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    deferred: list[dict[str, Any]] = field(default_factory=list)
    # alerts to keep with their runs, written together once the payload is handled (one commit, not one each)
    attach: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    known: dict[str, str] = field(default_factory=dict)  # dedup key -> its run (open before, or started now)
    kept: set[str] = field(default_factory=set)  # keys whose alerts the store kept with their open run already

    def to_dict(self, received: int) -> dict[str, Any]:
        return {"received": received, "started": self.started, "deduplicated": self.deduplicated,
                "resolved": self.resolved, "unmatched": self.unmatched, "rejected": self.rejected,
                "deferred": self.deferred}


LOOKUP_BUDGET = 2.0  # seconds of owner lookups per webhook: on SQLite the intake runs on the server's event loop


class BudgetedLookup:
    """Owner lookups for one webhook, together bounded in time: a slow API server defers the alerts left
    (503 + Retry-After, Alertmanager re-sends them) instead of stalling every request the server handles.
    At worst the budget plus one lookup's own deadline."""

    def __init__(self, inner: OwnerLookup, deadline: float) -> None:
        self.inner, self.deadline = inner, deadline

    def owner_of(self, namespace: str, name: str, kind: str, of: str = "Pod") -> str | None:
        if time.monotonic() > self.deadline:
            raise TransientError(f"owner lookups for this webhook used their {LOOKUP_BUDGET:g} s budget; retry",
                                 retry_after=5)
        return self.inner.owner_of(namespace, name, kind, of)


class Intake:
    def __init__(self, catalog: Catalog, executor: Executor, store: RunStore, pool: RunQueue, metrics: Metrics,
                 *, cooldown: float, note: Callable[[str, str], None], lookup: OwnerLookup | None = None,
                 scope: ClusterScope | None = None, markup: Markup | None = None) -> None:
        self.catalog = catalog
        self.executor = executor
        self.store = store
        self.pool = pool
        self.metrics = metrics
        self.cooldown = cooldown
        self.note = note
        self.m = markup or PlainMarkup()
        self.lookup = lookup
        self.scope = scope or ClusterScope()

    def process(self, payload: WebhookPayload) -> Summary:
        summary = Summary()
        context = {"receiver": payload.receiver, "group_key": payload.group_key,
                   "external_url": payload.external_url}
        matched = []
        lookup = BudgetedLookup(self.lookup, time.monotonic() + LOOKUP_BUDGET) if self.lookup else None
        for alert in payload.alerts:
            ref = {"alertname": alert.name, "fingerprint": alert.fingerprint}
            try:
                match = match_alert(self.catalog.runbooks.values(), alert, lookup, self.scope)
            except TransientError as exc:  # an owner lookup could not reach the cluster: Alertmanager re-sends
                summary.deferred.append({**ref, "reason": f"cannot resolve the alert's params now: {exc}"})
                self.metrics.alerts.inc(status=alert.status, outcome="deferred")
                continue
            if isinstance(match, NoMatch):
                self._unmatched(alert, match, ref, summary)
                continue
            matched.append((alert, match))
        # alerts joining an open run are kept with it by one write; a miss is settled by `start`, which
        # deduplicates atomically (another replica may be starting the same run right now)
        summary.known = self.store.attach_by_dedup_keys(
            [(key_for(m, a), a.fingerprint, a.status, a.record()) for a, m in matched if a.status != "resolved"],
            self.cooldown)
        summary.kept = set(summary.known)
        for alert, match in matched:
            outcome = (self._resolved(alert, match, summary) if alert.status == "resolved"
                       else self._firing(alert, match, {**context, "cluster": self.scope.of(alert.labels)}, summary))
            self.metrics.alerts.inc(status=alert.status, outcome=outcome)
        self._attach_pending(summary)
        if payload.truncated_alerts:
            log.warning("Alertmanager truncated %d alerts of group %s (max_alerts in its webhook config)",
                        payload.truncated_alerts, payload.group_key)
        return summary

    def _unmatched(self, alert: Alert, match: NoMatch, ref: dict[str, Any], summary: Summary) -> None:
        """Unmatched with its reason; an alert for another cluster or with an unresolvable mapping is audited."""
        summary.unmatched.append({**ref, "reason": match.reason, "detail": match.detail})
        self.metrics.alerts.inc(status=alert.status, outcome=f"unmatched:{match.reason}")
        self.metrics.unmatched.inc(reason=match.reason)
        if match.reason in (OTHER_CLUSTER, UNRESOLVED) and alert.status == "firing":
            self.store.audit(REQUESTER, "alert.unmatched", None, {"reason": match.reason, "detail": match.detail,
                                                                  "fingerprint": alert.fingerprint,
                                                                  "labels": alert.labels})

    def _firing(self, alert: Alert, match: Match, context: dict[str, Any], summary: Summary) -> str:
        runbook = match.runbook
        key = key_for(match, alert)
        ref = {"alertname": alert.name, "fingerprint": alert.fingerprint, "runbook": runbook.name}
        existing = summary.known.get(key)
        if existing is not None:
            return self._attach(existing, alert, ref, summary, kept=key in summary.kept)
        if not self.pool.reserve():
            summary.deferred.append({**ref, "reason": "the run queue is full; retry later"})
            return "deferred"
        trigger = {"kind": "alert", "alert": alert.record(), **context}
        try:
            run_id, created = self.executor.start(runbook, match.params, requester=REQUESTER, trigger=trigger,
                                                  dedup_key=key, cooldown=self.cooldown)
        except ParamError as exc:
            self.pool.release()
            reason = str(exc) + (f" (the alert lacks label(s) {', '.join(match.missing)})" if match.missing else "")
            self.store.audit(REQUESTER, "alert.rejected", None, {"runbook": runbook.name, "reason": reason,
                                                                 "fingerprint": alert.fingerprint,
                                                                 "labels": alert.labels})
            summary.rejected.append({**ref, "reason": reason})
            return "rejected"
        except BaseException:  # any other failure must not keep the queue slot: capacity would leak away
            self.pool.release()
            raise
        if not created:
            self.pool.release()
            return self._attach(run_id, alert, ref, summary)
        self.pool.submit(run_id, reserved=True)  # before anything else can fail; the run is in the store
        summary.known[key] = run_id  # later alerts of this payload join it
        summary.attach.append((run_id, alert.fingerprint, alert.status, alert.record()))
        self.metrics.runs_started.inc(runbook=runbook.name, trigger="alert")
        summary.started.append({**ref, "run_id": run_id})
        return "started"

    def _attach(self, run_id: str, alert: Alert, ref: dict[str, Any], summary: Summary, kept: bool = False) -> str:
        if not kept:  # else the store kept it already, with the lookup
            summary.attach.append((run_id, alert.fingerprint, alert.status, alert.record()))
        self.metrics.dedup_hits.inc(runbook=ref["runbook"])
        summary.deduplicated.append({**ref, "run_id": run_id})
        return "deduplicated"

    def _attach_pending(self, summary: Summary) -> None:
        if summary.attach:
            self.store.attach_alerts(summary.attach)
            summary.attach.clear()

    def _resolved(self, alert: Alert, match: Match, summary: Summary) -> str:
        ref = {"alertname": alert.name, "fingerprint": alert.fingerprint, "runbook": match.runbook.name}
        run_id = self.store.find_by_dedup_key(key_for(match, alert))
        if run_id is None:
            summary.unmatched.append({**ref, "reason": "resolved, but no run was started for it"})
            return "unmatched"
        self._attach_pending(summary)  # what this payload said before counts
        latest = {a["fingerprint"]: a["status"] for a in self.store.alerts(run_id)}
        news = latest.get(alert.fingerprint) != "resolved"
        self.store.attach_alert(run_id, alert.fingerprint, alert.status, alert.record())
        latest[alert.fingerprint] = "resolved"
        if news and len(latest) <= _NOTE_EACH:
            ends = f" at {self.m.data(alert.ends_at, 40)}" if alert.ends_at else ""
            self.note(run_id, f"{self.m.icon('resolved')} Alert {self.m.bold(self.m.data(alert.name, 200))} "
                              f"resolved{ends}.")
        elif news and all(status == "resolved" for status in latest.values()):
            self.note(run_id, f"{self.m.icon('resolved')} All {len(latest)} alerts of this run are resolved.")
        summary.resolved.append({**ref, "run_id": run_id})
        return "resolved"
