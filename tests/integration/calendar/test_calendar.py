"""The unified calendar against a real CalDAV server (Radicale, from PyPI, on loopback).

The calendar side is played by a CalDAV client with its own account: it puts iTIP objects
into the requests collection and reads our answers and the published resource calendars.
"""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event, vCalAddress

from tests.integration.calendar.conftest import CalLive, next_last_sunday

pytestmark = pytest.mark.integration

RIGA = ZoneInfo("Europe/Riga")
PREFIX = "urn:lv:vpd:resource:"
#: Personal data a request may carry: none of it may reach a published object or an answer.
NAMES = ("Jānis Bērziņš", "Anna Kalniņa", "Pēteris Ozols")
CODES = ("010203-12345", "321234-56789")


def rid(kind: str = "room") -> str:
    """A resource id of its own (the Radicale server is shared by the module)."""
    return f"{kind}-{uuid.uuid4().hex[:10]}"


def declare(cal: CalLive, resource_id: str, *, hours: bool = True, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "mediator" if resource_id.startswith("mediator") else "room",
        "label": f"Mediation room {resource_id[-4:]}",
        "location": "Rīga",
        **extra,
    }
    if hours:
        body["working_hours"] = [
            {"weekday": d, "opens": "09:00", "closes": "17:00"} for d in range(5)
        ]
    response = cal.http.put(cal.api(f"/resources/{resource_id}"), json=body)
    assert response.status_code == 200, response.text
    return response.json()


def monday_ahead(weeks: int = 3) -> datetime:
    today = datetime.now(RIGA).date() + timedelta(weeks=weeks)
    day = today - timedelta(days=today.weekday())
    return datetime.combine(day, time(10, 0), tzinfo=RIGA)


def itip(
    method: str,
    uid: str,
    resources: list[str],
    start: datetime | None = None,
    hours: float = 1,
    *,
    sequence: int = 0,
    rrule: str | None = None,
    stamp: datetime | None = None,
) -> bytes:
    """An iTIP object as a prison's calendar would send it, with personal data in it."""
    cal = Calendar()
    cal.add("prodid", "-//IeVP//calendar//LV")
    cal.add("version", "2.0")
    cal.add("method", method)
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp or datetime.now(UTC).replace(microsecond=0))
    event.add("sequence", sequence)
    if start is not None:
        event.add("dtstart", start)
        event.add("dtend", start + timedelta(hours=hours))
    if rrule:
        event.add("rrule", dict(p.split("=") for p in rrule.split(";")))
    organizer = vCalAddress("mailto:kalendars@prison.example")
    organizer.params["CN"] = "Prison calendar"
    event.add("organizer", organizer)
    for r in resources:
        attendee = vCalAddress(PREFIX + r)
        attendee.params["CUTYPE"] = "ROOM"
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        event.add("attendee", attendee)
    for name in NAMES[:2]:
        party = vCalAddress(f"mailto:{name.split()[0].lower()}@example.lv")
        party.params["CN"] = name
        event.add("attendee", party)
    event.add("summary", f"Mediation: {NAMES[0]} and {NAMES[1]}")
    event.add("description", f"Party in custody {NAMES[2]}, personal code {CODES[0]}")
    event.add("location", "Prison, visiting room 3")
    cal.add_component(event)
    return bytes(cal.to_ical())


def _answers(cal: CalLive, uid: str) -> list[Any]:
    out = []
    for obj in cal.side.objects(cal.side.replies):
        for event in obj.walk("VEVENT"):
            if str(event.get("uid")) == uid:
                out.append((str(obj.get("method")), event))
    return out


def _attendee(event: Any, resource_id: str) -> Any:
    values = event.get("attendee")
    values = values if isinstance(values, list) else [values]
    return next(a for a in values if str(a) == PREFIX + resource_id)


# -- availability --------------------------------------------------------------------------


