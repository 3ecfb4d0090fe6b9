"""Local times in the DST gap and fold; our VTIMEZONE read back by two other implementations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import vobject
from icalendar import Calendar

from gateway.calendar.errors import LocalTimeError
from gateway.calendar.ical import busy_object
from gateway.calendar.timezones import local_instant, vtimezone

RIGA = ZoneInfo("Europe/Riga")


def test_time_in_the_spring_gap_is_refused() -> None:
    with pytest.raises(LocalTimeError) as info:
        local_instant(datetime(2027, 3, 28, 3, 30), RIGA)
    assert info.value.code == "LOCAL_TIME_NONEXISTENT"


def test_time_in_the_autumn_fold_is_refused() -> None:
    with pytest.raises(LocalTimeError) as info:
        local_instant(datetime(2027, 10, 31, 3, 30), RIGA)
    assert info.value.code == "LOCAL_TIME_AMBIGUOUS"


def test_ordinary_local_time() -> None:
    assert local_instant(datetime(2027, 3, 29, 10), RIGA).utcoffset() == timedelta(hours=3)


def test_vtimezone_onsets_are_local_times_before_the_change() -> None:
    text = vtimezone("Europe/Riga", 2027, 2027).to_ical().decode()
    # 01:00 UTC both times: 03:00 EET in March, 04:00 EEST in October.
    assert "DTSTART:20270328T030000" in text and "DTSTART:20271031T040000" in text


def _instants(year: int, month: int, day: int) -> list[datetime]:
    start = datetime(year, month, day, tzinfo=UTC) - timedelta(hours=6)
    return [start + timedelta(minutes=15 * i) for i in range(4 * 30)]


@pytest.mark.parametrize("day", [(2027, 3, 28), (2027, 10, 31)])
def test_readers_of_our_vtimezone_agree_with_zoneinfo(day: tuple[int, int, int]) -> None:
    """vobject (Radicale's reader) and icalendar map every quarter hour around the change
    exactly as zoneinfo does."""
    block = vtimezone("Europe/Riga", 2027, 2028)
    by_icalendar = block.to_tz()
    text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + block.to_ical().decode() + "END:VCALENDAR\r\n"
    by_vobject = next(vobject.readComponents(text)).vtimezone.gettzinfo()
    for instant in _instants(*day):
        expected = instant.astimezone(RIGA).utcoffset()
        assert instant.astimezone(by_icalendar).utcoffset() == expected, instant
        assert instant.astimezone(by_vobject).utcoffset() == expected, instant


def test_emitted_event_carries_its_vtimezone_and_local_times() -> None:
    raw = busy_object(
        uid="u",
        start=datetime(2027, 3, 29, 10, tzinfo=RIGA),
        end=datetime(2027, 3, 29, 11, tzinfo=RIGA),
        tz=RIGA,
        stamp=datetime(2027, 1, 1, tzinfo=UTC),
    )
    cal = Calendar.from_ical(raw)
    assert [c.name for c in cal.subcomponents] == ["VTIMEZONE", "VEVENT"]
    assert b"DTSTART;TZID=Europe/Riga:20270329T100000" in raw
    assert cal.walk("VEVENT")[0].decoded("dtstart").astimezone(UTC).hour == 7


def test_emitted_objects_are_deterministic() -> None:
    args = dict(
        uid="u",
        start=datetime(2027, 3, 29, 10, tzinfo=RIGA),
        end=datetime(2027, 3, 29, 11, tzinfo=RIGA),
        tz=RIGA,
        stamp=datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert busy_object(**args) == busy_object(**args)  # type: ignore[arg-type]
