"""The e-services area: requests waiting for PLUS, the parties PLUS registers, assignments.

Three tables (migration ``0009_eservices``):

``eservice_requests``     one row per portal request or submission (the inbox row is written
                          in the same transaction): who asked (audience, keyed party), its
                          status ``pending`` -> ``answered``, when the portal was told it waits
                          (``pending_sent_at``), the answer and the DVS notification sent
``eservice_parties``      employers, municipalities and VPD volunteers as PLUS registers them:
                          legal form, the state or municipal share (ES-09), volunteer kind
``eservice_assignments``  which clients each party may see (ES-08): from PLUS's register and
                          from every work assignment (OUT-09) or volunteer task (ES-34) sent

A party is keyed ``org:<registration number>`` or ``vol:<keyed pseudonym>``: a volunteer's
personal code is never a key. The request row keeps the notification's recipient code (the
e-address owner) because DVS needs it; it is purged with the request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    delete,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.db import Database
from gateway.store.schema import UTCDateTime, metadata, utcnow

__all__ = [
    "EServiceRequestRow",
    "EServiceStore",
    "Party",
    "eservice_assignments",
    "eservice_parties",
    "eservice_requests",
]

eservice_requests = Table(
    "eservice_requests",
    metadata,
    Column("request_id", String(64), primary_key=True),  # the portal's MessageId
    Column("message_id", String(64), nullable=False),  # the inbox message
    Column("eservice", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # request | submission
    Column("audience", String(16), nullable=False),
    Column("volunteer_kind", String(32), nullable=True),
    Column("party_key", String(80), nullable=True),
    Column("client_key", String(64), nullable=True),  # usage pseudonym of a client
    Column("recipient_code", String(16), nullable=False),  # the e-address owner (DVS)
    Column("minor", Boolean, nullable=False, default=False),
    Column("form", String(64), nullable=True),
    Column("form_version", String(16), nullable=True),
    Column("status", String(16), nullable=False),  # pending | answered
    Column("received_at", UTCDateTime, nullable=False),
    Column("pending_sent_at", UTCDateTime, nullable=True),
    Column("pending_message_id", String(64), nullable=True),
    Column("answered_at", UTCDateTime, nullable=True),
    Column("answer_message_id", String(64), nullable=True),
    Column("answer_key", String(200), nullable=True),
    Column("notification_message_id", String(64), nullable=True),
    UniqueConstraint("message_id", name="uq_eservice_requests_message_id"),
    Index("ix_eservice_requests_status", "status", "received_at"),
)

eservice_parties = Table(
    "eservice_parties",
    metadata,
    Column("party_key", String(80), primary_key=True),
    Column("kind", String(16), nullable=False),  # employer | municipality | volunteer
    Column("legal_form", String(40), nullable=True),
    Column("state_share_percent", Float, nullable=True),
    Column("volunteer_kind", String(32), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

eservice_assignments = Table(
    "eservice_assignments",
    metadata,
    Column("party_key", String(80), nullable=False),
    Column("client_id", String(40), nullable=False),
    Column("source", String(32), nullable=False),  # register | work_assignment | volunteer_task
    Column("assigned_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("party_key", "client_id", name="pk_eservice_assignments"),
)


@dataclass(frozen=True)
class Party:
    """An employer, municipality or volunteer as PLUS registered it."""

    party_key: str
    kind: str
    legal_form: str | None
    state_share_percent: float | None
    volunteer_kind: str | None


@dataclass(frozen=True)
class EServiceRequestRow:
    """A stored request (the columns of ``eservice_requests``)."""

    request_id: str
    message_id: str
    eservice: str
    kind: str
    audience: str
    volunteer_kind: str | None
    party_key: str | None
    client_key: str | None
    recipient_code: str
    minor: bool
    form: str | None
    form_version: str | None
    status: str
    received_at: datetime
    pending_sent_at: datetime | None
    pending_message_id: str | None
    answered_at: datetime | None
    answer_message_id: str | None
    answer_key: str | None
    notification_message_id: str | None

    def __repr__(self) -> str:
        return f"EServiceRequestRow({self.request_id!r}, {self.eservice}, {self.status})"

    def public(self) -> dict[str, Any]:
        """What the local API shows PLUS: the request and who asked, as the gateway
        established it from the platform's assertion (never the keys)."""
        person = self.audience in ("client", "volunteer")
        return {
            "request_id": self.request_id,
            "message_id": self.message_id,
            "eservice": self.eservice,
            "kind": self.kind,
            "audience": self.audience,
            "requester": {
                "role": self.audience,
                "personal_code": self.recipient_code if person else None,
                "organisation_number": None if person else self.recipient_code,
                "volunteer_kind": self.volunteer_kind,
                "minor": self.minor,
            },
            "volunteer_kind": self.volunteer_kind,
            "minor": self.minor,
            "form": self.form,
            "form_version": self.form_version,
            "status": self.status,
            "received_at": self.received_at.isoformat(),
            "pending_sent_at": self.pending_sent_at.isoformat() if self.pending_sent_at else None,
            "pending_message_id": self.pending_message_id,
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "answer_message_id": self.answer_message_id,
            "notification_message_id": self.notification_message_id,
        }


def _row(r: Any) -> EServiceRequestRow:
    return EServiceRequestRow(**dict(r._mapping))


def _insert(conn: Connection, table: Table) -> Any:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


