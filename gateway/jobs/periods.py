"""Periods: the unique key a fire time maps to, and the fire times a trigger had.

A job's ``period`` says what one run covers: ``hour``, ``day``, ``month``, ``year`` (calendar
periods in the jobs' time zone, Europe/Riga by default), or ``slot`` (one per interval or cron
fire time). ``lag`` moves back that many periods: the open data job that fires on the 3rd of
November with ``period: month, lag: 1`` runs period ``2026-10``. Every instance computes the
same key for the same fire time, which is what makes the runs table's unique key work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from gateway.errors import ConfigError

__all__ = ["PERIOD_KINDS", "Period", "PeriodKind", "fire_times", "period_at", "period_named"]

PeriodKind = Literal["hour", "day", "month", "year", "slot"]
PERIOD_KINDS: tuple[PeriodKind, ...] = ("hour", "day", "month", "year", "slot")

_PATTERNS = {
    "hour": re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2})"),
    "day": re.compile(r"(\d{4})-(\d{2})-(\d{2})"),
    "month": re.compile(r"(\d{4})-(\d{2})"),
    "year": re.compile(r"(\d{4})"),
    "slot": re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z"),
}
#: How far back to look for a missed fire time when a job has no run yet, per period kind.
LOOKBACK = {
    "hour": timedelta(hours=2),
    "day": timedelta(days=2),
    "month": timedelta(days=32),
    "year": timedelta(days=367),
}
_MAX_FIRES = 5000


@dataclass(frozen=True)
class Period:
    """One period of a job: its key and the half-open interval ``[start, end)`` it covers."""

    kind: PeriodKind
    key: str
    start: datetime
    end: datetime

    @property
    def first_day(self) -> date:
        """The first calendar day of the period (in the jobs' time zone)."""
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The last calendar day of the period."""
        return (self.end - timedelta(microseconds=1)).date()


def _month_add(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def period_at(kind: PeriodKind, at: datetime, tz: tzinfo, lag: int = 0) -> Period:
    """The period of kind ``kind`` containing ``at`` (aware), moved back ``lag`` periods."""
    local = at.astimezone(tz)
    if kind == "slot":
        # A slot is the fire time itself, in UTC to the second (no DST ambiguity).
        start = at.astimezone(UTC).replace(microsecond=0)
        return Period(
            kind, start.strftime("%Y-%m-%dT%H:%M:%SZ"), start, start + timedelta(seconds=1)
        )
    if kind == "year":
        return period_named(kind, str(local.year - lag), tz)
    if kind == "month":
        y, m = _month_add(local.year, local.month, -lag)
        return period_named(kind, f"{y:04d}-{m:02d}", tz)
    if kind == "day":
        return period_named(kind, (local.date() - timedelta(days=lag)).isoformat(), tz)
    hour = local.replace(minute=0, second=0, microsecond=0) - timedelta(hours=lag)
    return period_named(kind, hour.strftime("%Y-%m-%dT%H"), tz)


def period_named(kind: PeriodKind, key: str, tz: tzinfo) -> Period:
    """The period ``key`` of kind ``kind`` (``2026-10`` for a month); ConfigError if malformed."""
    match = _PATTERNS[kind].fullmatch(key)
    if match is None:
        examples = {
            "hour": "2026-10-05T14",
            "day": "2026-10-05",
            "month": "2026-10",
            "year": "2026",
            "slot": "2026-10-05T14:05:00Z",
        }
        raise ConfigError(f"period {key!r} is not a {kind} period (e.g. {examples[kind]})")
    parts = [int(p) for p in match.groups()]
    try:
        if kind == "slot":
            y, mo, d, h, mi, sec = parts
            start = datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
            return Period(kind, key, start, start + timedelta(seconds=1))
        if kind == "year":
            first, after = date(parts[0], 1, 1), date(parts[0] + 1, 1, 1)
        elif kind == "month":
            y, m = _month_add(parts[0], parts[1], 1)
            first, after = date(parts[0], parts[1], 1), date(y, m, 1)
        elif kind == "day":
            first = date(parts[0], parts[1], parts[2])
            after = first + timedelta(days=1)
        else:
            start = datetime(parts[0], parts[1], parts[2], parts[3], tzinfo=tz)
            return Period(kind, key, start, start + timedelta(hours=1))
    except ValueError as exc:
        raise ConfigError(f"period {key!r}: {exc}") from None
    return Period(
        kind,
        key,
        datetime.combine(first, time.min, tzinfo=tz),
        datetime.combine(after, time.min, tzinfo=tz),
    )


def fire_times(trigger: BaseTrigger, since: datetime, now: datetime) -> list[datetime]:
    """The trigger's fire times in ``(since, now]``, oldest first (bounded)."""
    found: list[datetime] = []
    fire = trigger.get_next_fire_time(None, since + timedelta(microseconds=1))
    while fire is not None and fire <= now and len(found) < _MAX_FIRES:
        found.append(fire)
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return found


def zone(name: str) -> ZoneInfo:
    """The time zone ``name``; ConfigError when unknown."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        raise ConfigError(f"jobs.timezone: unknown time zone {name!r}") from None