def test_availability_published_and_second_run_writes_nothing(cal: CalLive) -> None:
    room = rid()
    declare(cal, room)
    start = monday_ahead()
    blocks = [
        {
            "id": "staff-meeting",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "rrule": "FREQ=WEEKLY;COUNT=4",
        },
        {
            "id": "repair",
            "start": (start + timedelta(days=1)).isoformat(),
            "end": (start + timedelta(days=1, hours=3)).isoformat(),
        },
    ]
    response = cal.http.put(cal.api(f"/resources/{room}/busy"), json={"blocks": blocks})
    assert response.json() == {"added": 2, "changed": 0, "removed": 0, "unchanged": 0}

    first = cal.sync()["published"]
    assert first["written"] >= 2 + 5  # two busy blocks and five closed intervals of the week
    # The calendar side sees the resource busy: the server's own free-busy-query.
    week = cal.side.free_busy(
        room, start.astimezone(UTC), (start + timedelta(days=2)).astimezone(UTC)
    )
    utc = start.astimezone(UTC)
    assert ("BUSY", f"{utc:%Y%m%dT%H%M%SZ}/{utc + timedelta(hours=1):%Y%m%dT%H%M%SZ}") in week
    assert (
        "BUSY",
        f"{utc + timedelta(days=1):%Y%m%dT%H%M%SZ}/"
        f"{utc + timedelta(days=1, hours=3):%Y%m%dT%H%M%SZ}",
    ) in week
    # Every emitted object with local times carries its VTIMEZONE.
    for raw in cal.side.raw_objects(room):
        assert b"BEGIN:VTIMEZONE" in raw and b"TZID:Europe/Riga" in raw

    again = cal.sync()["published"]
    assert again["written"] == 0 and again["deleted"] == 0
    assert again["unchanged"] == first["written"]

    # One block removed: exactly one object deleted, nothing rewritten.
    cal.http.put(cal.api(f"/resources/{room}/busy"), json={"blocks": blocks[:1]})
    third = cal.sync()["published"]
    assert (third["written"], third["deleted"]) == (0, 1)


# -- bookings ------------------------------------------------------------------------------


def test_booking_request_confirmed_end_to_end(cal: CalLive) -> None:
    mediator, room = rid("mediator"), rid()
    declare(cal, mediator)
    declare(cal, room)
    uid = f"{uuid.uuid4()}@prison.example"
    start = monday_ahead() + timedelta(hours=3)
    cal.side.put_request(itip("REQUEST", uid, [mediator, room], start, 2))

    polled = cal.sync()["polled"]
    assert polled["processed"] == 1 and polled["removed"] == 1
    [item] = cal.inbox("booking_request")
    message = item["message"]
    # PLUS gets everything, personal data included, through the inbox only.
    assert message["status"] == "requested" and message["uid"] == uid
    assert sorted(message["resources"]) == sorted([mediator, room])
    assert message["summary"].startswith("Mediation:")
    assert {a["name"] for a in message["attendees"]} == set(NAMES[:2])
    assert message["start"] == start.isoformat()

    booking_id = message["booking_id"]
    response = cal.http.post(cal.api(f"/bookings/{booking_id}/confirm"), json={"sequence": 0})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "confirmed"
    # Repeating the confirmation changes nothing and sends nothing more.
    again = cal.http.post(cal.api(f"/bookings/{booking_id}/confirm"), json={"sequence": 0})
    assert again.status_code == 200
    [row] = cal.wait_delivered(booking_id)
    assert (
        row["message_type"] == "calendar_reply"
        and row["ordering_key"] == sorted([mediator, room])[0]
    )

    [(method, reply)] = _answers(cal, uid)
    assert method == "REPLY" and int(reply.get("sequence")) == 0
    assert _attendee(reply, mediator).params["PARTSTAT"] == "ACCEPTED"
    assert str(reply.get("request-status")).startswith("2.0")

    # The event is on both resources' calendars, with the request's UID, saying busy only.
    cal.sync()
    for resource in (mediator, room):
        events = [
            e
            for o in cal.side.objects(resource)
            for e in o.walk("VEVENT")
            if str(e.get("uid")) == uid
        ]
        assert len(events) == 1 and str(events[0].get("summary")) == "Busy"
        assert events[0].decoded("dtstart") == start


