"""Bounded expansion of recurrence rules (RFC 5545 RRULE), in wall-clock time.

Why not dateutil's ``rrule``: a rule whose filters never match (``FREQ=DAILY;BYMONTH=2;
BYMONTHDAY=30``) makes it walk every day up to the year 9999, seconds of CPU per request even
with ``UNTIL`` set, because ``UNTIL`` is only compared with dates that pass the filters. Here a
rule is expanded day by day between its start and the end of the window, so the cost is
bounded by the window, whatever the rule says; ``max_occurrences`` bounds the result.

Supported: FREQ DAILY, WEEKLY, MONTHLY, YEARLY; INTERVAL, COUNT, UNTIL, WKST; BYDAY (with
ordinals for MONTHLY and YEARLY), BYMONTHDAY, BYMONTH; EXDATE. Anything else (SECONDLY to
HOURLY, BYSETPOS, BYYEARDAY, BYWEEKNO, BYHOUR, ...) is refused with RRULE_UNSUPPORTED rather
than half understood. Tests compare the result with dateutil on rules both can expand.
"""

from __future__ import annotations

import calendar as _cal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.calendar.errors import RecurrenceError, RecurrenceUnboundedError

__all__ = ["Rule", "expand", "parse_rule"]

_FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_ALLOWED = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", "BYMONTHDAY", "BYMONTH"}


@dataclass(frozen=True)
class Rule:
    """A parsed recurrence rule within the supported subset."""

    freq: str
    interval: int = 1
    count: int | None = None
    #: Aware (UTC or local) or a date; occurrences starting after it are not produced.
    until: datetime | date | None = None
    wkst: int = 0
    #: (ordinal or 0, weekday 0=Monday).
    byday: tuple[tuple[int, int], ...] = ()
    bymonthday: tuple[int, ...] = ()
    bymonth: tuple[int, ...] = ()

    @property
    def bounded(self) -> bool:
        """True when the rule ends by itself (COUNT or UNTIL)."""
        return self.count is not None or self.until is not None

    def to_ical(self) -> dict[str, Any]:
        """The rule as icalendar's vRecur mapping (for the objects we emit)."""
        out: dict[str, Any] = {"FREQ": self.freq}
        if self.interval != 1:
            out["INTERVAL"] = self.interval
        if self.count is not None:
            out["COUNT"] = self.count
        if self.until is not None:
            out["UNTIL"] = self.until
        if self.byday:
            out["BYDAY"] = [f"{n if n else ''}{_DAYS[d]}" for n, d in self.byday]
        if self.bymonthday:
            out["BYMONTHDAY"] = list(self.bymonthday)
        if self.bymonth:
            out["BYMONTH"] = list(self.bymonth)
        if self.wkst:
            out["WKST"] = _DAYS[self.wkst]
        return out


def _ints(values: Sequence[Any], low: int, high: int, part: str) -> tuple[int, ...]:
    out = []
    for value in values:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise RecurrenceError(
                f"RRULE {part}: {value!r} is not a number", path="rrule"
            ) from None
        if not (low <= abs(number) <= high):
            raise RecurrenceError(f"RRULE {part}: {number} is out of range", path="rrule")
        out.append(number)
    return tuple(sorted(set(out)))


def _weekday(text: str) -> int:
    try:
        return _DAYS.index(text.upper())
    except ValueError:
        raise RecurrenceError(f"RRULE: {text!r} is not a weekday", path="rrule") from None


