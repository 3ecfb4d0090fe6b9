"""Booking rules over a real store (SQLite), without a CalDAV server: states, SEQUENCE, races."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.calendar.errors import (
    BookingChangedError,
    BookingStateError,
    CalendarInputError,
    LocalTimeError,
    RecurrenceUnboundedError,
    SlotBusyError,
    UnknownResourceError,
)
from gateway.calendar.ical import Attendee, ItipMessage
from gateway.calendar.service import BusyBlock, CalendarService, WorkingHours

RIGA = ZoneInfo("Europe/Riga")


@pytest.fixture
def service(runtime: Any) -> CalendarService:
    svc: CalendarService = runtime.calendar.service
    svc.put_resource(
        "room-1",
        kind="room",
        label="Room 1",
        working_hours=[WorkingHours(d, time(9), time(17)) for d in range(5)],
    )
    return svc


def slot(days: int = 20, hour: int = 10) -> datetime:
    day = datetime.now(RIGA).date() + timedelta(days=days)
    day -= timedelta(days=day.weekday())  # a Monday
    return datetime.combine(day, time(hour), tzinfo=RIGA)


def request(
    uid: str, start: datetime, *, sequence: int = 0, method: str = "REQUEST"
) -> ItipMessage:
    return ItipMessage(
        method=method,
        uid=uid,
        sequence=sequence,
        stamp=datetime.now(UTC) + timedelta(seconds=sequence),
        organizer="mailto:kalendars@prison.example",
        attendees=(
            Attendee("urn:lv:vpd:resource:room-1", cutype="ROOM"),
            Attendee("mailto:p@example.lv", name="Jānis Bērziņš"),
        ),
        start=start,
        end=start + timedelta(hours=1),
        summary="Mediation",
    )


def receive(service: CalendarService, message: ItipMessage) -> dict[str, Any]:
    return service.receive(message, b"BEGIN:VCALENDAR", href=f"/r/{uuid.uuid4().hex}", etag="e")


def test_resource_ids_and_published_labels_are_checked(service: CalendarService) -> None:
    with pytest.raises(CalendarInputError):
        service.put_resource("Room 1!", kind="room", label="x")
    with pytest.raises(CalendarInputError) as info:
        service.put_resource("room-2", kind="room", label="Client 010203-12345")
    assert "010203-12345" not in info.value.message
    with pytest.raises(CalendarInputError):
        service.put_resource("room-2", kind="room", label="x", time_zone="Mars/Olympus")
    _, changed = service.put_resource(
        "room-1",
        kind="room",
        label="Room 1",
        working_hours=[WorkingHours(d, time(9), time(17)) for d in range(5)],
    )
    assert changed is False


def test_busy_blocks_are_replaced_as_a_set(service: CalendarService) -> None:
    start = slot()
    blocks = [
        BusyBlock("a", start, start + timedelta(hours=1)),
        BusyBlock(
            "b", start + timedelta(days=1), start + timedelta(days=1, hours=1), "FREQ=WEEKLY"
        ),
    ]
    assert service.replace_busy("room-1", blocks) == {
        "added": 2,
        "changed": 0,
        "removed": 0,
        "unchanged": 0,
    }
    assert service.replace_busy("room-1", blocks[:1]) == {
        "added": 0,
        "changed": 0,
        "removed": 1,
        "unchanged": 1,
    }


def test_busy_block_in_the_spring_gap_or_with_too_many_occurrences(
    service: CalendarService,
) -> None:
    gap = datetime(2027, 3, 28, 3, 30)  # naive: local in Riga, and it does not exist
    with pytest.raises(LocalTimeError) as info:
        service.replace_busy("room-1", [BusyBlock("g", gap, gap + timedelta(hours=1))])
    assert info.value.details[0]["path"] == "blocks.0.start"
    start = slot()
    # Open-ended is fine for a busy block: it is expanded to the horizon (about 400 days) ...
    daily = [BusyBlock("h", start, start + timedelta(minutes=5), "FREQ=DAILY")]
    assert service.replace_busy("room-1", daily)["added"] == 1


def test_recurrence_past_max_occurrences_is_refused(make_settings: Any) -> None:
    from gateway.runtime import Runtime

    runtime = Runtime(make_settings(calendar={"max_occurrences": 50}))
    try:
        service = runtime.calendar.service
        service.put_resource("room-1", kind="room", label="Room 1")
        start = slot()
        with pytest.raises(RecurrenceUnboundedError) as info:
            service.replace_busy(
                "room-1", [BusyBlock("h", start, start + timedelta(minutes=5), "FREQ=DAILY")]
            )
        assert info.value.details[0]["path"] == "blocks.0.rrule"
    finally:
        runtime.close()


def test_unknown_resource(service: CalendarService) -> None:
    with pytest.raises(UnknownResourceError):
        service.replace_busy("room-nowhere", [])


def test_request_confirm_and_sequence(service: CalendarService, runtime: Any) -> None:
    result = receive(service, request("u1", slot()))
    assert result["outcome"] == "requested" and result["message_id"]
    booking_id = result["booking_id"]
    assert runtime.store.outbox.messages(partner="calendar") == []
    with pytest.raises(BookingChangedError):
        service.confirm(booking_id, sequence=3)
    confirmed = service.confirm(booking_id, sequence=0)
    assert confirmed["status"] == "confirmed"
    [row] = runtime.store.outbox.messages(partner="calendar")
    assert row["message_type"] == "calendar_reply" and row["ordering_key"] == "room-1"
    # The calendar side moves the meeting (SEQUENCE 1): it must be agreed again.
    moved = receive(service, request("u1", slot(hour=13), sequence=1))
    assert moved["outcome"] == "requested"
    assert service.booking(booking_id)["sequence"] == 1
    # A late copy of SEQUENCE 0 changes nothing.
    assert receive(service, request("u1", slot(), sequence=0))["outcome"] == "stale"
    cancelled = receive(service, request("u1", slot(hour=13), sequence=2, method="CANCEL"))
    assert cancelled["outcome"] == "cancelled"
    with pytest.raises(BookingStateError):
        service.confirm(booking_id, sequence=2)


def test_two_confirmations_of_one_slot_exactly_one_wins(service: CalendarService) -> None:
    start = slot(days=30)
    ids = [receive(service, request(f"race-{i}", start))["booking_id"] for i in range(2)]
    barrier = threading.Barrier(2)
    outcome: dict[str, str] = {}

    def confirm(booking_id: str) -> None:
        barrier.wait()
        try:
            service.confirm(booking_id, sequence=0)
            outcome[booking_id] = "confirmed"
        except SlotBusyError:
            outcome[booking_id] = "busy"

    threads = [threading.Thread(target=confirm, args=(b,)) for b in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcome.values()) == ["busy", "confirmed"]


def test_request_for_a_busy_slot_is_refused_at_once(service: CalendarService, runtime: Any) -> None:
    start = slot(days=40)
    service.replace_busy("room-1", [BusyBlock("court", start, start + timedelta(hours=2))])
    result = receive(service, request("busy-1", start + timedelta(minutes=30)))
    assert (result["outcome"], result["code"]) == ("refused", "SLOT_BUSY")
    [row] = runtime.store.outbox.messages(partner="calendar")
    assert b"REQUEST-STATUS:4.0" in runtime.store.outbox.payload(row["message_id"])
    # The refusal names the resource and the time, never the parties.
    assert "Bērziņš" not in service.booking(result["booking_id"])["reason"]