def test_conflicting_request_refused_with_reason(cal: CalLive) -> None:
    room = rid()
    declare(cal, room)
    start = monday_ahead() + timedelta(days=2)
    cal.http.put(
        cal.api(f"/resources/{room}/busy"),
        json={
            "blocks": [
                {
                    "id": "court",
                    "start": start.isoformat(),
                    "end": (start + timedelta(hours=2)).isoformat(),
                }
            ]
        },
    )
    uid = f"{uuid.uuid4()}@prison.example"
    cal.side.put_request(itip("REQUEST", uid, [room], start + timedelta(hours=1)))
    cal.sync()
    [item] = cal.inbox("booking_request")
    assert item["message"]["status"] == "refused"
    assert item["message"]["refusal"]["code"] == "SLOT_BUSY"
    cal.wait_delivered(item["message"]["booking_id"])
    [(method, reply)] = _answers(cal, uid)
    assert method == "REPLY" and _attendee(reply, room).params["PARTSTAT"] == "DECLINED"
    assert str(reply.get("request-status")).startswith("4.0")


def test_slot_taken_meanwhile_is_refused_on_confirm(cal: CalLive) -> None:
    room = rid()
    declare(cal, room)
    start = monday_ahead() + timedelta(days=3)
    uid = f"{uuid.uuid4()}@prison.example"
    cal.side.put_request(itip("REQUEST", uid, [room], start))
    cal.sync()
    booking_id = cal.inbox("booking_request")[0]["message"]["booking_id"]
    cal.http.put(
        cal.api(f"/resources/{room}/busy"),
        json={
            "blocks": [
                {
                    "id": "x",
                    "start": start.isoformat(),
                    "end": (start + timedelta(minutes=30)).isoformat(),
                }
            ]
        },
    )
    response = cal.http.post(cal.api(f"/bookings/{booking_id}/confirm"), json={"sequence": 0})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "SLOT_BUSY"
    assert room in response.json()["error"]["message"]


def test_double_booking_race_exactly_one_wins(cal: CalLive) -> None:
    room = rid()
    declare(cal, room)
    start = monday_ahead() + timedelta(days=4)
    uids = [f"{uuid.uuid4()}@prison.example" for _ in range(2)]
    for uid in uids:
        cal.side.put_request(itip("REQUEST", uid, [room], start))
    cal.sync()
    bookings = [i["message"]["booking_id"] for i in cal.inbox("booking_request")]
    assert len(bookings) == 2
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def confirm(booking_id: str) -> None:
        import httpx

        with httpx.Client(timeout=20) as client:
            barrier.wait()
            results[booking_id] = client.post(
                cal.api(f"/bookings/{booking_id}/confirm"), json={"sequence": 0}
            ).status_code

    threads = [threading.Thread(target=confirm, args=(b,)) for b in bookings]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [200, 409]
    states = sorted(cal.http.get(cal.api(f"/bookings/{b}")).json()["status"] for b in bookings)
    assert states == ["confirmed", "requested"]


def test_cancellation_from_the_calendar_side_frees_the_slot(cal: CalLive) -> None:
    room = rid()
    declare(cal, room)
    start = monday_ahead() + timedelta(days=1, hours=4)
    uid = f"{uuid.uuid4()}@prison.example"
    cal.side.put_request(itip("REQUEST", uid, [room], start))
    cal.sync()
    booking_id = cal.inbox("booking_request")[0]["message"]["booking_id"]
    cal.http.post(cal.api(f"/bookings/{booking_id}/confirm"), json={"sequence": 0})
    cal.sync()
    assert any(str(e.get("uid")) == uid for o in cal.side.objects(room) for e in o.walk("VEVENT"))

    cal.side.put_request(itip("CANCEL", uid, [room], start, sequence=1))
    cal.sync()
    [cancelled] = cal.inbox("booking_cancelled")
    assert cancelled["message"]["booking_id"] == booking_id
    booking = cal.http.get(cal.api(f"/bookings/{booking_id}")).json()
    assert (booking["status"], booking["sequence"]) == ("cancelled", 1)
    assert not any(
        str(e.get("uid")) == uid for o in cal.side.objects(room) for e in o.walk("VEVENT")
    )
    # A stale REQUEST (SEQUENCE 0) arriving late changes nothing.
    cal.side.put_request(
        itip(
            "REQUEST", uid, [room], start, sequence=0, stamp=datetime.now(UTC) - timedelta(hours=1)
        )
    )
    cal.sync()
    assert cal.http.get(cal.api(f"/bookings/{booking_id}")).json()["status"] == "cancelled"


