"""`k8s.events`: the events of one object, newest first, one line per reason.

A flapping node or a crash-looping pod produces hundreds of identical events; what a person needs is
"BackOff x212, last 20s ago" next to the one "FailedMount" that explains it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind, action
from engine.redaction import redact
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.client import Kube
from integrations.kubernetes.objects import path
from integrations.kubernetes.permissions import NS_EVENTS
from integrations.kubernetes.report import Report, ev
from integrations.kubernetes.timeutil import format_time, parse_time, stamp_with_age

D = ActionKind.DIAGNOSE

MAX_EVENTS = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_time(event: dict[str, Any]) -> datetime | None:
    series = event.get("series") or {}
    for value in (
        series.get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    ):
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return None


def event_count(event: dict[str, Any]) -> int:
    series = event.get("series") or {}
    return int(series.get("count") or event.get("count") or 1)


def summarize_events(events: list[dict[str, Any]], limit: int = 20) -> list[dict[str, Any]]:
    """Group by (type, reason), newest first; messages redacted and trimmed."""
    ordered = sorted(events, key=lambda e: event_time(e) or _EPOCH, reverse=True)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for event in ordered:
        key = (str(event.get("type") or "Normal"), str(event.get("reason") or ""))
        when = event_time(event)
        first = parse_time(event.get("firstTimestamp")) or when
        group = groups.get(key)
        if group is None:
            source = event.get("source") or {}
            groups[key] = {
                "type": key[0],
                "reason": key[1],
                "message": redact(str(event.get("message") or "")).strip()[:300],
                "count": event_count(event),
                "last_seen": format_time(when) if when else None,
                "first_seen": format_time(first) if first else None,
                "source": source.get("component") or event.get("reportingComponent") or "",
            }
            continue
        group["count"] += event_count(event)
        if first is not None and (group["first_seen"] is None or format_time(first) < group["first_seen"]):
            group["first_seen"] = format_time(first)
    return list(groups.values())[:limit]


def fetch_events(kube: Kube, kind: str, name: str, namespace: str | None) -> list[dict[str, Any]]:
    """Events whose involvedObject is this object (one list request)."""
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    if namespace:
        selector += f",involvedObject.namespace={namespace}"
    return kube.list(path("events", namespace=namespace), field_selector=selector, limit=MAX_EVENTS)


class EventsArgs(ActionArgs):
    kind: str
    name: str
    namespace: str | None = None
    limit: int = 20


class EventActions(KubeActions):
    @action("k8s.events", kind=D, args=EventsArgs, permissions=(NS_EVENTS,))
    def events(self, ctx: ActionContext, args: EventsArgs) -> dict[str, Any]:
        """Events for any object, newest first, deduplicated by reason with counts.

        Output: `events` [{type, reason, message, count, first_seen, last_seen, source}],
        `warnings` (number of Warning groups), `total` (raw events seen).
        Findings: `events.warnings` (info, lists the Warning reasons) when there are Warning events;
        none otherwise: events are context, not a diagnosis.
        """
        kube = self.kube_for(ctx)
        raw = fetch_events(kube, args.kind, args.name, args.namespace)
        summary = summarize_events(raw, args.limit)
        warnings = [e for e in summary if e["type"] == "Warning"]
        report = Report({"events": summary, "warnings": len(warnings), "total": len(raw)})
        if warnings:
            target = f"{args.kind} {args.namespace + '/' if args.namespace else ''}{args.name}"
            now = kube.now()
            reasons = ", ".join(f"{e['reason']} x{e['count']}" for e in warnings[:5])
            report.add(
                "events.warnings",
                "info",
                f"{target} has Warning events: {reasons}",
                [ev(f"Event {e['reason']}", "message", f"{e['message']} (last {stamp_with_age(e['last_seen'], now)})")
                 for e in warnings[:5]],
            )
        return report.emit(ctx)
