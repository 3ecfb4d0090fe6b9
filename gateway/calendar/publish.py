"""Publishing availability, reading booking requests, delivering answers: one sync each.

:meth:`CalendarSync.publish` is one idempotent publishing run: for every resource it builds
the objects its calendar should hold (busy blocks, held bookings, closed hours) from the store,
compares their SHA-256 and the server's ETags with what it last wrote, and writes or deletes
only what differs, with ``If-Match`` / ``If-None-Match``. A 412 (someone changed the object
since we listed it) is answered by reading the new ETag and writing ours over it: PLUS is the
source of the availability. Progress is recorded object by object, so a run cut short by an
outage is finished by the next one, and objects changed or lost on the server meanwhile are
put back.

:meth:`CalendarSync.poll` reads the calendar side's ``requests`` collection and hands every
new or changed object to :class:`~gateway.calendar.service.CalendarService` (booking, inbox
message and automatic answer in one transaction), then deletes it there.

:class:`CalendarTransport` delivers our answers from the outbox (the delivery worker calls it
for partner ``calendar``). Publish and poll are each a plain function of one run, called by
the scheduled jobs ``calendar.publish`` and ``calendar.poll`` (schedules/calendar-*.yaml,
gateway/jobs/periodic.py), so each slot runs on one instance; :meth:`CalendarSync.
changed_resources` tells the poll job which resources a change touched since the last run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import structlog

from gateway.calendar.caldav import CalDAVClient, Remote
from gateway.calendar.errors import PARTNER, CalendarConflictError, CalendarInputError
from gateway.calendar.ical import busy_object, closed_hours, parse_itip, week_offset
from gateway.calendar.recurrence import parse_rule
from gateway.calendar.service import CalendarService
from gateway.calendar.timezones import zone
from gateway.config import RetrySettings
from gateway.errors import GatewayError
from gateway.logging import mask_text
from gateway.store.chain import sha256_hex
from gateway.store.rejections import journal_rejection
from gateway.store.schema import utcnow

#: Version of the objects we build: part of every fingerprint, so changing how objects are
#: built (bump it) republishes them all at the next run.
FORMAT = "1"

#: Our own answers carry aware times; the default zone of a floating one is irrelevant.
UTC_ZONE = zone("UTC")

__all__ = ["CalendarSync", "CalendarTransport", "PublishReport"]

log = structlog.get_logger(__name__)


@dataclass
class PublishReport:
    """What one publishing run did."""

    resources: int = 0
    written: int = 0
    deleted: int = 0
    unchanged: int = 0
    conflicts: int = 0
    collections_created: int = 0
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """For the API and the logs."""
        return dict(vars(self))


class CalendarSync:
    """Publishing runs and request polls against one CalDAV server."""

    def __init__(
        self,
        service: CalendarService,
        client: CalDAVClient,
        *,
        rejected_prefix_bytes: int = 4096,
        rejected_retention_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.service = service
        #: What a refused object keeps in the journal (``journal.rejected_*``).
        self._rejected = (rejected_prefix_bytes, rejected_retention_bytes)
        self.client = client
        self.settings = service.settings
        self.area = service.area
        self._lock = threading.Lock()
        self.last_publish: dict[str, Any] | None = None
        self._refreshed: date | None = None
        self.last_poll: dict[str, Any] | None = None

    # -- what a resource's calendar should hold --------------------------------------------

    def plan(self, resource: dict[str, Any]) -> dict[str, tuple[str, Callable[[], bytes]]]:
        """Object name -> (fingerprint, builder) for one resource, from the store alone.

        The fingerprint is the SHA-256 of everything the object is built from (and of
        :data:`FORMAT`), so a run tells an unchanged object without building it; building
        (icalendar, VTIMEZONE) is most of a run's CPU.
        """
        tz = zone(resource["time_zone"])
        rid = resource["id"]
        out: dict[str, tuple[str, Callable[[], bytes]]] = {}

        def add(name: str, **kwargs: Any) -> None:
            kwargs["tz"] = tz
            fingerprint = sha256_hex(f"{FORMAT}|{sorted(kwargs.items())!r}".encode())
            out[name] = (fingerprint, lambda: busy_object(**kwargs))

        for block in self.area.busy(rid):
            add(
                f"busy-{block['busy_id']}.ics",
                uid=f"busy-{rid}-{block['busy_id']}@plus-gateway",
                start=block["start"],
                end=block["end"],
                stamp=block["updated_at"],
                rule=parse_rule(block["rrule"]) if block["rrule"] else None,
            )
        for booking in self.area.bookings(resource_id=rid, limit=100_000):
            if booking["status"] not in ("confirmed", "proposed"):
                continue
            add(
                f"booking-{booking['id']}.ics",
                uid=booking["uid"],
                start=booking["start"],
                end=booking["end"],
                stamp=booking["updated_at"],
                sequence=booking["sequence"],
                rule=parse_rule(booking["rrule"]) if booking["rrule"] else None,
                confirmed=booking["status"] == "confirmed",
            )
        hours = [
            (d, time.fromisoformat(o), time.fromisoformat(c))
            for d, o, c in resource["working_hours"]
        ]
        # Anchored on the week the hours were last set, so the objects do not change by
        # themselves as time passes.
        updated = resource["updated_at"].astimezone(tz).date()
        monday = updated - timedelta(days=updated.weekday())
        for i, (day, closes, next_day, opens) in enumerate(closed_hours(hours)):
            start = datetime.combine(monday + timedelta(days=day), closes)
            end = start + week_offset(day, closes, next_day, opens)
            add(
                f"hours-{i}.ics",
                uid=f"hours-{rid}-{i}@plus-gateway",
                start=start.replace(tzinfo=tz),
                end=end.replace(tzinfo=tz),
                stamp=resource["updated_at"],
                rule=parse_rule("FREQ=WEEKLY"),
                summary="Unavailable",
            )
        return out

    def changed_resources(self) -> list[str]:
        """Resources whose objects, as the store builds them, differ from what was published.

        From the store alone (fingerprints, nothing built or fetched): a booking or busy block
        changed on any instance shows here, so the poll job publishes it within a minute
        without waiting for the full run.
        """
        active = {r["id"]: r for r in self.area.resources()}
        changed = []
        for rid in sorted(set(active) | set(self.area.published_resources())):
            resource = active.get(rid)
            desired = (
                {name: digest for name, (digest, _) in self.plan(resource).items()}
                if resource is not None
                else {}
            )
            published = {name: row["sha256"] for name, row in self.area.published(rid).items()}
            if desired != published:
                changed.append(rid)
        return changed

    def desired(self, resource: dict[str, Any]) -> dict[str, bytes]:
        """Object name -> bytes for one resource (what :meth:`plan` builds)."""
        return {name: build() for name, (_, build) in self.plan(resource).items()}

    # -- publishing ------------------------------------------------------------------------

    def publish(self, resource_ids: Sequence[str] | None = None) -> PublishReport:
        """One idempotent publishing run (all resources, or only ``resource_ids``).

        Raises CalendarUnavailableError when the server cannot be reached at all; a resource
        whose objects fail is named in ``failed`` and the run goes on with the others.
        """
        with self._lock:
            report = PublishReport()
            # The horizon moves by a day a day: re-expanding recurring blocks more often than
            # that changes nothing.
            today = utcnow().date()
            if self._refreshed != today:
                self.service.refresh_occupancy()
                self._refreshed = today
            active = {r["id"]: r for r in self.area.resources()}
            wanted = set(resource_ids) if resource_ids is not None else None
            # Withdrawn resources still holding objects: empty their calendars.
            names = sorted(set(active) | set(self.area.published_resources()))
            for rid in names:
                if wanted is not None and rid not in wanted:
                    continue
                resource = active.get(rid)
                try:
                    self._publish_one(rid, resource, report)
                except GatewayError as exc:
                    if exc.retryable and not report.resources and not report.written:
                        raise  # nothing reached the server: the whole run failed
                    report.failed.append(rid)
                    log.warning(
                        "resource not published", resource=rid, code=exc.code, error=exc.message
                    )
                report.resources += 1
            self.last_publish = {"at": utcnow().isoformat(), **report.as_dict()}
            log.info("availability published", **report.as_dict())
            return report

    def _publish_one(
        self, rid: str, resource: dict[str, Any] | None, report: PublishReport
    ) -> None:
        desired = self.plan(resource) if resource is not None else {}
        published = self.area.published(rid)
        # One PROPFIND per resource and run: the listing also tells a missing collection
        # (first run, or lost on the server), which is then created.
        listed = self.client.list(rid)
        missing = listed is None and resource is not None
        if missing and resource and self.client.ensure_collection(rid, resource["label"]):
            report.collections_created += 1
        remote = listed or {}
        written: list[tuple[str, str, str | None]] = []
        try:
            for name, (digest, build) in desired.items():
                seen = published.get(name)
                there = remote.get(name)
                if seen and there and seen["sha256"] == digest and seen["etag"] == there.etag:
                    report.unchanged += 1
                    continue
                href = there.href if there else self.client.object_href(rid, name)
                written.append((name, digest, self._write(href, build(), there, report)))
                report.written += 1
        finally:
            # Recorded per resource, also when the run breaks off: an object written but not
            # recorded (a crash in between) is only written again by the next run.
            self.area.mark_published_many(rid, written)
        for name in sorted(set(remote) - set(desired)):
            self._remove(remote[name], report)
            report.deleted += 1
        for name in set(published) - set(desired):
            self.area.forget_published(rid, name)

    def _write(self, href: str, body: bytes, there: Remote | None, report: PublishReport) -> str:
        try:
            if there is None:
                return self.client.put(href, body, create=True)
            return self.client.put(href, body, etag=there.etag)
        except CalendarConflictError:
            # Changed (or created) on the server since we listed it: ours wins, over the
            # version that is there now.
            report.conflicts += 1
            current = self.client.etag(href)
            if current is None:
                return self.client.put(href, body, create=True)
            return self.client.put(href, body, etag=current)

    def _remove(self, there: Remote, report: PublishReport) -> None:
        try:
            self.client.delete(there.href, etag=there.etag)
        except CalendarConflictError:
            report.conflicts += 1
            self.client.delete(there.href, etag=self.client.etag(there.href))

    # -- requests from the calendar side ---------------------------------------------------

    def poll(self) -> dict[str, int]:
        """Read new objects from ``requests`` into bookings and the inbox (idempotent)."""
        with self._lock:
            counts = {"read": 0, "processed": 0, "rejected": 0, "removed": 0}
            name = self.settings.requests_collection
            self.client.ensure_collection(name, "Booking requests")
            self.client.ensure_collection(self.settings.replies_collection, "Answers")
            seen = self.area.intake_etags()
            fresh = []
            for remote in (self.client.list(name) or {}).values():
                if seen.get(remote.href) == remote.etag:
                    # Handled before; only its removal was lost (an outage). Finish it.
                    if self.settings.consume_requests:
                        self._consume(remote, counts)
                    continue
                raw, etag = self.client.get(remote.href)
                fresh.append((remote.href, etag or remote.etag, raw))
            counts["read"] = len(fresh)
            parsed = []
            for href, etag, raw in fresh:
                try:
                    message = parse_itip(
                        raw, default_tz=self.service.default_tz, max_bytes=self.settings.max_bytes
                    )
                except CalendarInputError as exc:
                    self._reject(href, etag, raw, exc)
                    counts["rejected"] += 1
                    if self.settings.consume_requests:
                        self._consume(Remote(href, etag), counts)
                    continue
                parsed.append((href, etag, raw, message))
            # iTIP order: a later SEQUENCE (and, within one, a later DTSTAMP) applies after.
            parsed.sort(key=lambda item: (item[3].uid, item[3].sequence, item[3].stamp))
            for href, etag, raw, message in parsed:
                self.service.receive(message, raw, href=href, etag=etag)
                counts["processed"] += 1
                if self.settings.consume_requests:
                    self._consume(Remote(href, etag), counts)
            self.last_poll = {"at": utcnow().isoformat(), **counts}
            return counts

    def _consume(self, remote: Remote, counts: dict[str, int]) -> None:
        try:
            if self.client.delete(remote.href, etag=remote.etag):
                counts["removed"] += 1
        except CalendarConflictError:
            pass  # a newer version arrived meanwhile: the next poll reads it

    def _reject(self, href: str, etag: str, raw: bytes, exc: GatewayError) -> None:
        """A request we cannot read: journaled (bounded), remembered, never retried as is."""
        store = self.service.store
        limits = self._rejected
        journal_rejection(
            store,
            raw=raw,
            prefix_bytes=limits[0],
            retention_bytes=limits[1],
            direction="in",
            partner=PARTNER,
            operation="REQUEST",
            error_code=exc.code,
            detail=mask_text(exc.message)[:2000],
        )
        with store.db.transaction() as conn:
            self.area.record_intake_in(
                conn, href=href, etag=etag, status="rejected", error_code=exc.code
            )
        log.warning("calendar object refused", code=exc.code, error=exc.message)


class CalendarTransport:
    """Delivers outbox rows of partner ``calendar``: PUT into the ``replies`` collection.

    A calendar collection holds one object per UID (RFC 4791 4.1; Radicale answers 409 to a
    second one), so our answers about one event share one object, named after its UID: each
    answer replaces the one before, and the organizer reads the latest (its SEQUENCE and
    DTSTAMP say which). Answers about one resource leave the outbox in order, so a later one
    is never overwritten by an earlier. A resend after a lost response writes the same bytes.
    """

    def __init__(self, client: CalDAVClient, retry: RetrySettings) -> None:
        self.client = client
        self.retry = retry
        self.timeouts = (client.settings.connect_timeout, client.settings.timeout)

    def deliver(self, row: dict[str, Any]) -> dict[str, Any]:
        """Write one answer; returns the acknowledgement recorded in the outbox."""
        collection = self.client.settings.replies_collection
        self.client.ensure_collection(collection, "Answers")
        uid = parse_itip(row["payload"], default_tz=UTC_ZONE, max_bytes=len(row["payload"]) + 1).uid
        href = self.client.object_href(collection, f"{sha256_hex(uid.encode())[:32]}.ics")
        etag = self.client.put(href, row["payload"])
        return {"href": href, "etag": etag, "at": datetime.now(UTC).isoformat()}
