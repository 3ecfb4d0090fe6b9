"""Reading iTIP objects from the calendar side: what is refused, and how clearly."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.calendar.errors import CalendarInputError, ICalendarMalformedError, RecurrenceError
from gateway.calendar.ical import freebusy_object, parse_itip

RIGA = ZoneInfo("Europe/Riga")


def obj(*lines: str, method: str = "REQUEST") -> bytes:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//"]
    if method:
        head.append(f"METHOD:{method}")
    return ("\r\n".join([*head, *lines, "END:VCALENDAR", ""])).encode()


EVENT = [
    "BEGIN:VEVENT",
    "UID:u-1",
    "DTSTAMP:20270101T000000Z",
    "DTSTART;TZID=Europe/Riga:20270329T100000",
    "DTEND;TZID=Europe/Riga:20270329T110000",
    "ATTENDEE;CN=Jānis Bērziņš:mailto:j@example.lv",
    "ATTENDEE;CUTYPE=ROOM:urn:lv:vpd:resource:room-1",
    "END:VEVENT",
]


def parse(raw: bytes) -> object:
    return parse_itip(raw, default_tz=RIGA, max_bytes=64 * 1024)


def test_a_valid_request() -> None:
    message = parse(obj(*EVENT))
    assert message.method == "REQUEST" and message.uid == "u-1"  # type: ignore[attr-defined]
    assert message.start == datetime(2027, 3, 29, 10, tzinfo=RIGA)  # type: ignore[attr-defined]
    assert len(message.attendees) == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"\xff\xfe not utf-8", "UTF-8"),
        (b"garbage", "not iCalendar"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n", "not iCalendar"),
        (obj(*EVENT, method=""), "METHOD"),
        (obj(*EVENT, method="PUBLISH"), "METHOD"),
        (obj(), "exactly one VEVENT"),
        (obj(*EVENT, *EVENT), "exactly one VEVENT"),
        (obj(*[line for line in EVENT if not line.startswith("UID")]), "UID"),
        (obj(*[line for line in EVENT if not line.startswith("DTSTAMP")]), "DTSTAMP"),
        (
            obj(*[line.replace("Europe/Riga", "Nowhere/Land") for line in EVENT]),
            "unknown time zone",
        ),
        (obj(*[line.replace("T110000", "T090000") for line in EVENT]), "DTEND is not after"),
        (obj(*[line for line in EVENT if not line.startswith("DTEND")]), "needs DTSTART and DTEND"),
        (obj(*EVENT[:-1], "DTSTAMP:2027", "END:VEVENT"), "could not be parsed"),
        (obj(*EVENT[:-1], "SEQUENCE:many", "END:VEVENT"), "SEQUENCE"),
        (obj(*EVENT[:-1], "RECURRENCE-ID:20270329T100000Z", "END:VEVENT"), "RECURRENCE-ID"),
    ],
)
def test_malformed_objects_are_refused_with_a_reason(raw: bytes, fragment: str) -> None:
    with pytest.raises(ICalendarMalformedError) as info:
        parse(raw)
    assert fragment in info.value.message
    # The reason names properties, never their values (no personal data in errors).
    assert "Bērziņš" not in info.value.message


def test_too_large_object_is_refused_before_parsing() -> None:
    with pytest.raises(ICalendarMalformedError):
        parse_itip(obj(*EVENT), default_tz=RIGA, max_bytes=100)


def test_too_many_attendees() -> None:
    many = [f"ATTENDEE:mailto:p{i}@example.lv" for i in range(60)]
    with pytest.raises(ICalendarMalformedError):
        parse(obj(*EVENT[:-1], *many, "END:VEVENT"))


def test_unsupported_recurrence() -> None:
    with pytest.raises(RecurrenceError):
        parse(obj(*EVENT[:-1], "RRULE:FREQ=SECONDLY", "END:VEVENT"))
    with pytest.raises(CalendarInputError):
        parse(obj(*EVENT[:-1], "RRULE:FREQ=FOO", "END:VEVENT"))


def test_freebusy_merges_periods_and_names_nobody() -> None:
    start = datetime(2027, 3, 29, 8, tzinfo=UTC)
    raw = freebusy_object(
        uid="fb",
        label="Room 2",
        tz=RIGA,
        start=start,
        end=datetime(2027, 3, 30, tzinfo=UTC),
        stamp=start,
        busy=[(start, start.replace(hour=9)), (start.replace(hour=9), start.replace(hour=10))],
    )
    assert b"FBTYPE=BUSY" in raw and b":20270329T080000Z/20270329T100000Z\r\n" in raw
    assert b"BEGIN:VTIMEZONE" in raw
