"""Run events and the sink interface that the console and chat integrations implement."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from engine.model import Runbook
from engine.records import RunRecord

EventKind = Literal[
    "run_started",
    "step_started",
    "step_finished",
    "approval_needed",
    "approval_decided",
    "run_finished",
]


@dataclass(frozen=True)
class RunEvent:
    """Something that happened to a run; `data` is plain JSON-able data for the sink to render.

    `run` is the run as it was at that moment and `definition` its parsed runbook, so a sink renders
    without reading the store back or parsing the stored definition again. `run` is a snapshot: the
    executor never changes it (nor its step records) afterwards, and sinks must not either."""

    kind: EventKind
    run_id: str
    runbook: str
    step: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    run: RunRecord | None = None
    definition: Runbook | None = None


def snapshot(run: RunRecord) -> RunRecord:
    """The run as it is now, for an event: its own step list (step records are replaced, never changed)."""
    return replace(run, steps=list(run.steps), params=dict(run.params))


class EventSink(Protocol):
    """Receives run events. Must not raise for delivery problems: a sink never fails a run."""

    def emit(self, event: RunEvent) -> None: ...


class Fanout:
    """Sends each event to several sinks in order."""

    def __init__(self, sinks: list[EventSink]) -> None:
        self.sinks = list(sinks)

    def emit(self, event: RunEvent) -> None:
        for sink in self.sinks:
            sink.emit(event)