def test_meeting_proposed_by_plus_then_cancelled(cal: CalLive) -> None:
    room = rid()
    declare(cal, room)
    start = monday_ahead() + timedelta(days=2, hours=5)
    response = cal.http.post(
        cal.api("/bookings"),
        json={
            "resources": [room],
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "attendees": ["mailto:kalendars@prison.example"],
        },
    )
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "proposed"
    cal.wait_delivered(booking["id"])
    [(method, request)] = _answers(cal, booking["uid"])
    assert method == "REQUEST" and int(request.get("sequence")) == 0

    # The prison accepts: its REPLY comes back through the requests collection.
    reply = Calendar.from_ical(itip("REPLY", booking["uid"], [], start))
    event = reply.walk("VEVENT")[0]
    del event["attendee"]
    guest = vCalAddress("mailto:kalendars@prison.example")
    guest.params["PARTSTAT"] = "ACCEPTED"
    event.add("attendee", guest)
    cal.side.put_request(bytes(reply.to_ical()))
    cal.sync()
    assert cal.http.get(cal.api(f"/bookings/{booking['id']}")).json()["status"] == "confirmed"
    assert cal.inbox("booking_reply")

    cancel = cal.http.post(cal.api(f"/bookings/{booking['id']}/cancel"), json={"sequence": 0})
    assert cancel.status_code == 200 and cancel.json()["sequence"] == 1
    cal.wait_delivered(booking["id"], count=2)
    # One object per UID in a collection: the CANCEL replaced the REQUEST.
    [(method, cancelled)] = _answers(cal, booking["uid"])
    assert method == "CANCEL" and int(cancelled.get("sequence")) == 1
    cal.sync()
    assert not any(
        str(e.get("uid")) == booking["uid"]
        for o in cal.side.objects(room)
        for e in o.walk("VEVENT")
    )


# -- time zones ----------------------------------------------------------------------------


@pytest.mark.parametrize("month", [3, 10])
def test_dst_week_is_correct_on_the_calendar(cal: CalLive, month: int) -> None:
    """A weekly 10:00 block in Riga moves in UTC across the last Sunday of March / October."""
    room = rid()
    declare(cal, room, hours=False)
    sunday = next_last_sunday(month)
    monday_before = datetime.combine(sunday - timedelta(days=6), time(10, 0))
    cal.http.put(
        cal.api(f"/resources/{room}/busy"),
        json={
            "blocks": [
                {
                    "id": "weekly",
                    "start": monday_before.isoformat(),
                    "end": (monday_before + timedelta(hours=1)).isoformat(),
                    "rrule": "FREQ=WEEKLY;COUNT=3",
                }
            ]
        },
    )
    cal.sync()
    window = (
        datetime.combine(sunday - timedelta(days=7), time(), UTC),
        datetime.combine(sunday + timedelta(days=2), time(), UTC),
    )
    periods = [p for kind, p in cal.side.free_busy(room, *window) if kind == "BUSY"]
    before, after = ("08", "07") if month == 3 else ("07", "08")
    assert periods == [
        f"{monday_before:%Y%m%d}T{before}0000Z/{monday_before:%Y%m%d}T{int(before) + 1:02d}0000Z",
        f"{monday_before + timedelta(days=7):%Y%m%d}T{after}0000Z/"
        f"{monday_before + timedelta(days=7):%Y%m%d}T{int(after) + 1:02d}0000Z",
    ]
    # Our own export says the same.
    export = cal.http.get(
        cal.api("/freebusy"),
        params={"from": window[0].isoformat(), "to": window[1].isoformat(), "resource": room},
    )
    assert export.headers["content-type"].startswith("text/calendar")
    fb = Calendar.from_ical(export.content).walk("VFREEBUSY")[0]
    values = fb.get("freebusy")
    ours = sorted(
        f"{p[0].astimezone(UTC):%Y%m%dT%H%M%SZ}/{p[1].astimezone(UTC):%Y%m%dT%H%M%SZ}"
        for value in (values if isinstance(values, list) else [values])
        if value.params.get("FBTYPE") == "BUSY"
        for p in (value.dt if isinstance(value.dt, list) else [value.dt])
    )
    assert ours == periods


