"""CronJob schedule arithmetic with the Kubernetes controller's semantics.

The controller (robfig/cron) evaluates the schedule in `spec.timeZone` (else the controller manager's
zone, UTC on every managed control plane). Two DST details matter when counting "missed" runs:
a wall-clock time skipped by spring-forward does not fire that day, and a time inside the repeated
fall-back hour fires twice. croniter shifts skipped times forward, so its candidates are filtered
back to times whose wall clock matches the expression.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

# The v1 controller refused to schedule beyond this many missed times; v2 warns (TooManyMissedTimes).
CONTROLLER_MISSED_LIMIT = 100
_MACROS = {"@midnight": "0 0 * * *", "@annually": "0 0 1 1 *"}


class ScheduleError(ValueError):
    """The schedule or time zone cannot be evaluated."""


@dataclass(frozen=True)
class Schedule:
    expression: str
    zone: ZoneInfo
    zone_name: str
    zone_is_default: bool

    @classmethod
    def parse(cls, expression: str, time_zone: str | None) -> Schedule:
        """Accept the CronJob's `schedule` (including a legacy `CRON_TZ=`/`TZ=` prefix) and `timeZone`."""
        text = expression.strip()
        prefix_zone = None
        if text.startswith(("CRON_TZ=", "TZ=")):
            head, _, text = text.partition(" ")
            prefix_zone = head.split("=", 1)[1]
        text = _MACROS.get(text, text)
        name = time_zone or prefix_zone
        try:
            zone = ZoneInfo(name or "UTC")
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ScheduleError(f"unknown time zone {name!r}") from exc
        if not croniter.is_valid(text):
            raise ScheduleError(f"invalid cron schedule {expression!r}")
        return cls(text, zone, name or "UTC", name is None)

    def _wall_clock_matches(self, when: datetime) -> bool:
        if self.expression.startswith("@"):
            return True
        return bool(croniter.match(self.expression, when.replace(tzinfo=None)))

    def iter_after(self, start: datetime) -> Iterator[datetime]:
        """Fire times strictly after `start`, aware in the schedule's zone, robfig DST semantics."""
        local = start.astimezone(self.zone)
        try:
            it = croniter(self.expression, local)
        except (CroniterError, ValueError) as exc:
            raise ScheduleError(str(exc)) from exc
        last: datetime | None = None
        floor = start.astimezone(UTC)
        while True:
            when = it.get_next(datetime)
            instant = when.astimezone(UTC)  # same-zone comparisons ignore `fold`: compare instants
            if (last is not None and instant <= last) or instant <= floor:
                continue
            last = instant
            if self._wall_clock_matches(when):
                yield when

    def next_times(self, after: datetime, count: int) -> list[datetime]:
        out: list[datetime] = []
        for when in self.iter_after(after):
            out.append(when)
            if len(out) >= count:
                break
        return out

    def times_between(self, start: datetime, end: datetime, cap: int = 1000) -> tuple[list[datetime], bool]:
        """Fire times in (start, end], at most `cap`; the flag says whether the cap cut the list."""
        out: list[datetime] = []
        for when in self.iter_after(start):
            if when.astimezone(UTC) > end.astimezone(UTC):
                return out, False
            if len(out) >= cap:
                return out, True
            out.append(when)
        return out, False  # pragma: no cover - the iterator is infinite

    def previous_time(self, before: datetime) -> datetime | None:
        """The last fire time at or before `before`: when the most recent run should have started."""
        local = before.astimezone(self.zone)
        if self._wall_clock_matches(local) and local.second == 0 and local.microsecond == 0:
            return local
        it = croniter(self.expression, local)
        for _ in range(50):
            when: datetime = it.get_prev(datetime)
            if when.astimezone(UTC) <= before.astimezone(UTC) and self._wall_clock_matches(when):
                return when
        return None


@dataclass(frozen=True)
class MissedRuns:
    """Scheduled times that produced no Job.

    `missed` counts times after `lastScheduleTime` (or creation) older than the controller's grace
    (`startingDeadlineSeconds`, or `grace_seconds` of lag); `too_many` is the controller's 100 limit.
    """

    missed: int
    first_missed: datetime | None
    last_missed: datetime | None
    too_many: bool
    window_expired: bool  # startingDeadlineSeconds is set and the missed times are past it


def missed_runs(
    schedule: Schedule,
    last_scheduled: datetime,
    now: datetime,
    starting_deadline_seconds: int | None = None,
    grace_seconds: int = 120,
) -> MissedRuns:
    grace = grace_seconds if starting_deadline_seconds is None else min(grace_seconds, starting_deadline_seconds)
    cutoff = now - timedelta(seconds=grace)
    times, capped = schedule.times_between(last_scheduled, cutoff, cap=CONTROLLER_MISSED_LIMIT + 1)
    count = len(times)
    window_expired = bool(
        times and starting_deadline_seconds is not None
        and (now - times[-1]).total_seconds() > starting_deadline_seconds
    )
    return MissedRuns(
        missed=count,
        first_missed=times[0] if times else None,
        last_missed=times[-1] if times else None,
        too_many=capped or count > CONTROLLER_MISSED_LIMIT,
        window_expired=window_expired,
    )


def shortest_interval(schedule: Schedule, after: datetime, samples: int = 6) -> timedelta | None:
    """The smallest gap between upcoming runs: how long a run may last before it overlaps the next."""
    times = schedule.next_times(after, samples)
    gaps = [b - a for a, b in pairwise(times)]
    return min(gaps) if gaps else None
