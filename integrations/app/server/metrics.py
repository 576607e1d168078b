"""Prometheus metrics in the text exposition format, hand-written to avoid a dependency.

Only what an on-call dashboard needs: runs by runbook and outcome, runs awaiting approval, step and run
durations, webhook latency, queue depth, dedup hits, alerts received and unmatched (by reason), chat
messages queued and the age of the oldest, chat errors, and the build. `MetricsSink` derives the run
metrics from run events, so the executor knows nothing about metrics.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from engine.events import RunEvent
from engine.records import RunStatus
from engine.run_store import RunStore

Labels = tuple[tuple[str, str], ...]
_DURATIONS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str) -> None:
        self.name = name
        self.help = help
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str) -> None:
        super().__init__(name, help)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [*self.header(), *(f"{self.name}{_labels(k)} {v:g}" for k, v in items)]


class Gauge(_Metric):
    """A gauge read at scrape time from a callback (queue depth, outbox backlog)."""

    kind = "gauge"

    def __init__(self, name: str, help: str, read: Callable[[], float]) -> None:
        super().__init__(name, help)
        self.read = read

    def render(self) -> list[str]:
        return [*self.header(), f"{self.name} {self.read():g}"]


class Info(_Metric):
    """A constant 1 whose labels carry facts (`runbook_build_info{version=...}`), the Prometheus idiom."""

    kind = "gauge"

    def __init__(self, name: str, help: str, labels: dict[str, str]) -> None:
        super().__init__(name, help)
        self.labels: Labels = tuple(sorted(labels.items()))

    def render(self) -> list[str]:
        return [*self.header(), f"{self.name}{_labels(self.labels)} 1"]


def build_labels() -> dict[str, str]:
    try:
        version = metadata.version("runbook")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return {"version": version, "python": platform.python_version()}


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            counts, total = self._series.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            counts[-1] += 1
            total[0] += value

    def render(self) -> list[str]:
        lines = self.header()
        with self._lock:
            items = sorted((k, (list(c), t[0])) for k, (c, t) in self._series.items())
        for key, (counts, total) in items:
            for bound, count in zip(self.buckets, counts, strict=False):
                le = f'le="{bound:g}"'
                lines.append(f"{self.name}_bucket{_labels(key, le)} {count}")
            inf = 'le="+Inf"'
            lines.append(f"{self.name}_bucket{_labels(key, inf)} {counts[-1]}")
            lines.append(f"{self.name}_sum{_labels(key)} {total:g}")
            lines.append(f"{self.name}_count{_labels(key)} {counts[-1]}")
        return lines


class Metrics:
    """The server's metrics; gauges are bound once the queue and outbox exist."""

    def __init__(self) -> None:
        self.runs = Counter("runbook_runs_total", "Finished runs by runbook and outcome.")
        self.runs_started = Counter("runbook_runs_started_total", "Runs started, by runbook and trigger.")
        self.run_seconds = Histogram("runbook_run_duration_seconds", "Run wall time, start to finish.", _DURATIONS)
        self.step_seconds = Histogram("runbook_step_duration_seconds", "Step duration by action and status.",
                                      _DURATIONS)
        self.webhook_seconds = Histogram("runbook_webhook_duration_seconds", "Webhook handling latency.", _LATENCY)
        self.alerts = Counter("runbook_alerts_total", "Alerts received, by status and outcome.")
        self.dedup_hits = Counter("runbook_dedup_hits_total", "Alerts attached to an existing run, not a new one.")
        self.chat_errors = Counter("runbook_chat_errors_total", "Failed chat API calls by reason (retried or not).")
        self.refusals = Counter("runbook_requests_refused_total", "Requests refused, by endpoint and reason.")
        self.unmatched = Counter("runbook_alerts_unmatched_total", "Alerts that started no runbook, by reason.")
        self.build = Info("runbook_build_info", "The running version.", build_labels())
        self.gauges: list[Gauge] = []

    def gauge(self, name: str, help: str, read: Callable[[], float]) -> None:
        self.gauges.append(Gauge(name, help, read))

    def watch_store(self, store: RunStore) -> None:
        """Gauges read from the run store at scrape time, so every replica reports the shared state."""
        self.gauge("runbook_runs_awaiting_approval", "Runs waiting for a human decision.",
                   lambda: len(store.run_ids((RunStatus.AWAITING_APPROVAL,))))

    def render(self) -> str:
        metrics: list[Any] = [self.build, self.runs, self.runs_started, self.run_seconds, self.step_seconds,
                              self.webhook_seconds, self.alerts, self.unmatched, self.dedup_hits, self.chat_errors,
                              self.refusals, *self.gauges]
        return "\n".join(line for m in metrics for line in m.render()) + "\n"


class MetricsSink:
    """Run and step metrics from the run events."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def emit(self, event: RunEvent) -> None:
        data = event.data
        if event.kind == "step_finished" and data.get("started_at") and data.get("finished_at"):
            self.metrics.step_seconds.observe(float(data["finished_at"]) - float(data["started_at"]),
                                              action=str(data.get("action", "")), status=str(data.get("status", "")))
        elif event.kind == "run_finished":
            self.metrics.runs.inc(runbook=event.runbook, outcome=str(data.get("status", "")))
            if data.get("created_at") and data.get("finished_at"):
                self.metrics.run_seconds.observe(float(data["finished_at"]) - float(data["created_at"]),
                                                 runbook=event.runbook)
