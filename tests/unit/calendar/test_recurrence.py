"""Bounded RRULE expansion: same answers as dateutil where both can expand, bounded where not."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.calendar.errors import RecurrenceError, RecurrenceUnboundedError
from gateway.calendar.recurrence import expand, parse_rule

RIGA = ZoneInfo("Europe/Riga")
START = datetime(2027, 1, 4, 10, 0, tzinfo=RIGA)  # a Monday
END = datetime(2028, 1, 4, tzinfo=RIGA)
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def ours(
    rule: str, start: datetime = START, end: datetime = END, cap: int = 5000
) -> list[datetime]:
    return [
        s
        for s, _ in expand(
            parse_rule(rule),
            start,
            timedelta(hours=1),
            tz=RIGA,
            window_end=end,
            max_occurrences=cap,
        )
    ]


def theirs(rule: str, start: datetime = START, end: datetime = END) -> list[datetime]:
    naive = rrulestr(rule, dtstart=start.replace(tzinfo=None))
    return [
        d.replace(tzinfo=RIGA)
        for d in naive.between(start.replace(tzinfo=None), end.replace(tzinfo=None), inc=True)
    ]


rules = st.one_of(
    st.builds(
        lambda n, d: f"FREQ=DAILY;INTERVAL={n};BYDAY={','.join(d)}",
        st.integers(1, 3),
        st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True),
    ),
    st.builds(lambda n: f"FREQ=DAILY;INTERVAL={n}", st.integers(1, 10)),
    st.builds(
        lambda n, d: f"FREQ=WEEKLY;INTERVAL={n};BYDAY={','.join(d)}",
        st.integers(1, 4),
        st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True),
    ),
    st.builds(lambda n: f"FREQ=WEEKLY;INTERVAL={n}", st.integers(1, 4)),
    st.builds(
        lambda n, md: f"FREQ=MONTHLY;INTERVAL={n};BYMONTHDAY={md}",
        st.integers(1, 3),
        st.sampled_from([1, 4, 15, 28, -1]),
    ),
    st.builds(
        lambda o, d: f"FREQ=MONTHLY;BYDAY={o}{d}",
        st.sampled_from([1, 2, -1]),
        st.sampled_from(DAYS),
    ),
    st.builds(lambda m: f"FREQ=YEARLY;BYMONTH={m}", st.integers(1, 12)),
    st.builds(
        lambda m, d: f"FREQ=YEARLY;BYMONTH={m};BYDAY=-1{d}",
        st.integers(1, 12),
        st.sampled_from(DAYS),
    ),
)


@settings(max_examples=150, deadline=None)
@given(rules)
def test_same_occurrences_as_dateutil(rule: str) -> None:
    # DTSTART is always the first occurrence (RFC 5545); dateutil leaves it out when the rule
    # does not match it, so compare from the day after.
    a = [d for d in ours(rule) if d > START]
    b = [d for d in theirs(rule) if d > START]
    assert a == b


def test_count_and_until() -> None:
    assert len(ours("FREQ=DAILY;COUNT=5")) == 5
    until = ours("FREQ=DAILY;UNTIL=20270110T080000Z")
    assert until[-1] == datetime(2027, 1, 10, 10, tzinfo=RIGA)


def test_open_ended_rule_stops_at_the_window() -> None:
    got = ours("FREQ=WEEKLY", end=START + timedelta(days=60))
    assert len(got) == 9 and got[-1] < START + timedelta(days=60)


def test_rule_that_never_matches_ends_with_the_window() -> None:
    # dateutil walks to the year 9999 on this one; here only the window's days are walked.
    assert ours("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30") == [START]


def test_too_many_occurrences_is_refused() -> None:
    with pytest.raises(RecurrenceUnboundedError):
        ours("FREQ=DAILY", cap=100)


def test_start_too_long_before_the_window_is_refused() -> None:
    with pytest.raises(RecurrenceUnboundedError):
        ours(
            "FREQ=YEARLY",
            start=datetime(2000, 1, 3, 10, tzinfo=RIGA),
            end=datetime(2027, 1, 1, tzinfo=RIGA),
        )


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=SECONDLY",
        "FREQ=HOURLY",
        "FREQ=DAILY;BYSETPOS=1",
        "FREQ=DAILY;BYHOUR=9",
        "FREQ=WEEKLY;BYMONTHDAY=1",
        "FREQ=DAILY;BYDAY=1MO",
        "BYDAY=MO",
        "FREQ=DAILY;COUNT=2;UNTIL=20270101",
        "FREQ=DAILY;INTERVAL=x",
        "FREQ=MONTHLY;BYDAY=6MO",
    ],
)
def test_unsupported_parts_are_refused(rule: str) -> None:
    with pytest.raises(RecurrenceError):
        parse_rule(rule)


def test_weekly_across_spring_and_autumn_changes_keeps_wall_clock() -> None:
    spring = ours("FREQ=WEEKLY;COUNT=2", start=datetime(2027, 3, 22, 10, tzinfo=RIGA))
    assert [d.utcoffset() for d in spring] == [timedelta(hours=2), timedelta(hours=3)]
    assert [d.hour for d in spring] == [10, 10]
    autumn = ours("FREQ=WEEKLY;COUNT=2", start=datetime(2027, 10, 25, 10, tzinfo=RIGA))
    assert [d.utcoffset() for d in autumn] == [timedelta(hours=3), timedelta(hours=2)]


def test_daily_occurrence_in_the_spring_gap_uses_the_offset_before() -> None:
    # 03:30 does not exist on 28 March 2027 in Riga: RFC 5545 reads it with the offset before.
    got = ours("FREQ=DAILY;COUNT=3", start=datetime(2027, 3, 27, 3, 30, tzinfo=RIGA))
    gap = got[1]
    assert (
        gap.astimezone(ZoneInfo("UTC")).hour == 1 and gap.astimezone(ZoneInfo("UTC")).minute == 30
    )
