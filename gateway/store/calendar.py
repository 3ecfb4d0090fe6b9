"""The calendar area: VPD's resources, their busy blocks, bookings, what is published, intake.

=======================  ==========================================================================
``calendar_resources``   resources PLUS declares (rooms, mediators, officers' slots): public label,
                         zone, working hours
``calendar_busy``        PLUS's busy blocks per resource (maybe recurring), replaced as a set
``calendar_bookings``    one row per meeting (iCalendar UID): who started it, state, SEQUENCE,
                         time, resources; never the summary or the parties (those go to the inbox)
``calendar_occupancy``   every busy interval per resource (busy blocks and held bookings,
                         recurrences expanded to the horizon): what a new booking must not overlap
``calendar_published``   per resource calendar object: the fingerprint (SHA-256) of what we last
                         wrote and its ETag, so a publishing run writes only what changed
``calendar_intake``      objects read from the calendar side's request collection (href, ETag)
=======================  ==========================================================================

Methods ending in ``_in`` join the caller's transaction (:meth:`gateway.store.db.Database.
transaction`), so a booking, its inbox message and its answers in the outbox commit as one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    insert,
    select,
    update,
)

from gateway.store.db import Database
from gateway.store.schema import UTCDateTime, metadata, utcnow

__all__ = [
    "CalendarStore",
    "calendar_bookings",
    "calendar_busy",
    "calendar_intake",
    "calendar_occupancy",
    "calendar_published",
    "calendar_resources",
]

_Id = BigInteger().with_variant(Integer(), "sqlite")

calendar_resources = Table(
    "calendar_resources",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # room | mediator | officer
    # Public: what the unified calendar shows. Never a client's or party's name.
    Column("label", String(200), nullable=False),
    Column("location", String(200), nullable=True),
    Column("time_zone", String(64), nullable=False),
    Column("working_hours", Text, nullable=False),  # JSON [[weekday, "HH:MM", "HH:MM"], ...]
    Column("active", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

calendar_busy = Table(
    "calendar_busy",
    metadata,
    Column("resource_id", String(64), primary_key=True),
    Column("busy_id", String(64), primary_key=True),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("rrule", String(500), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

calendar_bookings = Table(
    "calendar_bookings",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("uid", String(255), nullable=False, unique=True),
    Column("origin", String(16), nullable=False),  # calendar | plus
    # requested | confirmed | declined | countered | cancelled | refused | proposed
    Column("status", String(16), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("rrule", String(500), nullable=True),
    # The calendar user address answers go to (an institution's, not a party's).
    Column("organizer", String(255), nullable=True),
    Column("resources", Text, nullable=False),  # JSON list of resource ids
    Column("inbox_message_id", String(64), nullable=True),
    Column("reason_code", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_calendar_bookings_status", "status"),
)

calendar_occupancy = Table(
    "calendar_occupancy",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("resource_id", String(64), nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("source", String(8), nullable=False),  # busy | booking
    Column("source_id", String(128), nullable=False),
    Index("ix_calendar_occupancy_resource_id_start", "resource_id", "start"),
    Index("ix_calendar_occupancy_source_source_id", "source", "source_id"),
)

calendar_published = Table(
    "calendar_published",
    metadata,
    Column("resource_id", String(64), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("etag", String(200), nullable=True),
    Column("published_at", UTCDateTime, nullable=False),
)

calendar_intake = Table(
    "calendar_intake",
    metadata,
    Column("href", String(500), primary_key=True),
    Column("etag", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # processed | rejected
    Column("error_code", String(64), nullable=True),
    Column("message_id", String(64), nullable=True),
    Column("seen_at", UTCDateTime, nullable=False),
)


def _dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


class CalendarStore:
    """Statements of the calendar area over the shared :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- resources -------------------------------------------------------------------------

    def resource(self, resource_id: str, conn: Connection | None = None) -> dict[str, Any] | None:
        """One resource row (active or not), or None."""
        query = select(calendar_resources).where(calendar_resources.c.id == resource_id)
        if conn is not None:
            row = conn.execute(query).first()
        else:
            with self.db.connect() as c:
                row = c.execute(query).first()
        return _resource(row) if row else None

    def resources(self, *, active_only: bool = True) -> list[dict[str, Any]]:
        """Every resource, by id."""
        query = select(calendar_resources).order_by(calendar_resources.c.id)
        if active_only:
            query = query.where(calendar_resources.c.active.is_(True))
        with self.db.connect() as conn:
            return [_resource(r) for r in conn.execute(query)]

    def lock_resources_in(self, conn: Connection, resource_ids: Sequence[str]) -> list[str]:
        """Lock the rows of ``resource_ids`` (in id order, so two lockers never deadlock).

        On PostgreSQL this serialises bookings of the same resource across instances; SQLite's
        BEGIN IMMEDIATE already serialises every writer. Returns the active ones found.
        """
        query = (
            select(calendar_resources.c.id)
            .where(
                calendar_resources.c.id.in_(sorted(set(resource_ids))),
                calendar_resources.c.active.is_(True),
            )
            .order_by(calendar_resources.c.id)
        )
        if self.db.postgres:
            query = query.with_for_update()
        return [str(r) for r in conn.execute(query).scalars()]

    def upsert_resource_in(self, conn: Connection, values: dict[str, Any]) -> bool:
        """Insert or update a resource; False when nothing changed."""
        stored = dict(values, working_hours=json.dumps(values["working_hours"]))
        current = conn.execute(
            select(calendar_resources).where(calendar_resources.c.id == values["id"])
        ).first()
        if current is not None:
            same = all(current._mapping[k] == v for k, v in stored.items() if k != "updated_at")
            if same:
                return False
            conn.execute(
                update(calendar_resources)
                .where(calendar_resources.c.id == values["id"])
                .values(**stored)
            )
            return True
        conn.execute(insert(calendar_resources).values(**stored))
        return True

    # -- busy blocks -----------------------------------------------------------------------

    def busy(self, resource_id: str) -> list[dict[str, Any]]:
        """The busy blocks of a resource, by id."""
        query = (
            select(calendar_busy)
            .where(calendar_busy.c.resource_id == resource_id)
            .order_by(calendar_busy.c.busy_id)
        )
        with self.db.connect() as conn:
            return [_dict(r) for r in conn.execute(query)]

    def all_busy(self) -> list[dict[str, Any]]:
        """Every busy block of every resource."""
        with self.db.connect() as conn:
            return [_dict(r) for r in conn.execute(select(calendar_busy))]

    def busy_in(self, conn: Connection, resource_id: str) -> dict[str, dict[str, Any]]:
        """The busy blocks of a resource by busy id, inside the caller's transaction."""
        rows = conn.execute(select(calendar_busy).where(calendar_busy.c.resource_id == resource_id))
        return {str(r.busy_id): _dict(r) for r in rows}

    def put_busy_in(self, conn: Connection, values: dict[str, Any], *, exists: bool) -> None:
        """Insert or replace one busy block."""
        if exists:
            conn.execute(
                update(calendar_busy)
                .where(
                    calendar_busy.c.resource_id == values["resource_id"],
                    calendar_busy.c.busy_id == values["busy_id"],
                )
                .values(**values)
            )
        else:
            conn.execute(insert(calendar_busy).values(**values))

    def delete_busy_in(self, conn: Connection, resource_id: str, busy_id: str) -> None:
        """Remove one busy block and its occupancy."""
        conn.execute(
            delete(calendar_busy).where(
                calendar_busy.c.resource_id == resource_id, calendar_busy.c.busy_id == busy_id
            )
        )
        self.clear_occupancy_in(conn, "busy", f"{resource_id}/{busy_id}")

    # -- occupancy -------------------------------------------------------------------------

    def clear_occupancy_in(self, conn: Connection, source: str, source_id: str) -> None:
        """Forget the intervals one busy block or booking held."""
        conn.execute(
            delete(calendar_occupancy).where(
                calendar_occupancy.c.source == source,
                calendar_occupancy.c.source_id == source_id,
            )
        )

    def occupy_in(
        self,
        conn: Connection,
        source: str,
        source_id: str,
        intervals: Iterable[tuple[str, datetime, datetime]],
    ) -> None:
        """Replace the intervals ``(resource_id, start, end)`` held by one source."""
        self.clear_occupancy_in(conn, source, source_id)
        rows = [
            dict(resource_id=r, start=s, end=e, source=source, source_id=source_id)
            for r, s, e in intervals
        ]
        if rows:
            conn.execute(insert(calendar_occupancy), rows)

    def overlapping_in(
        self,
        conn: Connection,
        resource_id: str,
        start: datetime,
        end: datetime,
        *,
        ignore: tuple[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """The first interval of ``resource_id`` overlapping ``[start, end)``, if any."""
        query = (
            select(calendar_occupancy)
            .where(
                calendar_occupancy.c.resource_id == resource_id,
                calendar_occupancy.c.start < end,
                calendar_occupancy.c.end > start,
            )
            .order_by(calendar_occupancy.c.start)
            .limit(1)
        )
        if ignore is not None:
            query = query.where(
                ~and_(
                    calendar_occupancy.c.source == ignore[0],
                    calendar_occupancy.c.source_id == ignore[1],
                )
            )
        row = conn.execute(query).first()
        return _dict(row) if row else None

    def occupancy(self, resource_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Intervals of ``resource_id`` overlapping ``[start, end)``, by start."""
        query = (
            select(calendar_occupancy)
            .where(
                calendar_occupancy.c.resource_id == resource_id,
                calendar_occupancy.c.start < end,
                calendar_occupancy.c.end > start,
            )
            .order_by(calendar_occupancy.c.start)
        )
        with self.db.connect() as conn:
            return [_dict(r) for r in conn.execute(query)]

    # -- bookings --------------------------------------------------------------------------

    def booking(self, booking_id: str, conn: Connection | None = None) -> dict[str, Any] | None:
        """One booking by its id."""
        return self._booking(calendar_bookings.c.id == booking_id, conn)

    def booking_by_uid(self, uid: str, conn: Connection | None = None) -> dict[str, Any] | None:
        """One booking by its iCalendar UID."""
        return self._booking(calendar_bookings.c.uid == uid, conn)

    def _booking(self, where: Any, conn: Connection | None) -> dict[str, Any] | None:
        query = select(calendar_bookings).where(where)
        if conn is not None:
            row = conn.execute(query).first()
        else:
            with self.db.connect() as c:
                row = c.execute(query).first()
        return _booking(row) if row else None

    def bookings(
        self, *, status: str | None = None, resource_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Bookings, newest change first, filtered."""
        query = select(calendar_bookings).order_by(calendar_bookings.c.updated_at.desc())
        if status:
            query = query.where(calendar_bookings.c.status == status)
        if resource_id:
            # Resources are a JSON list; the quoted id cannot match a longer id by accident.
            query = query.where(calendar_bookings.c.resources.contains(json.dumps(resource_id)))
        with self.db.connect() as conn:
            return [_booking(r) for r in conn.execute(query.limit(limit))]

    def held_bookings(self) -> list[dict[str, Any]]:
        """Bookings that hold their slots (confirmed, or proposed by PLUS)."""
        query = select(calendar_bookings).where(
            calendar_bookings.c.status.in_(("confirmed", "proposed"))
        )
        with self.db.connect() as conn:
            return [_booking(r) for r in conn.execute(query)]

    def save_booking_in(self, conn: Connection, values: dict[str, Any], *, new: bool) -> None:
        """Insert or update a booking row."""
        stored = dict(values)
        if "resources" in stored:
            stored["resources"] = json.dumps(sorted(stored["resources"]))
        if new:
            conn.execute(insert(calendar_bookings).values(**stored))
        else:
            conn.execute(
                update(calendar_bookings)
                .where(calendar_bookings.c.id == stored.pop("id"))
                .values(**stored)
            )

    # -- publishing ------------------------------------------------------------------------

    def published(self, resource_id: str) -> dict[str, dict[str, Any]]:
        """What we last wrote to one resource's calendar, by object name."""
        query = select(calendar_published).where(calendar_published.c.resource_id == resource_id)
        with self.db.connect() as conn:
            return {str(r.name): _dict(r) for r in conn.execute(query)}

    def published_resources(self) -> list[str]:
        """Resources that have objects on the calendar."""
        query = select(calendar_published.c.resource_id).distinct()
        with self.db.connect() as conn:
            return sorted(str(r) for r in conn.execute(query).scalars())

    def mark_published(self, resource_id: str, name: str, sha256: str, etag: str | None) -> None:
        """Record what was written to one object."""
        self.mark_published_many(resource_id, [(name, sha256, etag)])

    def mark_published_many(
        self, resource_id: str, written: Sequence[tuple[str, str, str | None]]
    ) -> None:
        """Record ``(name, sha256, etag)`` of objects written, in one transaction."""
        if not written:
            return
        now = utcnow()
        with self.db.transaction() as conn:
            conn.execute(
                delete(calendar_published).where(
                    calendar_published.c.resource_id == resource_id,
                    calendar_published.c.name.in_([n for n, _, _ in written]),
                )
            )
            conn.execute(
                insert(calendar_published),
                [
                    dict(resource_id=resource_id, name=n, sha256=h, etag=e, published_at=now)
                    for n, h, e in written
                ],
            )

    def forget_published(self, resource_id: str, name: str) -> None:
        """The object is gone from the calendar."""
        with self.db.transaction() as conn:
            conn.execute(
                delete(calendar_published).where(
                    calendar_published.c.resource_id == resource_id,
                    calendar_published.c.name == name,
                )
            )

    # -- intake ----------------------------------------------------------------------------

    def intake_etags(self) -> dict[str, str]:
        """ETag of every object already read from the request collection, by href."""
        with self.db.connect() as conn:
            rows = conn.execute(select(calendar_intake.c.href, calendar_intake.c.etag))
            return {str(h): str(e) for h, e in rows}

    def record_intake_in(
        self,
        conn: Connection,
        *,
        href: str,
        etag: str,
        status: str,
        error_code: str | None = None,
        message_id: str | None = None,
    ) -> None:
        """Remember that the object at ``href`` with ``etag`` was handled."""
        conn.execute(delete(calendar_intake).where(calendar_intake.c.href == href))
        conn.execute(
            insert(calendar_intake).values(
                href=href,
                etag=etag,
                status=status,
                error_code=error_code,
                message_id=message_id,
                seen_at=utcnow(),
            )
        )

    def intake(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Objects read from the request collection, latest first."""
        query = select(calendar_intake).order_by(calendar_intake.c.seen_at.desc()).limit(limit)
        if status:
            query = query.where(calendar_intake.c.status == status)
        with self.db.connect() as conn:
            return [_dict(r) for r in conn.execute(query)]


def _resource(row: Any) -> dict[str, Any]:
    out = _dict(row)
    out["working_hours"] = json.loads(out["working_hours"])
    return out


def _booking(row: Any) -> dict[str, Any]:
    out = _dict(row)
    out["resources"] = json.loads(out["resources"])
    return out