# -- bad input -----------------------------------------------------------------------------


def test_unknown_resource_and_unbounded_rule_get_clear_answers(cal: CalLive) -> None:
    room = rid()
    declare(cal, room)
    start = monday_ahead() + timedelta(days=1, hours=6)
    unknown_uid = f"{uuid.uuid4()}@prison.example"
    cal.side.put_request(itip("REQUEST", unknown_uid, ["room-nowhere"], start))
    endless_uid = f"{uuid.uuid4()}@prison.example"
    cal.side.put_request(itip("REQUEST", endless_uid, [room], start, rrule="FREQ=DAILY"))
    cal.sync()
    # Unknown resource: no inbox message (not ours), a REPLY saying why.
    assert [i["message"]["uid"] for i in cal.inbox("booking_request")] == [endless_uid]
    refused = cal.http.get(cal.api("/bookings"), params={"status": "refused"}).json()
    codes = {b["uid"]: b["reason"]["code"] for b in refused}
    assert codes[unknown_uid] == "RESOURCE_UNKNOWN"
    assert codes[endless_uid] == "RRULE_UNBOUNDED"
    for b in refused:
        if b["uid"] in codes:
            cal.wait_delivered(b["id"])
    statuses = {
        uid: str(e.get("request-status"))[:3]
        for uid in (unknown_uid, endless_uid)
        for _, e in _answers(cal, uid)
    }
    assert statuses == {unknown_uid: "3.7", endless_uid: "3.1"}


def test_malformed_object_is_refused_journaled_and_not_retried(cal: CalLive) -> None:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//x//",
        "BEGIN:VEVENT",
        "UID:bad-1",
        "DTSTAMP:20270101T000000Z",
        "DTSTART;TZID=Nowhere/Land:20270301T100000",
        "DTEND;TZID=Nowhere/Land:20270301T110000",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    bad = "\r\n".join(lines).encode()
    cal.side.put_request(bad)
    polled = cal.sync()["polled"]
    assert polled["rejected"] == 1 and polled["removed"] == 1
    status = cal.http.get(cal.api("/status")).json()
    assert status["rejected"][0]["error_code"] == "ICAL_MALFORMED"
    from sqlalchemy import select

    from gateway.store.schema import journal

    with cal.live.runtime.store.db.connect() as conn:
        kept = conn.execute(
            select(journal.c.error_code).where(
                journal.c.partner == "calendar", journal.c.status == "rejected"
            )
        ).all()
    assert [r[0] for r in kept] == ["ICAL_MALFORMED"]
    again = cal.sync()["polled"]
    assert again["read"] == 0


