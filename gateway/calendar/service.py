"""The calendar's business rules: resources, busy blocks, bookings and their answers.

PLUS declares resources and their busy blocks; they become occupancy (what a booking must not
overlap) at once, and calendar objects at the next publishing run
(:mod:`gateway.calendar.publish`). A booking request from the calendar side becomes a
``calendar_bookings`` row and an inbox message in one transaction; PLUS answers through the
local API, and the answer (an iTIP REPLY or COUNTER) goes to the durable outbox in the same
transaction as the new state. PLUS can also propose a meeting itself (REQUEST) and cancel it
(CANCEL). Every event keeps its UID; SEQUENCE orders the changes (RFC 5546).

Double booking: a confirmation locks the rows of its resources (PostgreSQL ``FOR UPDATE``;
SQLite serialises writers with BEGIN IMMEDIATE), checks occupancy and writes its own in that
transaction, so of two confirmations of one slot exactly one wins; the other gets SLOT_BUSY.

States of a booking::

    calendar REQUEST ─> requested ──confirm──> confirmed ──cancel/decline──> declined
                          │  │ └─counter──> countered ──(new REQUEST)──> requested
                          │  └─decline──> declined
                          └─(slot busy, bad rule, ...)──> refused
    calendar CANCEL  ─> cancelled (from any state)
    PLUS propose ─> proposed ──REPLY accepted──> confirmed; declined ──> declined
                        └──cancel──> cancelled (CANCEL sent)
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from icalendar import vRecur
from sqlalchemy import Connection

from gateway.calendar.errors import (
    PARTNER,
    BookingChangedError,
    BookingStateError,
    CalendarInputError,
    RecurrenceUnboundedError,
    SlotBusyError,
    UnknownBookingError,
    UnknownResourceError,
)
from gateway.calendar.ical import Attendee, ItipMessage, itip_object
from gateway.calendar.recurrence import Rule, expand, parse_rule
from gateway.calendar.timezones import aware, zone
from gateway.config import CalendarSettings
from gateway.errors import GatewayError
from gateway.logging import mask_text
from gateway.store import InboundRecord, OutboundRecord, Store
from gateway.store.chain import sha256_hex
from gateway.store.schema import utcnow

__all__ = ["BusyBlock", "CalendarService", "Slot", "WorkingHours"]

log = structlog.get_logger(__name__)

RESOURCE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
KINDS = ("room", "mediator", "officer")
#: iTIP REQUEST-STATUS codes of our answers (RFC 5546 3.6).
STATUS_OK = "2.0;Success"
STATUS_BUSY = "4.0;Event conflict. Date-time is busy."
STATUS_UNKNOWN_USER = "3.7;Invalid calendar user"
STATUS_INVALID = "3.1;Invalid property value"
#: Statuses whose slots are held.
HOLDING = ("confirmed", "proposed")


@dataclass(frozen=True)
class WorkingHours:
    """Opening hours on one weekday (0 = Monday), local time of the resource."""

    weekday: int
    opens: time
    closes: time


@dataclass(frozen=True)
class BusyBlock:
    """A busy block from PLUS: id, times (aware, or naive = local), optional RRULE."""

    id: str
    start: datetime
    end: datetime
    rrule: str | None = None


@dataclass(frozen=True)
class Slot:
    """A proposed time: start, end (aware, or naive = local) and an optional RRULE."""

    start: datetime
    end: datetime
    rrule: str | None = None


def rule_text(rule: Rule | None) -> str | None:
    """The RRULE value text of ``rule`` (as stored and published)."""
    if rule is None:
        return None
    return bytes(vRecur(rule.to_ical()).to_ical()).decode()


class CalendarService:
    """Resources, busy blocks and bookings over the store; answers go to the outbox."""

    def __init__(
        self,
        settings: CalendarSettings,
        store: Store,
        *,
        on_change: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.area = store.calendar
        self.default_tz = zone(settings.time_zone, path="calendar.time_zone")
        #: Called with the resource ids whose published calendars must change (wakes the loop).
        self.on_change = on_change or (lambda _ids: None)

    # -- helpers ---------------------------------------------------------------------------

    def address(self, resource_id: str) -> str:
        """The calendar user address of a resource (its ATTENDEE in requests)."""
        return f"{self.settings.resource_address_prefix}{resource_id}"

    def resource_of(self, address: str) -> str | None:
        """The resource id an address names, if it is one of ours."""
        prefix = self.settings.resource_address_prefix
        text = address.strip()
        if text.lower().startswith(prefix.lower()):
            return text[len(prefix) :]
        return None

    def horizon(self, now: datetime | None = None) -> datetime:
        """The end of the window recurrences are expanded to."""
        return (now or utcnow()) + timedelta(days=self.settings.horizon_days)

    def occurrences(
        self,
        start: datetime,
        end: datetime,
        rule: Rule | None,
        tz: ZoneInfo,
        *,
        exdates: frozenset[datetime] = frozenset(),
        now: datetime | None = None,
    ) -> list[tuple[datetime, datetime]]:
        """Occurrences of a (maybe recurring) interval up to the horizon, bounded."""
        if rule is None:
            return [(start, end)]
        local_start = start.astimezone(tz)
        duration = end.astimezone(tz).replace(tzinfo=None) - local_start.replace(tzinfo=None)
        return expand(
            rule,
            local_start,
            duration,
            tz=tz,
            window_end=self.horizon(now),
            max_occurrences=self.settings.max_occurrences,
            exdates=exdates,
        )

    def _tz(self, resource: dict[str, Any]) -> ZoneInfo:
        return zone(resource["time_zone"])

    # -- resources -------------------------------------------------------------------------

    def put_resource(
        self,
        resource_id: str,
        *,
        kind: str,
        label: str,
        location: str | None = None,
        time_zone: str | None = None,
        working_hours: Sequence[WorkingHours] = (),
        active: bool = True,
    ) -> tuple[dict[str, Any], bool]:
        """Declare or update a resource; returns it and whether anything changed."""
        if not RESOURCE_ID.fullmatch(resource_id):
            raise CalendarInputError(
                "a resource id is 1-64 lower-case letters, digits, '.', '_' or '-'", path="id"
            )
        if kind not in KINDS:
            raise CalendarInputError(f"kind must be one of {', '.join(KINDS)}", path="kind")
        for path, text in (("label", label), ("location", location or "")):
            # The label is published: a personal code in it would be published too.
            if mask_text(text) != text:
                raise CalendarInputError(
                    f"{path} looks like it holds a personal code; it is published", path=path
                )
        tz_name = time_zone or self.settings.time_zone
        zone(tz_name)
        hours = []
        for i, h in enumerate(working_hours):
            if not 0 <= h.weekday <= 6 or h.closes <= h.opens:
                raise CalendarInputError(
                    "working hours need a weekday 0-6 and closes after opens",
                    path=f"working_hours.{i}",
                )
            hours.append([h.weekday, h.opens.strftime("%H:%M"), h.closes.strftime("%H:%M")])
        values = dict(
            id=resource_id,
            kind=kind,
            label=label,
            location=location,
            time_zone=tz_name,
            working_hours=sorted(hours),
            active=active,
            updated_at=utcnow(),
        )
        with self.store.db.transaction() as conn:
            changed = self.area.upsert_resource_in(conn, values)
        if changed:
            self.on_change([resource_id])
        found = self.area.resource(resource_id)
        assert found is not None
        return found, changed

    def resource(self, resource_id: str) -> dict[str, Any]:
        """An active resource; UnknownResourceError otherwise."""
        found = self.area.resource(resource_id)
        if found is None or not found["active"]:
            raise UnknownResourceError(f"no resource {resource_id!r}", path="resource_id")
        return found

    def deactivate(self, resource_id: str) -> dict[str, Any]:
        """Withdraw a resource: no new bookings; its calendar is emptied at the next run."""
        found = self.resource(resource_id)
        hours = [
            WorkingHours(d, time.fromisoformat(o), time.fromisoformat(c))
            for d, o, c in found["working_hours"]
        ]
        out, _ = self.put_resource(
            resource_id,
            kind=found["kind"],
            label=found["label"],
            location=found["location"],
            time_zone=found["time_zone"],
            working_hours=hours,
            active=False,
        )
        return out

    # -- busy blocks -----------------------------------------------------------------------

    def replace_busy(self, resource_id: str, blocks: Sequence[BusyBlock]) -> dict[str, int]:
        """Make the busy blocks of a resource exactly ``blocks``; returns counts of changes.

        Each block is checked (times, zone, bounded recurrence) before anything is written;
        the set is replaced in one transaction, touching only blocks that changed.
        """
        resource = self.resource(resource_id)
        tz = self._tz(resource)
        now = utcnow()
        prepared: dict[str, tuple[dict[str, Any], list[tuple[datetime, datetime]]]] = {}
        for i, block in enumerate(blocks):
            if not RESOURCE_ID.fullmatch(block.id):
                raise CalendarInputError(
                    "a busy id is 1-64 letters, digits, '.', '_' or '-'", path=f"blocks.{i}.id"
                )
            if block.id in prepared:
                raise CalendarInputError(f"busy id {block.id!r} given twice", path=f"blocks.{i}.id")
            start = aware(block.start, tz, path=f"blocks.{i}.start")
            end = aware(block.end, tz, path=f"blocks.{i}.end")
            if end <= start:
                raise CalendarInputError("end is not after start", path=f"blocks.{i}.end")
            rule = parse_rule(block.rrule) if block.rrule else None
            try:
                spans = self.occurrences(start, end, rule, tz, now=now)
            except CalendarInputError as exc:
                exc.details = [{"path": f"blocks.{i}.rrule", "message": exc.message}]
                raise
            values = dict(
                resource_id=resource_id,
                busy_id=block.id,
                start=start.astimezone(UTC),
                end=end.astimezone(UTC),
                rrule=rule_text(rule),
            )
            prepared[block.id] = (values, spans)
        counts = {"added": 0, "changed": 0, "removed": 0, "unchanged": 0}
        with self.store.db.transaction() as conn:
            current = self.area.busy_in(conn, resource_id)
            for busy_id, (values, spans) in prepared.items():
                old = current.get(busy_id)
                if old is not None and all(old[k] == v for k, v in values.items()):
                    counts["unchanged"] += 1
                    continue
                counts["changed" if old else "added"] += 1
                self.area.put_busy_in(conn, dict(values, updated_at=now), exists=old is not None)
                self.area.occupy_in(
                    conn,
                    "busy",
                    f"{resource_id}/{busy_id}",
                    ((resource_id, s, e) for s, e in _recent(spans, now)),
                )
            for busy_id in set(current) - set(prepared):
                counts["removed"] += 1
                self.area.delete_busy_in(conn, resource_id, busy_id)
        if counts["added"] or counts["changed"] or counts["removed"]:
            self.on_change([resource_id])
        return counts

    def refresh_occupancy(self, now: datetime | None = None) -> int:
        """Re-expand recurring busy blocks up to the current horizon (the horizon moves on).

        Idempotent; run by every publishing run. Returns the number of blocks expanded.
        """
        now = now or utcnow()
        resources = {r["id"]: r for r in self.area.resources()}
        expanded = []
        for block in self.area.all_busy():
            resource = resources.get(block["resource_id"])
            if block["rrule"] is None or resource is None:
                continue
            tz = self._tz(resource)
            try:
                spans = self.occurrences(
                    block["start"], block["end"], parse_rule(block["rrule"]), tz, now=now
                )
            except GatewayError as exc:
                log.warning("busy block not re-expanded", code=exc.code, error=exc.message)
                continue
            expanded.append((block, _recent(spans, now)))
        # One transaction for all: a commit is a disk flush.
        with self.store.db.transaction() as conn:
            for block, spans in expanded:
                self.area.occupy_in(
                    conn,
                    "busy",
                    f"{block['resource_id']}/{block['busy_id']}",
                    ((block["resource_id"], s, e) for s, e in spans),
                )
        return len(expanded)

    # -- booking requests from the calendar side -------------------------------------------

    def receive(self, message: ItipMessage, raw: bytes, *, href: str, etag: str) -> dict[str, Any]:
        """Apply one iTIP message from the calendar side; returns what happened.

        Intake record, booking row, inbox message and any automatic answer commit as one. A
        message older than the booking (lower SEQUENCE) changes nothing.
        """
        with self.store.db.transaction() as conn:
            handler = {
                "REQUEST": self._on_request,
                "CANCEL": self._on_cancel,
                "REPLY": self._on_reply,
                "COUNTER": self._on_counter,
                "DECLINECOUNTER": self._on_counter,
            }[message.method]
            result = handler(conn, message, raw)
            self.area.record_intake_in(
                conn,
                href=href,
                etag=etag,
                status="processed",
                error_code=result.get("code"),
                message_id=result.get("message_id"),
            )
        if result.get("resources"):
            self.on_change(result["resources"])
        return result

    def _our_resources(self, conn: Connection, message: ItipMessage) -> tuple[list[str], list[str]]:
        """(known active resources, unknown ids) among the message's attendees."""
        named = []
        for attendee in message.attendees:
            found = self.resource_of(attendee.address)
            if found is not None:
                named.append(found)
        known = self.area.lock_resources_in(conn, named)
        return known, sorted(set(named) - set(known))

    def _on_request(self, conn: Connection, message: ItipMessage, raw: bytes) -> dict[str, Any]:
        assert message.start is not None and message.end is not None
        now = utcnow()
        existing = self.area.booking_by_uid(message.uid, conn)
        if existing is not None:
            if existing["origin"] != "calendar":
                return {"outcome": "ignored", "code": "BOOKING_NOT_THEIRS"}
            if message.sequence < existing["sequence"]:
                return {"outcome": "stale", "code": "SEQUENCE_OLD"}
        known, unknown = self._our_resources(conn, message)
        tz = self._tz(self.area.resource(known[0], conn) or {}) if known else self.default_tz
        refusal: tuple[str, str, str] | None = None
        spans: list[tuple[datetime, datetime]] = []
        if not known and not unknown:
            refusal = (
                "RESOURCE_UNKNOWN",
                "no VPD resource among the attendees",
                STATUS_UNKNOWN_USER,
            )
        elif unknown:
            refusal = ("RESOURCE_UNKNOWN", f"unknown resource {unknown[0]!r}", STATUS_UNKNOWN_USER)
        else:
            try:
                spans = self._booking_spans(
                    message.start, message.end, message.rule, tz, message.exdates, now
                )
                conflict = self._conflict(
                    conn, known, spans, ignore=existing["id"] if existing else None
                )
            except CalendarInputError as exc:
                refusal = (
                    exc.code,
                    exc.message,
                    f"{STATUS_INVALID};{exc.details[0]['path'] if exc.details else ''}",
                )
            else:
                if conflict:
                    refusal = ("SLOT_BUSY", conflict, STATUS_BUSY)
        booking_id = existing["id"] if existing else uuid.uuid4().hex
        status = "refused" if refusal else "requested"
        values = dict(
            id=booking_id,
            uid=message.uid,
            origin="calendar",
            status=status,
            sequence=message.sequence,
            start=message.start.astimezone(UTC),
            end=message.end.astimezone(UTC),
            time_zone=tz.key,
            rrule=rule_text(message.rule),
            organizer=message.organizer,
            resources=known,
            reason_code=refusal[0] if refusal else None,
            reason=refusal[1] if refusal else None,
            updated_at=now,
        )
        if existing is None:
            values["created_at"] = now
        # An update of a held booking must be agreed again: the old slot is free meanwhile.
        self.area.clear_occupancy_in(conn, "booking", booking_id)
        message_id = None
        if known:
            message_id = self._to_inbox(conn, "booking_request", message, raw, values, len(spans))
            values["inbox_message_id"] = message_id
        self.area.save_booking_in(conn, values, new=existing is None)
        if refusal:
            self._answer_in(
                conn,
                values,
                "REPLY",
                partstat="DECLINED",
                request_status=refusal[2],
                comment=refusal[1],
                resources=known or unknown,
            )
        log.info(
            "booking request",
            booking_id=booking_id,
            sequence=message.sequence,
            status=status,
            code=refusal[0] if refusal else None,
        )
        return {
            "outcome": status,
            "booking_id": booking_id,
            "code": refusal[0] if refusal else None,
            "message_id": message_id,
            "resources": known,
        }

    def _on_cancel(self, conn: Connection, message: ItipMessage, raw: bytes) -> dict[str, Any]:
        existing = self.area.booking_by_uid(message.uid, conn)
        if existing is None:
            return {"outcome": "ignored", "code": "BOOKING_UNKNOWN"}
        if message.sequence < existing["sequence"]:
            return {"outcome": "stale", "code": "SEQUENCE_OLD"}
        now = utcnow()
        self.area.lock_resources_in(conn, existing["resources"])
        self.area.clear_occupancy_in(conn, "booking", existing["id"])
        values = dict(existing, status="cancelled", sequence=message.sequence, updated_at=now)
        values["inbox_message_id"] = self._to_inbox(
            conn, "booking_cancelled", message, raw, values, 0
        )
        self.area.save_booking_in(conn, _changes(values), new=False)
        log.info("booking cancelled by the calendar side", booking_id=existing["id"])
        return {
            "outcome": "cancelled",
            "booking_id": existing["id"],
            "message_id": values["inbox_message_id"],
            "resources": existing["resources"],
        }

    def _on_reply(self, conn: Connection, message: ItipMessage, raw: bytes) -> dict[str, Any]:
        existing = self.area.booking_by_uid(message.uid, conn)
        if existing is None or existing["origin"] != "plus":
            return {"outcome": "ignored", "code": "BOOKING_UNKNOWN"}
        if message.sequence < existing["sequence"]:
            return {"outcome": "stale", "code": "SEQUENCE_OLD"}
        ours = {self.address(r).lower() for r in existing["resources"]}
        answers = [
            a.partstat for a in message.attendees if a.address.lower() not in ours and a.partstat
        ]
        status = existing["status"]
        if existing["status"] == "proposed" and answers:
            if all(a == "ACCEPTED" for a in answers):
                status = "confirmed"
            elif any(a == "DECLINED" for a in answers):
                status = "declined"
                self.area.clear_occupancy_in(conn, "booking", existing["id"])
        values = dict(existing, status=status, updated_at=utcnow())
        values["inbox_message_id"] = self._to_inbox(conn, "booking_reply", message, raw, values, 0)
        self.area.save_booking_in(conn, _changes(values), new=False)
        return {
            "outcome": status,
            "booking_id": existing["id"],
            "message_id": values["inbox_message_id"],
            "resources": existing["resources"],
        }

    def _on_counter(self, conn: Connection, message: ItipMessage, raw: bytes) -> dict[str, Any]:
        existing = self.area.booking_by_uid(message.uid, conn)
        if existing is None:
            return {"outcome": "ignored", "code": "BOOKING_UNKNOWN"}
        kind = "booking_counter" if message.method == "COUNTER" else "booking_declinecounter"
        values = dict(existing, updated_at=utcnow())
        if message.method == "DECLINECOUNTER" and existing["status"] == "countered":
            values["status"] = "requested"
        values["inbox_message_id"] = self._to_inbox(conn, kind, message, raw, values, 0)
        self.area.save_booking_in(conn, _changes(values), new=False)
        return {
            "outcome": values["status"],
            "booking_id": existing["id"],
            "message_id": values["inbox_message_id"],
        }

    def _to_inbox(
        self,
        conn: Connection,
        message_type: str,
        message: ItipMessage,
        raw: bytes,
        booking: dict[str, Any],
        occurrences: int,
    ) -> str:
        tz = zone(booking["time_zone"])
        ours = {self.address(r).lower() for r in booking["resources"]}
        canonical = {
            "booking_id": booking["id"],
            "uid": message.uid,
            "method": message.method,
            "sequence": message.sequence,
            "status": booking["status"],
            "resources": list(booking["resources"]),
            "start": message.start.astimezone(tz).isoformat() if message.start else None,
            "end": message.end.astimezone(tz).isoformat() if message.end else None,
            "time_zone": tz.key,
            "rrule": rule_text(message.rule),
            "occurrences": occurrences,
            "refusal": (
                {"code": booking["reason_code"], "message": booking["reason"]}
                if booking.get("reason_code") and booking["status"] == "refused"
                else None
            ),
            # Personal data, for PLUS only: the inbox is the one place it goes.
            "organizer": message.organizer,
            "attendees": [a.as_dict() for a in message.attendees if a.address.lower() not in ours],
            "summary": message.summary,
            "location": message.location,
            "description": message.description,
            "comment": message.comment,
        }
        # The same object read twice is one message: the id is its UID, SEQUENCE and DTSTAMP.
        key = hashlib.sha256(f"{message.uid}\n{message.stamp.isoformat()}".encode()).hexdigest()
        partner_message_id = f"{message.method}:{message.sequence}:{key[:40]}"
        message_id, _created = self.store.inbox.accept_in(
            conn,
            InboundRecord(
                message_id=uuid.uuid4().hex,
                partner=PARTNER,
                operation=message.method,
                message_type=message_type,
                partner_message_id=partner_message_id,
                correlation_id=booking["id"],
                canonical=canonical,
                payload=raw,
            ),
            at=utcnow(),
        )
        return message_id

    # -- answers from PLUS -----------------------------------------------------------------

    def booking(self, booking_id: str) -> dict[str, Any]:
        """One booking; UnknownBookingError if there is none."""
        found = self.area.booking(booking_id)
        if found is None:
            raise UnknownBookingError(f"no booking {booking_id!r}")
        return found

    def _locked_booking(self, conn: Connection, booking_id: str, sequence: int) -> dict[str, Any]:
        found = self.area.booking(booking_id, conn)
        if found is None:
            raise UnknownBookingError(f"no booking {booking_id!r}")
        self.area.lock_resources_in(conn, found["resources"])
        # Read again under the lock: another answer may have committed meanwhile.
        found = self.area.booking(booking_id, conn)
        assert found is not None
        if sequence != found["sequence"]:
            raise BookingChangedError(
                f"booking {booking_id} is at SEQUENCE {found['sequence']}, not {sequence}",
                details=[{"path": "sequence", "message": f"current: {found['sequence']}"}],
            )
        return found

    def confirm(self, booking_id: str, sequence: int, comment: str | None = None) -> dict[str, Any]:
        """Accept a request: hold the slot, send REPLY ACCEPTED. Idempotent when repeated."""
        with self.store.db.transaction() as conn:
            booking = self._locked_booking(conn, booking_id, sequence)
            if booking["status"] == "confirmed":
                return booking
            if booking["origin"] != "calendar" or booking["status"] not in (
                "requested",
                "countered",
            ):
                raise BookingStateError(f"a {booking['status']} booking cannot be confirmed")
            tz = zone(booking["time_zone"])
            spans = self._booking_spans(
                booking["start"], booking["end"], _rule(booking), tz, frozenset(), utcnow()
            )
            conflict = self._conflict(conn, booking["resources"], spans, ignore=booking_id)
            if conflict:
                raise SlotBusyError(conflict, details=[{"path": "", "message": conflict}])
            self._hold(conn, booking, spans)
            values = dict(
                booking, status="confirmed", reason_code=None, reason=None, updated_at=utcnow()
            )
            self.area.save_booking_in(conn, _changes(values), new=False)
            self._answer_in(
                conn,
                values,
                "REPLY",
                partstat="ACCEPTED",
                request_status=STATUS_OK,
                comment=comment,
            )
        self.on_change(booking["resources"])
        return self.booking(booking_id)

    def decline(self, booking_id: str, sequence: int, comment: str | None = None) -> dict[str, Any]:
        """Refuse a request, or withdraw a confirmation: REPLY DECLINED, the slot is free."""
        with self.store.db.transaction() as conn:
            booking = self._locked_booking(conn, booking_id, sequence)
            if booking["status"] == "declined":
                return booking
            if booking["origin"] != "calendar" or booking["status"] not in (
                "requested",
                "countered",
                "confirmed",
            ):
                raise BookingStateError(f"a {booking['status']} booking cannot be declined")
            self.area.clear_occupancy_in(conn, "booking", booking_id)
            values = dict(booking, status="declined", updated_at=utcnow())
            self.area.save_booking_in(conn, _changes(values), new=False)
            self._answer_in(
                conn,
                values,
                "REPLY",
                partstat="DECLINED",
                request_status=STATUS_OK,
                comment=comment,
            )
        self.on_change(booking["resources"])
        return self.booking(booking_id)

    def counter(
        self, booking_id: str, sequence: int, slot: Slot, comment: str | None = None
    ) -> dict[str, Any]:
        """Propose another slot (iTIP COUNTER); it must be free now, and is not held."""
        with self.store.db.transaction() as conn:
            booking = self._locked_booking(conn, booking_id, sequence)
            if booking["origin"] != "calendar" or booking["status"] not in (
                "requested",
                "countered",
                "refused",
            ):
                raise BookingStateError(f"a {booking['status']} booking cannot be countered")
            tz = zone(booking["time_zone"])
            start, end, rule = self._slot(slot, tz)
            spans = self._booking_spans(start, end, rule, tz, frozenset(), utcnow())
            conflict = self._conflict(conn, booking["resources"], spans, ignore=booking_id)
            if conflict:
                raise SlotBusyError(conflict, details=[{"path": "start", "message": conflict}])
            self.area.clear_occupancy_in(conn, "booking", booking_id)
            values = dict(booking, status="countered", updated_at=utcnow())
            self.area.save_booking_in(conn, _changes(values), new=False)
            self._answer_in(
                conn,
                values,
                "COUNTER",
                partstat="TENTATIVE",
                comment=comment,
                when=(start, end, rule),
            )
        self.on_change(booking["resources"])
        return self.booking(booking_id)

    def propose(
        self,
        resources: Sequence[str],
        slot: Slot,
        attendees: Sequence[str],
        *,
        summary: str | None = None,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """PLUS proposes a meeting (we organise): hold the slot, send REQUEST to ``attendees``."""
        if not resources:
            raise CalendarInputError("name at least one resource", path="resources")
        now = utcnow()
        booking_id = uuid.uuid4().hex
        with self.store.db.transaction() as conn:
            known = self.area.lock_resources_in(conn, resources)
            unknown = sorted(set(resources) - set(known))
            if unknown:
                raise UnknownResourceError(f"no resource {unknown[0]!r}", path="resources")
            resource = self.area.resource(known[0], conn)
            assert resource is not None
            tz = self._tz(resource)
            start, end, rule = self._slot(slot, tz)
            spans = self._booking_spans(start, end, rule, tz, frozenset(), now)
            conflict = self._conflict(conn, known, spans)
            if conflict:
                raise SlotBusyError(conflict, details=[{"path": "start", "message": conflict}])
            values = dict(
                id=booking_id,
                uid=f"{booking_id}@plus-gateway",
                origin="plus",
                status="proposed",
                sequence=0,
                start=start.astimezone(UTC),
                end=end.astimezone(UTC),
                time_zone=tz.key,
                rrule=rule_text(rule),
                organizer=self.settings.organizer,
                resources=known,
                created_at=now,
                updated_at=now,
            )
            self.area.save_booking_in(conn, values, new=True)
            self._hold(conn, values, spans)
            self._answer_in(
                conn,
                values,
                "REQUEST",
                comment=comment,
                when=(start, end, rule),
                guests=attendees,
                summary=summary,
            )
        self.on_change(known)
        return self.booking(booking_id)

    def cancel(self, booking_id: str, sequence: int, comment: str | None = None) -> dict[str, Any]:
        """Cancel: our own proposal gets a CANCEL; a confirmed request is declined (REPLY)."""
        booking = self.booking(booking_id)
        if booking["origin"] == "calendar":
            return self.decline(booking_id, sequence, comment)
        with self.store.db.transaction() as conn:
            booking = self._locked_booking(conn, booking_id, sequence)
            if booking["status"] == "cancelled":
                return booking
            self.area.clear_occupancy_in(conn, "booking", booking_id)
            values = dict(
                booking, status="cancelled", sequence=booking["sequence"] + 1, updated_at=utcnow()
            )
            self.area.save_booking_in(conn, _changes(values), new=False)
            self._answer_in(conn, values, "CANCEL", comment=comment)
        self.on_change(booking["resources"])
        return self.booking(booking_id)

    # -- shared ----------------------------------------------------------------------------

    def _slot(self, slot: Slot, tz: ZoneInfo) -> tuple[datetime, datetime, Rule | None]:
        start = aware(slot.start, tz, path="start")
        end = aware(slot.end, tz, path="end")
        if end <= start:
            raise CalendarInputError("end is not after start", path="end")
        return start, end, parse_rule(slot.rrule) if slot.rrule else None

    def _booking_spans(
        self,
        start: datetime,
        end: datetime,
        rule: Rule | None,
        tz: ZoneInfo,
        exdates: frozenset[datetime],
        now: datetime,
    ) -> list[tuple[datetime, datetime]]:
        """Occurrences of a meeting: a series must end, within the horizon and the cap."""
        if rule is not None and not rule.bounded:
            raise RecurrenceUnboundedError(
                "a recurring meeting must end: give COUNT or UNTIL", path="RRULE"
            )
        spans = self.occurrences(start, end, rule, tz, exdates=exdates, now=now)
        horizon = self.horizon(now)
        until = rule.until if rule is not None else None
        too_far = (
            rule is not None and rule.count is not None and len(spans) + len(exdates) < rule.count
        ) or (isinstance(until, datetime) and until.replace(tzinfo=until.tzinfo or tz) > horizon)
        if too_far or (spans and spans[-1][0] > horizon):
            raise RecurrenceUnboundedError(
                f"the meeting goes past the {self.settings.horizon_days}-day horizon", path="RRULE"
            )
        return spans

    def _conflict(
        self,
        conn: Connection,
        resources: Iterable[str],
        spans: Sequence[tuple[datetime, datetime]],
        *,
        ignore: str | None = None,
    ) -> str | None:
        """Why the slot is not free (no personal data), or None when it is."""
        for resource_id in resources:
            for start, end in spans:
                hit = self.area.overlapping_in(
                    conn,
                    resource_id,
                    start.astimezone(UTC),
                    end.astimezone(UTC),
                    ignore=("booking", ignore) if ignore else None,
                )
                if hit is not None:
                    what = "a busy block" if hit["source"] == "busy" else "another booking"
                    return (
                        f"resource {resource_id} is busy from {hit['start'].isoformat()} to "
                        f"{hit['end'].isoformat()} ({what})"
                    )
        return None

    def _hold(
        self, conn: Connection, booking: dict[str, Any], spans: Sequence[tuple[datetime, datetime]]
    ) -> None:
        self.area.occupy_in(
            conn,
            "booking",
            booking["id"],
            (
                (r, s.astimezone(UTC), e.astimezone(UTC))
                for r in booking["resources"]
                for s, e in spans
            ),
        )

    def _answer_in(
        self,
        conn: Connection,
        booking: dict[str, Any],
        method: str,
        *,
        partstat: str | None = None,
        request_status: str | None = None,
        comment: str | None = None,
        when: tuple[datetime, datetime, Rule | None] | None = None,
        guests: Sequence[str] = (),
        summary: str | None = None,
        resources: Sequence[str] | None = None,
    ) -> str:
        """An iTIP message about ``booking`` into the outbox, in the caller's transaction."""
        tz = zone(booking["time_zone"])
        kinds = {}
        for r in resources if resources is not None else booking["resources"]:
            found = self.area.resource(r, conn)
            kinds[r] = found["kind"] if found else None
        ours = [
            Attendee(
                address=self.address(r),
                # RFC 5545 calendar user types: a room is a ROOM, a mediator or officer a person.
                cutype="ROOM" if kinds.get(r) == "room" else "INDIVIDUAL",
                role="REQ-PARTICIPANT",
                partstat=partstat or "ACCEPTED",
            )
            for r in (resources if resources is not None else booking["resources"])
        ]
        guests_list = [
            Attendee(address=g, role="REQ-PARTICIPANT", partstat="NEEDS-ACTION") for g in guests
        ]
        if when is None:
            # iTIP lets a REPLY or CANCEL omit the times, but a calendar collection stores only
            # events with DTSTART (RFC 4791 4.1): carry the booking's.
            when = (booking["start"], booking["end"], _rule(booking))
        payload = itip_object(
            method=method,
            uid=booking["uid"],
            sequence=booking["sequence"],
            stamp=booking["updated_at"],
            organizer=booking["organizer"] or self.settings.organizer,
            attendees=[*ours, *guests_list],
            start=when[0] if when else None,
            end=when[1] if when else None,
            tz=tz,
            rule=when[2] if when else None,
            request_status=request_status,
            comment=comment,
            summary=summary,
        )
        message_id = uuid.uuid4().hex
        first = sorted(booking["resources"] or resources or ["-"])[0]
        self.store.outbox.accept_in(
            conn,
            OutboundRecord(
                message_id=message_id,
                partner=PARTNER,
                operation="PUT",
                message_type=f"calendar_{method.lower()}",
                payload=payload,
                # Answers about one resource leave in the order they were made.
                ordering_key=first,
                correlation_id=booking["id"],
                # Internal: one key per answer (PLUS's repeats are caught by the state machine).
                idempotency_key=f"calendar:{message_id}",
                request_sha256=sha256_hex(payload),
            ),
            at=utcnow(),
        )
        return message_id


def _rule(booking: dict[str, Any]) -> Rule | None:
    return parse_rule(booking["rrule"]) if booking.get("rrule") else None


def _recent(
    spans: Iterable[tuple[datetime, datetime]], now: datetime
) -> list[tuple[datetime, datetime]]:
    """Occurrences that still matter for bookings (ended less than a day ago, or later)."""
    cutoff = now - timedelta(days=1)
    return [(s.astimezone(UTC), e.astimezone(UTC)) for s, e in spans if e > cutoff]


def _changes(values: dict[str, Any]) -> dict[str, Any]:
    """The updatable columns of a booking dict."""
    keep = (
        "id",
        "status",
        "sequence",
        "start",
        "end",
        "rrule",
        "resources",
        "inbox_message_id",
        "reason_code",
        "reason",
        "updated_at",
    )
    return {k: values[k] for k in keep if k in values}