def parse_rule(value: Mapping[str, Any] | str) -> Rule:
    """A :class:`Rule` from an RRULE string or icalendar's vRecur mapping; refuses the rest."""
    if isinstance(value, str):
        parts: dict[str, list[Any]] = {}
        for chunk in value.strip().removeprefix("RRULE:").split(";"):
            if not chunk:
                continue
            name, sep, raw = chunk.partition("=")
            if not sep:
                raise RecurrenceError(f"RRULE part {chunk!r} has no value", path="rrule")
            parts[name.strip().upper()] = raw.split(",")
    else:
        parts = {
            str(k).upper(): (list(v) if isinstance(v, list | tuple) else [v])
            for k, v in value.items()
        }
    unknown = sorted(set(parts) - _ALLOWED)
    if unknown:
        raise RecurrenceError(f"RRULE part {unknown[0]} is not supported", path="rrule")
    freq = str((parts.get("FREQ") or [""])[0]).upper()
    if freq not in _FREQS:
        raise RecurrenceError(
            f"RRULE FREQ={freq or '(none)'} is not supported; use {', '.join(_FREQS)}",
            path="rrule",
        )
    interval = _ints(parts.get("INTERVAL", [1]), 1, 1000, "INTERVAL")[0]
    count = _ints(parts["COUNT"], 1, 1_000_000, "COUNT")[0] if "COUNT" in parts else None
    until = _until(parts["UNTIL"][0]) if "UNTIL" in parts else None
    if count is not None and until is not None:
        raise RecurrenceError("RRULE has both COUNT and UNTIL", path="rrule")
    byday = []
    for item in parts.get("BYDAY", []):
        text = str(item).strip().upper()
        ordinal_text, day = text[:-2], text[-2:]
        ordinal = int(ordinal_text) if ordinal_text not in ("", "+", "-") else 0
        if ordinal and freq not in ("MONTHLY", "YEARLY"):
            raise RecurrenceError(f"RRULE BYDAY={text} needs FREQ=MONTHLY or YEARLY", path="rrule")
        if abs(ordinal) > (5 if freq == "MONTHLY" else 53):
            raise RecurrenceError(f"RRULE BYDAY={text}: ordinal out of range", path="rrule")
        byday.append((ordinal, _weekday(day)))
    bymonthday = _ints(parts.get("BYMONTHDAY", []), 1, 31, "BYMONTHDAY")
    if bymonthday and freq == "WEEKLY":
        raise RecurrenceError("RRULE BYMONTHDAY is not allowed with FREQ=WEEKLY", path="rrule")
    return Rule(
        freq=freq,
        interval=interval,
        count=count,
        until=until,
        wkst=_weekday(str(parts["WKST"][0])) if "WKST" in parts else 0,
        byday=tuple(sorted(set(byday))),
        bymonthday=bymonthday,
        bymonth=_ints(parts.get("BYMONTH", []), 1, 12, "BYMONTH"),
    )


def _until(raw: Any) -> datetime | date:
    if isinstance(raw, datetime | date):
        return raw
    text = str(raw).strip()
    try:
        if len(text) == 8:
            return datetime.strptime(text, "%Y%m%d").date()
        if text.endswith("Z"):
            return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return datetime.strptime(text, "%Y%m%dT%H%M%S")
    except ValueError:
        raise RecurrenceError(f"RRULE UNTIL={text!r} is not a date or time", path="rrule") from None


def _nth_in_month(day: date) -> tuple[int, int]:
    last = _cal.monthrange(day.year, day.month)[1]
    return (day.day - 1) // 7 + 1, -((last - day.day) // 7 + 1)


def _nth_in_year(day: date) -> tuple[int, int]:
    yday = day.timetuple().tm_yday
    days = 366 if _cal.isleap(day.year) else 365
    return (yday - 1) // 7 + 1, -((days - yday) // 7 + 1)


