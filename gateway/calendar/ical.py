"""iCalendar (RFC 5545) and iTIP (RFC 5546) objects, built and read with ``icalendar``.

What we emit is deterministic: the same state gives the same bytes (DTSTAMP is the time the
state last changed, never "now"), so a publishing run compares hashes and writes only what
changed. Every object with local times carries the VTIMEZONE of its zone
(:func:`gateway.calendar.timezones.vtimezone`).

What the resource calendars and free/busy exports show is **busy, never who**: SUMMARY is
``Busy`` or ``Unavailable``, CLASS is PUBLIC, and there is no DESCRIPTION, LOCATION, ATTENDEE
or ORGANIZER. Personal data in a booking request (summary, parties, description) goes to PLUS
through the inbox only.

What we read from the calendar side is bounded before it is used: size, number of
components and attendees, a known time zone for every local time, and a recurrence in the
supported subset (:mod:`gateway.calendar.recurrence`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, FreeBusy, vCalAddress, vPeriod

from gateway.calendar.errors import ICalendarMalformedError
from gateway.calendar.recurrence import Rule, parse_rule
from gateway.calendar.timezones import vtimezone

__all__ = [
    "PRODID",
    "Attendee",
    "ItipMessage",
    "busy_object",
    "freebusy_object",
    "itip_object",
    "parse_itip",
]

PRODID = "-//VPD//plus-gateway calendar//LV"
#: iTIP methods the calendar side may send us.
INBOUND_METHODS = ("REQUEST", "CANCEL", "REPLY", "COUNTER", "DECLINECOUNTER")
#: Bounds on what we read from the calendar side.
MAX_COMPONENTS = 10
MAX_ATTENDEES = 50
MAX_TEXT = 4000


def _years(start: datetime, rule: Rule | None) -> tuple[int, int]:
    """Years the VTIMEZONE of an object must cover (deterministic from the object alone)."""
    first = start.year
    if rule is None:
        return first, first + 1
    until = rule.until
    if isinstance(until, datetime | date):
        return first, max(first + 1, until.year)
    # Open-ended or COUNT: a decade of transitions; a reader keeps the last observance after.
    return first, first + 10


def _calendar(method: str | None = None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method:
        cal.add("method", method)
    return cal


def busy_object(
    *,
    uid: str,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    stamp: datetime,
    sequence: int = 0,
    rule: Rule | None = None,
    summary: str = "Busy",
    confirmed: bool = True,
) -> bytes:
    """A VCALENDAR with one opaque VEVENT that says busy and nothing about who or why."""
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    cal = _calendar()
    cal.add_component(vtimezone(tz.key, *_years(local_start, rule)))
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", local_start)
    event.add("dtend", local_end)
    if rule is not None:
        event.add("rrule", rule.to_ical())
    event.add("sequence", sequence)
    event.add("summary", summary)
    event.add("class", "PUBLIC")
    event.add("transp", "OPAQUE")
    event.add("status", "CONFIRMED" if confirmed else "TENTATIVE")
    cal.add_component(event)
    return bytes(cal.to_ical())


@dataclass(frozen=True)
class Attendee:
    """One ATTENDEE: a calendar user address and what is said about it."""

    address: str
    name: str | None = None
    role: str | None = None
    cutype: str | None = None
    partstat: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """For the inbox (PLUS); names are personal data and go nowhere else."""
        return {k: v for k, v in vars(self).items() if v is not None}


def _address(value: str, **params: str | None) -> vCalAddress:
    address = vCalAddress(value)
    for key, param in params.items():
        if param:
            address.params[key.upper()] = param
    return address


def itip_object(
    *,
    method: str,
    uid: str,
    sequence: int,
    stamp: datetime,
    organizer: str,
    attendees: Sequence[Attendee],
    start: datetime | None = None,
    end: datetime | None = None,
    tz: ZoneInfo | None = None,
    rule: Rule | None = None,
    request_status: str | None = None,
    comment: str | None = None,
    summary: str | None = None,
) -> bytes:
    """An iTIP message (REPLY, COUNTER, REQUEST or CANCEL) about event ``uid``.

    Our answers name only our own resources as attendees and never repeat the request's
    summary or parties: the organizer already has them.
    """
    cal = _calendar(method)
    event = Event()
    if start is not None and end is not None and tz is not None:
        local_start = start.astimezone(tz)
        cal.add_component(vtimezone(tz.key, *_years(local_start, rule)))
        event.add("dtstart", local_start)
        event.add("dtend", end.astimezone(tz))
        if rule is not None:
            event.add("rrule", rule.to_ical())
    event.add("uid", uid)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("sequence", sequence)
    event.add("organizer", _address(organizer))
    for attendee in attendees:
        event.add(
            "attendee",
            _address(
                attendee.address,
                cn=attendee.name,
                role=attendee.role,
                cutype=attendee.cutype,
                partstat=attendee.partstat,
            ),
        )
    if summary:
        event.add("summary", summary)
    if request_status:
        event.add("request-status", request_status)
    if comment:
        event.add("comment", comment)
    if method == "CANCEL":
        event.add("status", "CANCELLED")
    cal.add_component(event)
    return bytes(cal.to_ical())


def freebusy_object(
    *,
    uid: str,
    label: str,
    tz: ZoneInfo,
    start: datetime,
    end: datetime,
    stamp: datetime,
    busy: Iterable[tuple[datetime, datetime]],
    unavailable: Iterable[tuple[datetime, datetime]] = (),
) -> bytes:
    """A published VFREEBUSY (UTC periods, RFC 5545 3.6.4) for one resource.

    ``label`` is the resource's public label (never a person's name: see the API). Periods
    carry FBTYPE only: BUSY for busy blocks and bookings alike, BUSY-UNAVAILABLE outside
    working hours.
    """
    cal = _calendar("PUBLISH")
    cal.add_component(vtimezone(tz.key, start.astimezone(tz).year, end.astimezone(tz).year))
    component = FreeBusy()
    component.add("uid", uid)
    component.add("dtstamp", stamp.astimezone(UTC))
    component.add("dtstart", start.astimezone(UTC))
    component.add("dtend", end.astimezone(UTC))
    component.add("comment", label)
    for kind, periods in (("BUSY", busy), ("BUSY-UNAVAILABLE", unavailable)):
        merged = _merge(periods)
        if merged:
            prop = [vPeriod((s.astimezone(UTC), e.astimezone(UTC))) for s, e in merged]
            component.add("freebusy", prop, parameters={"FBTYPE": kind})
    cal.add_component(component)
    return bytes(cal.to_ical())


def _merge(periods: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(periods):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItipMessage:
    """One iTIP message from the calendar side, checked and bounded."""

    method: str
    uid: str
    sequence: int
    stamp: datetime
    organizer: str | None
    attendees: tuple[Attendee, ...]
    start: datetime | None = None
    end: datetime | None = None
    rule: Rule | None = None
    exdates: frozenset[datetime] = frozenset()
    #: Personal data possibly: for PLUS only (the inbox), never logged or published.
    summary: str | None = None
    location: str | None = None
    description: str | None = None
    comment: str | None = None
    request_status: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _text(component: Any, name: str) -> str | None:
    value = component.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        value = value[0]
    return str(value)[:MAX_TEXT]


def _when(component: Any, name: str, default_tz: ZoneInfo) -> datetime | None:
    prop = component.get(name)
    if prop is None:
        return None
    value = prop.dt
    if isinstance(value, datetime):
        if value.tzinfo is None:
            if "TZID" in prop.params:
                raise ICalendarMalformedError(
                    f"{name}: unknown time zone {str(prop.params['TZID'])[:64]!r}", path=name
                )
            # A floating time means "the local time wherever you are": ours is the default zone.
            return value.replace(tzinfo=default_tz)
        return value
    if isinstance(value, date):
        # An all-day value: midnight in the default zone.
        return datetime.combine(value, time()).replace(tzinfo=default_tz)
    raise ICalendarMalformedError(f"{name} is not a date or a date-time", path=name)


def parse_itip(raw: bytes, *, default_tz: ZoneInfo, max_bytes: int) -> ItipMessage:
    """Read one iTIP message; ICalendarMalformedError (or a recurrence error) if it is not usable.

    Exactly one event (one UID, no RECURRENCE-ID overrides), a METHOD we handle, DTSTAMP,
    and for REQUEST and COUNTER a start and an end; every property that icalendar could not
    parse is an error, not a silent default.
    """
    if len(raw) > max_bytes:
        raise ICalendarMalformedError(f"object of {len(raw)} bytes is over the {max_bytes} limit")
    try:
        cal = Calendar.from_ical(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ICalendarMalformedError("object is not UTF-8") from exc
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ICalendarMalformedError(f"not iCalendar: {type(exc).__name__}") from exc
    if cal.name != "VCALENDAR":
        raise ICalendarMalformedError("the object is not a VCALENDAR")
    components = list(cal.subcomponents)
    if len(components) > MAX_COMPONENTS:
        raise ICalendarMalformedError(f"more than {MAX_COMPONENTS} components")
    events = [c for c in components if c.name == "VEVENT"]
    if len(events) != 1:
        raise ICalendarMalformedError(f"expected exactly one VEVENT, found {len(events)}")
    event = events[0]
    for component in (cal, event):
        if component.errors:
            prop, _why = component.errors[0]
            raise ICalendarMalformedError(f"property {prop} could not be parsed", path=str(prop))
    method = str(cal.get("method", "")).upper()
    if method not in INBOUND_METHODS:
        raise ICalendarMalformedError(f"METHOD {method or '(none)'} is not handled", path="METHOD")
    uid = _text(event, "uid")
    if not uid or len(uid) > 255:
        raise ICalendarMalformedError("UID is missing or longer than 255 characters", path="UID")
    if event.get("recurrence-id") is not None or event.get("rdate") is not None:
        raise ICalendarMalformedError(
            "RECURRENCE-ID and RDATE are not supported", path="RECURRENCE-ID"
        )
    stamp = _when(event, "dtstamp", default_tz)
    if stamp is None:
        raise ICalendarMalformedError("DTSTAMP is missing", path="DTSTAMP")
    try:
        sequence = int(event.get("sequence", 0))
    except (TypeError, ValueError):
        raise ICalendarMalformedError("SEQUENCE is not a number", path="SEQUENCE") from None
    if not 0 <= sequence <= 1_000_000:
        raise ICalendarMalformedError("SEQUENCE is out of range", path="SEQUENCE")
    start = _when(event, "dtstart", default_tz)
    end = _when(event, "dtend", default_tz)
    if end is None and start is not None and event.get("duration") is not None:
        end = start + event.get("duration").dt
    if method in ("REQUEST", "COUNTER") and (start is None or end is None):
        raise ICalendarMalformedError(f"a {method} needs DTSTART and DTEND", path="DTSTART")
    if start is not None and end is not None and end <= start:
        raise ICalendarMalformedError("DTEND is not after DTSTART", path="DTEND")
    rule = None
    rrules = event.get("rrule")
    if rrules is not None:
        if isinstance(rrules, list):
            raise ICalendarMalformedError("more than one RRULE", path="RRULE")
        rule = parse_rule(dict(rrules))
    exdates = set()
    raw_ex = event.get("exdate")
    for item in raw_ex if isinstance(raw_ex, list) else ([raw_ex] if raw_ex else []):
        for value in item.dts:
            when = value.dt
            if isinstance(when, datetime):
                exdates.add(when if when.tzinfo else when.replace(tzinfo=default_tz))
    attendees_raw = event.get("attendee") or []
    if not isinstance(attendees_raw, list):
        attendees_raw = [attendees_raw]
    if len(attendees_raw) > MAX_ATTENDEES:
        raise ICalendarMalformedError(f"more than {MAX_ATTENDEES} attendees", path="ATTENDEE")
    attendees = tuple(
        Attendee(
            address=str(a)[:255],
            name=(str(a.params["CN"])[:255] if "CN" in a.params else None),
            role=a.params.get("ROLE"),
            cutype=a.params.get("CUTYPE"),
            partstat=a.params.get("PARTSTAT"),
        )
        for a in attendees_raw
    )
    organizer = event.get("organizer")
    return ItipMessage(
        method=method,
        uid=uid,
        sequence=sequence,
        stamp=stamp,
        organizer=str(organizer)[:255] if organizer is not None else None,
        attendees=attendees,
        start=start,
        end=end,
        rule=rule,
        exdates=frozenset(exdates),
        summary=_text(event, "summary"),
        location=_text(event, "location"),
        description=_text(event, "description"),
        comment=_text(event, "comment"),
        request_status=_text(event, "request-status"),
    )


def closed_hours(
    hours: Sequence[tuple[int, time, time]],
) -> list[tuple[int, time, int, time]]:
    """Weekly closed intervals ``(from weekday, from time, to weekday, to time)``.

    ``hours`` is the resource's working hours, ``(weekday, opens, closes)`` with 0=Monday. The
    complement over the week, as one interval from each closing to the next opening, so that
    each is published as one weekly recurring "Unavailable" event.
    """
    if not hours:
        return []
    marks = sorted(hours)
    out = []
    for i, (day, _opens, closes) in enumerate(marks):
        next_day, next_opens, _ = marks[(i + 1) % len(marks)]
        if next_day == day and next_opens <= closes and len(marks) > 1:
            continue
        out.append((day, closes, next_day, next_opens))
    return out


def week_offset(from_day: int, from_time: time, to_day: int, to_time: time) -> timedelta:
    """The nominal length of a weekly interval (a full week when it wraps onto itself)."""
    start = timedelta(days=from_day, hours=from_time.hour, minutes=from_time.minute)
    end = timedelta(days=to_day, hours=to_time.hour, minutes=to_time.minute)
    length = end - start
    return length if length > timedelta(0) else length + timedelta(days=7)
