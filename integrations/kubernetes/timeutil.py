"""Kubernetes timestamps: parsing, ages and the short durations on-call engineers read.

The API serves RFC 3339 times (`2026-01-02T03:04:05Z`) and MicroTime (`...05.123456Z`); findings show
both the raw value and how long ago it was, because "6m12s ago" is what decides a page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from a Kubernetes timestamp, or None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as the API writes it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def age_seconds(value: Any, now: datetime) -> float | None:
    """Seconds between a timestamp and `now`, or None when the timestamp is missing."""
    parsed = parse_time(value) if not isinstance(value, datetime) else value
    if parsed is None:
        return None
    return (now - parsed).total_seconds()


def human_duration(seconds: float | None) -> str:
    """`6m12s`, `3h4m`, `2d5h`: two units are enough to act on."""
    if seconds is None:
        return "unknown"
    negative = seconds < 0
    total = int(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days}d{hours}h"
    elif hours:
        text = f"{hours}h{minutes}m"
    elif minutes:
        text = f"{minutes}m{secs}s"
    else:
        text = f"{secs}s"
    return f"-{text}" if negative else text


def stamp_with_age(value: Any, now: datetime) -> str:
    """`2026-01-02T03:04:05Z (6m12s ago)` for evidence values."""
    parsed = parse_time(value)
    if parsed is None:
        return "absent"
    age = (now - parsed).total_seconds()
    when = f"{human_duration(age)} ago" if age >= 0 else f"in {human_duration(-age)}"
    return f"{format_time(parsed)} ({when})"
