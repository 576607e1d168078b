"""The few actions the engine ships itself: declared findings, chat notes, pauses and no-ops."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from engine.actions import ActionArgs, ActionContext, ActionKind, ActionRegistry
from engine.verdict import Evidence, Severity


class NoopArgs(ActionArgs):
    value: Any = None


class FindingArgs(ActionArgs):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    severity: Severity
    summary: str
    evidence: list[Evidence] = Field(default_factory=list)


class NotifyArgs(ActionArgs):
    text: str = Field(min_length=1)


class SleepArgs(ActionArgs):
    seconds: float = Field(ge=0, le=600)


def register_builtins(registry: ActionRegistry) -> ActionRegistry:
    @registry.register("noop", kind=ActionKind.DIAGNOSE, args=NoopArgs)
    def noop(ctx: ActionContext, args: NoopArgs) -> dict[str, Any]:
        """Does nothing and returns `value`; handy to compute a value once for later steps."""
        return {"value": args.value}

    @registry.register("finding", kind=ActionKind.DIAGNOSE, args=FindingArgs)
    def finding(ctx: ActionContext, args: FindingArgs) -> dict[str, Any]:
        """Declares a finding from the runbook itself (usually under a `when`)."""
        ctx.finding(args.id, args.severity, args.summary, list(args.evidence))
        return {"id": args.id}

    @registry.register("notify", kind=ActionKind.NOTIFY, args=NotifyArgs)
    def notify(ctx: ActionContext, args: NotifyArgs) -> dict[str, Any]:
        """Posts `text` in the run's chat thread (and the console)."""
        return {"text": args.text}

    @registry.register("sleep", kind=ActionKind.DIAGNOSE, args=SleepArgs)
    def sleep(ctx: ActionContext, args: SleepArgs) -> dict[str, Any]:
        """Waits, e.g. for controllers to react before a verification step."""
        time.sleep(min(args.seconds, ctx.remaining()))
        return {"slept": args.seconds}

    return registry