def _matches(rule: Rule, first: date, day: date) -> bool:
    """Whether ``day`` (on or after ``first``) carries an occurrence of ``rule``."""
    freq, n = rule.freq, rule.interval
    if freq == "DAILY" and (day - first).days % n:
        return False
    if freq == "WEEKLY":
        shift = timedelta(days=(first.weekday() - rule.wkst) % 7)
        week0 = (first - shift).toordinal() // 7
        week = (day - timedelta(days=(day.weekday() - rule.wkst) % 7)).toordinal() // 7
        if (week - week0) % n:
            return False
    if freq == "MONTHLY" and ((day.year - first.year) * 12 + day.month - first.month) % n:
        return False
    if freq == "YEARLY" and (day.year - first.year) % n:
        return False
    if rule.bymonth and day.month not in rule.bymonth:
        return False
    if rule.bymonthday:
        last = _cal.monthrange(day.year, day.month)[1]
        if not any(d == day.day or (d < 0 and last + d + 1 == day.day) for d in rule.bymonthday):
            return False
    if rule.byday:
        in_month = freq == "MONTHLY" or (freq == "YEARLY" and rule.bymonth)
        nth = _nth_in_month(day) if in_month else _nth_in_year(day)
        if not any(wd == day.weekday() and (n == 0 or n in nth) for n, wd in rule.byday):
            return False
    # Defaults taken from the start when the rule does not say (RFC 5545 3.3.10).
    if freq == "WEEKLY" and not rule.byday:
        return day.weekday() == first.weekday()
    if freq == "MONTHLY" and not rule.byday and not rule.bymonthday:
        return day.day == first.day
    if freq == "YEARLY" and not rule.byday and not rule.bymonthday:
        if not rule.bymonth and day.month != first.month:
            return False
        return day.day == first.day
    return True


def _after_until(rule: Rule, start_local: datetime, tz: ZoneInfo) -> bool:
    until = rule.until
    if until is None:
        return False
    if isinstance(until, datetime):
        if until.tzinfo is None:
            return start_local.replace(tzinfo=None) > until
        return start_local.astimezone(UTC) > until.astimezone(UTC)
    return start_local.date() > until


def expand(
    rule: Rule,
    start: datetime,
    duration: timedelta,
    *,
    tz: ZoneInfo,
    window_end: datetime,
    max_occurrences: int,
    max_days: int = 366 * 12,
    exdates: frozenset[datetime] = frozenset(),
) -> list[tuple[datetime, datetime]]:
    """Occurrences ``(start, end)`` (aware, in ``tz``) of a rule starting at ``start``.

    Wall-clock semantics: every occurrence starts at the local time of ``start`` on its day,
    and its end is that local time plus the nominal ``duration``; a local time in the spring
    gap is read with the offset before the gap (RFC 5545 3.3.10), as ``zoneinfo`` does. The
    first occurrence is ``start`` itself. Expansion stops at ``window_end``, at COUNT or
    UNTIL, and raises RecurrenceUnboundedError past ``max_occurrences`` occurrences or
    ``max_days`` days walked, so no rule costs more than the window.
    """
    first_local = start.astimezone(tz)
    wall = first_local.replace(tzinfo=None)
    first_day = wall.date()
    last_day = window_end.astimezone(tz).date()
    if (last_day - first_day).days > max_days:
        raise RecurrenceUnboundedError(
            f"the recurrence starts more than {max_days} days before the end of the window",
            path="rrule",
        )
    excluded = {e.astimezone(UTC) for e in exdates}
    out: list[tuple[datetime, datetime]] = []
    produced = 0
    for day in _days(first_day, last_day):
        if day != first_day and not _matches(rule, first_day, day):
            continue
        local = datetime.combine(day, wall.time()).replace(tzinfo=tz)
        if _after_until(rule, local, tz) or local >= window_end:
            break
        produced += 1
        if rule.count is not None and produced > rule.count:
            break
        if local.astimezone(UTC) in excluded:
            continue
        end_wall = datetime.combine(day, wall.time()) + duration
        out.append((local, end_wall.replace(tzinfo=tz)))
        if len(out) > max_occurrences:
            raise RecurrenceUnboundedError(
                f"the recurrence has more than {max_occurrences} occurrences in the window",
                path="rrule",
            )
    return out


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    one = timedelta(days=1)
    while day <= last:
        yield day
        day += one
