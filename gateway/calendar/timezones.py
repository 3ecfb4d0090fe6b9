"""Time zones: local times that do not exist or exist twice, and VTIMEZONE blocks.

Recurring blocks and working hours are wall-clock times in the resource's zone (Europe/Riga by
default): a weekly 10:00 meeting stays at 10:00 across the last Sundays of March and October,
so its UTC time moves by an hour. Single times from PLUS may come with an offset (used as
given) or without one (read in the resource's zone). A local time in the spring gap does not
exist and one in the autumn fold exists twice; both are refused rather than guessed.

:func:`vtimezone` builds the VTIMEZONE of what we emit from the zone's real transitions
(Python's ``zoneinfo``). icalendar's own ``Timezone.from_tzid`` puts the onset of daylight
time at the local time *after* the spring change (04:00 in Riga, where RFC 5545 wants the
03:00 of the offset in force before it), which moves the change by an hour for a reader.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Timezone, TimezoneDaylight, TimezoneStandard

from gateway.calendar.errors import CalendarInputError, LocalTimeError

__all__ = ["aware", "local_instant", "vtimezone", "zone"]


def zone(name: str, *, path: str = "time_zone") -> ZoneInfo:
    """The IANA zone ``name``; CalendarInputError naming ``path`` if it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarInputError(f"unknown time zone {name!r}", path=path) from exc


def local_instant(local: datetime, tz: ZoneInfo, *, path: str = "") -> datetime:
    """The aware instant of the naive wall-clock time ``local`` in ``tz``.

    LocalTimeError when the time falls in the spring gap (it never happens) or in the autumn
    fold (it happens twice and nothing says which): PLUS must give an offset then.
    """
    first = local.replace(tzinfo=tz, fold=0)
    second = local.replace(tzinfo=tz, fold=1)
    # A time in the gap does not survive the round trip through UTC.
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != local:
        raise LocalTimeError(
            f"{local.isoformat()} does not exist in {tz.key} (clocks go forward)", path=path
        )
    if first.utcoffset() != second.utcoffset():
        raise LocalTimeError(
            f"{local.isoformat()} happens twice in {tz.key} (clocks go back); give an offset",
            path=path,
            ambiguous=True,
        )
    return first


def aware(value: datetime, tz: ZoneInfo, *, path: str = "") -> datetime:
    """``value`` as an aware datetime in ``tz``: an offset is kept, a naive time is local."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(tz)
    return local_instant(value, tz, path=path)


def _transitions(tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """UTC instants in [start, end) where ``tz`` changes its offset, to the second."""
    out = []
    day = timedelta(days=1)
    cursor = start
    before = cursor.astimezone(tz).utcoffset()
    while cursor < end:
        nxt = min(cursor + day, end)
        after = nxt.astimezone(tz).utcoffset()
        if after != before:
            low, high = cursor, nxt  # offset(low) == before, offset(high) != before
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) / 2
                if mid.astimezone(tz).utcoffset() == before:
                    low = mid
                else:
                    high = mid
            out.append(high.replace(microsecond=0))
            before = after
        cursor = nxt
    return out


@lru_cache(maxsize=256)
def vtimezone(tz_name: str, first_year: int, last_year: int) -> Timezone:
    """A VTIMEZONE for ``tz_name`` valid from 1 January ``first_year`` to 31 December ``last_year``.

    One STANDARD or DAYLIGHT observance per distinct (offset from, offset to, name); its DTSTART
    is the first onset as a local time in the offset in force *before* the change (RFC 5545
    3.6.5), later onsets are RDATEs. Cached: the same years give the same block, so publishing
    stays byte-for-byte idempotent.
    """
    tz = zone(tz_name)
    start = datetime.combine(date(first_year, 1, 1), time(), tzinfo=UTC)
    end = datetime.combine(date(last_year + 1, 1, 1), time(), tzinfo=UTC)
    component = Timezone()
    component.add("tzid", tz_name)
    groups: dict[tuple[bool, timedelta, timedelta, str], list[datetime]] = {}
    initial = start.astimezone(tz)
    offset = initial.utcoffset() or timedelta(0)
    # The observance in force at the start of the range, so every instant in it is covered.
    groups[(bool(initial.dst()), offset, offset, initial.tzname() or tz_name)] = [
        initial.replace(tzinfo=None)
    ]
    for moment in _transitions(tz, start, end):
        previous = (moment - timedelta(seconds=1)).astimezone(tz).utcoffset() or timedelta(0)
        local_after = moment.astimezone(tz)
        key = (
            bool(local_after.dst()),
            previous,
            local_after.utcoffset() or timedelta(0),
            local_after.tzname() or tz_name,
        )
        groups.setdefault(key, []).append((moment + previous).replace(tzinfo=None))
    for (daylight, offset_from, offset_to, name), onsets in groups.items():
        observance = TimezoneDaylight() if daylight else TimezoneStandard()
        observance.add("dtstart", onsets[0])
        if len(onsets) > 1:
            observance.add("rdate", onsets[1:])
        observance.add("tzname", name)
        observance.add("tzoffsetfrom", offset_from)
        observance.add("tzoffsetto", offset_to)
        component.add_component(observance)
    return component