class EServiceStore:
    """The e-services area over the store's one transaction helper."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- requests ----------------------------------------------------------------------

    def insert_request_in(self, conn: Connection, **values: Any) -> bool:
        """Store a new request in the caller's transaction; False when it is there already."""
        # RETURNING tells "stored" from "skipped" on both backends (see the inbox area).
        stored = conn.execute(
            _insert(conn, eservice_requests)
            .values(status="pending", **values)
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(eservice_requests.c.request_id)
        ).first()
        return stored is not None

    def get(self, request_id: str) -> EServiceRequestRow | None:
        """The request ``request_id``, if any."""
        with self.db.connect() as conn:
            return self.get_in(conn, request_id)

    def get_in(self, conn: Connection, request_id: str) -> EServiceRequestRow | None:
        """:meth:`get` in the caller's transaction."""
        found = conn.execute(
            select(eservice_requests).where(eservice_requests.c.request_id == request_id)
        ).first()
        return _row(found) if found is not None else None

    def page(
        self, *, status: str | None, limit: int, after: str | None = None
    ) -> list[EServiceRequestRow]:
        """Requests oldest first, optionally of one status, after request id ``after``."""
        t = eservice_requests
        query = select(t).order_by(t.c.received_at, t.c.request_id).limit(limit)
        if status is not None:
            query = query.where(t.c.status == status)
        with self.db.connect() as conn:
            if after is not None:
                anchor = self.get_in(conn, after)
                if anchor is not None:
                    query = query.where(
                        (t.c.received_at > anchor.received_at)
                        | ((t.c.received_at == anchor.received_at) & (t.c.request_id > after))
                    )
            return [_row(r) for r in conn.execute(query)]

    def mark_answered_in(
        self,
        conn: Connection,
        request_id: str,
        *,
        at: datetime,
        answer_message_id: str,
        answer_key: str,
        notification_message_id: str | None,
    ) -> bool:
        """Record the answer; False when another answer got there first."""
        t = eservice_requests
        done = conn.execute(
            update(t)
            .where(t.c.request_id == request_id, t.c.status == "pending")
            .values(
                status="answered",
                answered_at=at,
                answer_message_id=answer_message_id,
                answer_key=answer_key,
                notification_message_id=notification_message_id,
            )
        ).rowcount
        return bool(done)

    def overdue(self, before: datetime, limit: int = 100) -> list[EServiceRequestRow]:
        """Pending requests received before ``before`` whose portal has not been told."""
        t = eservice_requests
        query = (
            select(t)
            .where(t.c.status == "pending", t.c.pending_sent_at.is_(None), t.c.received_at < before)
            .order_by(t.c.received_at)
            .limit(limit)
        )
        with self.db.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def mark_pending_sent(self, request_id: str, message_id: str) -> None:
        """Remember that the portal was told ``request_id`` waits (message ``message_id``)."""
        t = eservice_requests
        with self.db.transaction() as conn:
            conn.execute(
                update(t)
                .where(t.c.request_id == request_id, t.c.pending_sent_at.is_(None))
                .values(pending_sent_at=utcnow(), pending_message_id=message_id)
            )

    def delete_answered_in(self, conn: Connection, before: datetime) -> int:
        """Retention: delete requests answered before ``before``; how many."""
        t = eservice_requests
        return int(
            conn.execute(
                delete(t).where(t.c.status == "answered", t.c.answered_at < before)
            ).rowcount
        )

    # -- parties and assignments -------------------------------------------------------

    def put_party(
        self,
        party: Party,
        clients: Iterable[str] | None,
    ) -> None:
        """Create or replace a party; ``clients`` (when given) replaces all its assignments."""
        now = utcnow()
        values = {
            "kind": party.kind,
            "legal_form": party.legal_form,
            "state_share_percent": party.state_share_percent,
            "volunteer_kind": party.volunteer_kind,
            "updated_at": now,
        }
        with self.db.transaction() as conn:
            conn.execute(
                _insert(conn, eservice_parties)
                .values(party_key=party.party_key, **values)
                .on_conflict_do_update(index_elements=["party_key"], set_=values)
            )
            if clients is not None:
                # PLUS's list is the truth: it replaces every assignment of the party, those
                # work assignments and tasks made too (that is how PLUS ends one).
                a = eservice_assignments
                conn.execute(delete(a).where(a.c.party_key == party.party_key))
                for client_id in sorted(set(clients)):
                    self.assign_in(conn, party.party_key, client_id, source="register", at=now)

    def party(self, party_key: str) -> Party | None:
        """The registered party ``party_key``, if any."""
        with self.db.connect() as conn:
            found = conn.execute(
                select(eservice_parties).where(eservice_parties.c.party_key == party_key)
            ).first()
        if found is None:
            return None
        m = found._mapping
        return Party(
            party_key=m["party_key"],
            kind=m["kind"],
            legal_form=m["legal_form"],
            state_share_percent=m["state_share_percent"],
            volunteer_kind=m["volunteer_kind"],
        )

    def assign_in(
        self, conn: Connection, party_key: str, client_id: str, *, source: str, at: datetime
    ) -> None:
        """Assign ``client_id`` to ``party_key`` in the caller's transaction (idempotent)."""
        conn.execute(
            _insert(conn, eservice_assignments)
            .values(party_key=party_key, client_id=client_id, source=source, assigned_at=at)
            .on_conflict_do_nothing(index_elements=["party_key", "client_id"])
        )

    def assigned(self, party_key: str) -> set[str]:
        """The clients assigned to ``party_key``."""
        a = eservice_assignments
        with self.db.connect() as conn:
            return set(
                conn.execute(select(a.c.client_id).where(a.c.party_key == party_key)).scalars()
            )