def test_calendar_down_then_back_loses_nothing(cal: CalLive, radicale: Any) -> None:
    room = rid()
    declare(cal, room)
    start = monday_ahead() + timedelta(days=4, hours=5)
    uid = f"{uuid.uuid4()}@prison.example"
    cal.side.put_request(itip("REQUEST", uid, [room], start))
    cal.sync()
    booking_id = cal.inbox("booking_request")[0]["message"]["booking_id"]
    radicale.stop()
    try:
        down = cal.http.post(cal.api("/sync"))
        assert down.status_code == 503 and down.json()["error"]["code"] == "CALENDAR_UNAVAILABLE"
        # PLUS answers meanwhile: the answer waits in the outbox, retried with backoff.
        confirmed = cal.http.post(cal.api(f"/bookings/{booking_id}/confirm"), json={"sequence": 0})
        assert confirmed.status_code == 200
        import time

        deadline = time.monotonic() + 10
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            [row] = [
                r
                for r in cal.live.runtime.store.outbox.messages(partner="calendar", limit=None)
                if r["correlation_id"] == booking_id
            ]
            if row["attempts"] >= 1 and row["status"] == "pending":
                break
            time.sleep(0.05)
        assert row["status"] == "pending" and row["last_error_code"] == "CALENDAR_UNAVAILABLE"
    finally:
        radicale.start()
    cal.wait_delivered(booking_id)
    cal.sync()
    assert [m for m, _ in _answers(cal, uid)] == ["REPLY"]
    assert any(str(e.get("uid")) == uid for o in cal.side.objects(room) for e in o.walk("VEVENT"))


def test_412_on_etag_conflict_is_resolved_by_rewriting(cal: CalLive) -> None:
    """Someone changes our object between our listing and our write: 412, then ours wins."""
    room = rid()
    declare(cal, room, hours=False)
    start = monday_ahead() + timedelta(days=1)
    block = {
        "id": "b1",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
    }
    cal.http.put(cal.api(f"/resources/{room}/busy"), json={"blocks": [block]})
    cal.sync()
    sync = cal.live.runtime.calendar.sync
    client = sync.client
    href = client.object_href(room, "busy-b1.ics")
    original_list = client.list

    def list_then_someone_writes(name: str) -> Any:
        listed = original_list(name)
        if name == room:
            # Another writer on the calendar changes the object right after we listed it.
            cal.side.http.put(
                cal.side.base + href,
                content=itip("REQUEST", f"busy-{room}-b1@plus-gateway", [], start).replace(
                    b"METHOD:REQUEST\r\n", b""
                ),
                headers={"Content-Type": "text/calendar"},
            )
        return listed

    block["end"] = (start + timedelta(hours=2)).isoformat()
    cal.http.put(cal.api(f"/resources/{room}/busy"), json={"blocks": [block]})
    client.list = list_then_someone_writes  # type: ignore[method-assign]
    try:
        report = sync.publish([room])
    finally:
        client.list = original_list  # type: ignore[method-assign]
    assert report.conflicts == 1 and report.written == 1
    [obj] = cal.side.objects(room)
    event = obj.walk("VEVENT")[0]
    assert str(event.get("summary")) == "Busy"
    assert event.decoded("dtend") == start + timedelta(hours=2)


# -- personal data -------------------------------------------------------------------------


def test_nothing_published_or_answered_carries_personal_data(cal: CalLive) -> None:
    room = rid()
    declare(cal, room)
    start = monday_ahead() + timedelta(days=3, hours=2)
    uid = f"{uuid.uuid4()}@prison.example"
    cal.side.put_request(itip("REQUEST", uid, [room], start))
    cal.sync()
    booking_id = cal.inbox("booking_request")[0]["message"]["booking_id"]
    cal.http.post(cal.api(f"/bookings/{booking_id}/confirm"), json={"sequence": 0})
    cal.wait_delivered(booking_id)
    cal.sync()
    export = cal.http.get(
        cal.api("/freebusy"),
        params={"from": start.isoformat(), "to": (start + timedelta(days=7)).isoformat()},
    ).content
    published = b"".join(cal.side.raw_objects(room))
    answers = b"".join(cal.side.raw_objects(cal.side.replies))
    assert uid.encode() in published  # the booking is there ...
    for blob in (export, published, answers):
        text = blob.decode()
        for name in NAMES:  # ... but not who it is about
            assert name not in text and name.split()[1] not in text
        assert not re.search(r"\b\d{6}-\d{5}\b", text)
        assert "SUMMARY:Mediation" not in text and "DESCRIPTION" not in text
