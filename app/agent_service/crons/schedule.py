"""Cron expressions: validated with croniter, evaluated in the cron's timezone (UTC unless
given, as LangGraph's server does: https://docs.langchain.com/langsmith/cron-jobs "All cron
schedules are interpreted in UTC"; the SDK's `timezone` names an IANA zone)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

MAX_SCHEDULE_CHARS = 200
# The nicknames of crontab(5); croniter knows them too.
NICKNAMES = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"})
# Enough consecutive firings to meet a schedule's shortest gap (a burst within an hour, a day).
GAP_SAMPLES = 64


class ScheduleError(ValueError):
    """A schedule or timezone the service refuses; the message says why (the API answers 422)."""


def zone(name: str | None) -> tzinfo:
    if name is None:
        return UTC
    if len(name) > 64:
        raise ScheduleError("timezone: longer than 64 characters")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"timezone: {name!r} is not an IANA time zone") from None


def validate(schedule: str, timezone: str | None, min_interval_seconds: int) -> None:
    """Raise ScheduleError unless `schedule` is a 5-field cron expression (or a nickname)
    that never fires twice within `min_interval_seconds`."""
    if len(schedule) > MAX_SCHEDULE_CHARS:
        raise ScheduleError(f"schedule: longer than {MAX_SCHEDULE_CHARS} characters")
    fields = schedule.split()
    # croniter also reads a sixth field (seconds); standard cron and LangGraph have five.
    if not (len(fields) == 5 or (len(fields) == 1 and fields[0].lower() in NICKNAMES)):
        raise ScheduleError(
            "schedule: expected 5 fields (minute hour day-of-month month day-of-week) or one "
            f"of {', '.join(sorted(NICKNAMES))}"
        )
    tz = zone(timezone)
    if not croniter.is_valid(schedule):
        raise ScheduleError(f"schedule: {schedule!r} is not a valid cron expression")
    start = datetime.now(UTC).astimezone(tz)
    try:
        it = croniter(schedule, start)
        previous = it.get_next(datetime)
        for _ in range(GAP_SAMPLES):
            current = it.get_next(datetime)
            gap = (current - previous).total_seconds()
            if gap < min_interval_seconds:
                raise ScheduleError(
                    f"schedule: fires every {gap:.0f} s at times; the minimum interval is "
                    f"{min_interval_seconds} s (CRON_MIN_INTERVAL_SECONDS)"
                )
            previous = current
    except CroniterError:
        raise ScheduleError(f"schedule: {schedule!r} never fires") from None


def next_firing(
    schedule: str, timezone: str | None, after: datetime, end_time: datetime | None = None
) -> datetime | None:
    """The first firing strictly after `after`, in UTC; None when past `end_time` (or never)."""
    try:
        following: datetime = croniter(schedule, after.astimezone(zone(timezone))).get_next(
            datetime
        )
    except CroniterError:
        return None
    moment = following.astimezone(UTC)
    if end_time is not None and moment > end_time:
        return None
    return moment
