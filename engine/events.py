"""Run events and the sink interface that the console and chat integrations implement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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
    """Something that happened to a run; `data` is plain JSON-able data for the sink to render."""

    kind: EventKind
    run_id: str
    runbook: str
    step: str = ""
    data: dict[str, Any] = field(default_factory=dict)


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
