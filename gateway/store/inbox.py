"""The inbox area: verified messages from institutions, until PLUS takes them.

Accepting is the duplicate check (insert-or-nothing on the sender's message id) and writes the
inbox row and its journal entry in one transaction. PLUS pages through the inbox and acks, or
the optional push to the PLUS webhook claims messages one at a time, in order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.logging import mask_text
from gateway.store.chain import sha256_hex
from gateway.store.db import Database, is_sqlite
from gateway.store.journal import Journal
from gateway.store.schema import inbox, utcnow

__all__ = ["InboundRecord", "Inbox"]


@dataclass(frozen=True)
class InboundRecord:
    """A verified, mapped message from a partner, ready for the inbox."""

    message_id: str
    partner: str
    operation: str
    message_type: str
    partner_message_id: str
    correlation_id: str | None
    canonical: dict[str, Any]
    payload: bytes


class Inbox:
    """The ``inbox`` table: accept once, page, ack, push claims, reply-routing lookups."""

    def __init__(self, db: Database, journal: Journal) -> None:
        self._db = db
        self._journal = journal
        insert_once = (sqlite_insert if is_sqlite(db.engine) else pg_insert)(inbox)
        # Built once (it runs in every accept). An explicit RETURNING tells "stored" from
        # "skipped" on both backends; rowcount does not, since SQLAlchemy fetches the new
        # primary key with RETURNING on PostgreSQL.
        self._insert_once = insert_once.on_conflict_do_nothing(
            index_elements=["partner", "partner_message_id"]
        ).returning(inbox.c.id)

    def accept(self, record: InboundRecord) -> tuple[str, bool]:
        """Store inbox row + journal entry in one transaction. Returns ``(message_id, created)``.

        This is the duplicate check: a partner message id seen before is not stored again
        (``ON CONFLICT DO NOTHING`` on the partner's id, race-free across instances); its first
        message id comes back with ``created=False`` and the duplicate is journaled in the
        same transaction.
        """
        now = utcnow()
        with self._db.transaction() as conn:
            return self.accept_in(conn, record, at=now)

    def accept_in(
        self, conn: Connection, record: InboundRecord, *, at: datetime
    ) -> tuple[str, bool]:
        """:meth:`accept` inside the caller's transaction (a duplicate does not spoil it)."""
        stored = (
            conn.execute(
                self._insert_once,
                dict(
                    message_id=record.message_id,
                    partner=record.partner,
                    operation=record.operation,
                    message_type=record.message_type,
                    partner_message_id=record.partner_message_id,
                    correlation_id=record.correlation_id,
                    received_at=at,
                    canonical=json.dumps(record.canonical, ensure_ascii=False),
                ),
            ).first()
            is not None
        )
        message_id = record.message_id
        if not stored:
            message_id = conn.execute(
                select(inbox.c.message_id).where(
                    inbox.c.partner == record.partner,
                    inbox.c.partner_message_id == record.partner_message_id,
                )
            ).scalar_one()
        self._journal.append_in(
            conn,
            about=record,
            at=at,
            direction="in",
            message_id=message_id,
            partner_message_id=record.partner_message_id,
            status="accepted" if stored else "duplicate",
            # A duplicate's bytes are the partner's resend; its hash is enough.
            **({"payload": record.payload} if stored else {}),
            payload_sha256=sha256_hex(record.payload),
        )
        return message_id, stored

    def senders(self, partner_message_id: str, message_types: Sequence[str]) -> list[str]:
        """Institutions that sent a message of one of ``message_types`` with this id.

        Reply routing: an evaluation report names its request's id, and goes to its sender.
        """
        query = (
            select(inbox.c.partner)
            .where(
                inbox.c.partner_message_id == partner_message_id,
                inbox.c.message_type.in_(list(message_types)),
            )
            .distinct()
        )
        with self._db.connect() as conn:
            return sorted(str(p) for p in conn.execute(query).scalars())

    def page(self, after: int, limit: int, *, include_acked: bool = False) -> list[dict[str, Any]]:
        """Inbox rows with cursor greater than ``after``, oldest first."""
        query = select(inbox).where(inbox.c.id > after).order_by(inbox.c.id).limit(limit)
        if not include_acked:
            query = query.where(inbox.c.acked_at.is_(None))
        with self._db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def ack(self, message_id: str) -> dict[str, Any] | None:
        """Mark an inbox message as taken by PLUS (idempotent); None if unknown."""
        now = utcnow()
        with self._db.transaction() as conn:
            row = conn.execute(select(inbox).where(inbox.c.message_id == message_id)).first()
            if row is None:
                return None
            if row.acked_at is None:
                conn.execute(
                    update(inbox).where(inbox.c.message_id == message_id).values(acked_at=now)
                )
                self._journal.append_in(
                    conn,
                    about=row,
                    at=now,
                    direction="local",
                    message_id=message_id,
                    status="acked",
                    actor="plus",
                )
            out = dict(row._mapping)
            out["acked_at"] = out["acked_at"] or now
            return out

    def empty_acked_in(self, conn: Connection, before: datetime) -> int:
        """Retention: the canonical JSON of messages acked before ``before`` becomes ``{}``.

        Inside the caller's transaction, which journals what it removed.
        """
        return int(
            conn.execute(
                update(inbox)
                .where(inbox.c.acked_at < before, inbox.c.canonical != "{}")
                .values(canonical="{}")
            ).rowcount
        )

    # -- push to PLUS (optional) -----------------------------------------------------------

    def claim_push(self, owner: str, limit: int, lease_seconds: float) -> list[dict[str, Any]]:
        """Lease inbox messages due for a push to the PLUS webhook, in cursor order.

        Only the oldest unfinished message is due (strict order): a later one waits while an
        earlier one is not yet pushed, retrying or dead. An ack (pull) or a successful push
        finishes a message. With ``limit`` > 1 nothing more is returned; it exists so the
        caller can share code with the outbox worker.
        """
        now = utcnow()
        unfinished = and_(
            inbox.c.acked_at.is_(None),
            or_(
                inbox.c.push_status.is_(None),
                inbox.c.push_status.in_(("pending", "sending", "dead")),
            ),
        )
        due = or_(
            inbox.c.push_status.is_(None),
            and_(inbox.c.push_status == "pending", inbox.c.push_next_at <= now),
            and_(inbox.c.push_status == "sending", inbox.c.push_lease_until < now),
        )
        head = select(func.min(inbox.c.id)).where(unfinished).scalar_subquery()
        query = select(inbox).where(inbox.c.id == head, due).limit(max(limit, 1))
        if self._db.postgres:
            query = query.with_for_update(skip_locked=True)
        with self._db.transaction() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            if not rows:
                return []
            conn.execute(
                update(inbox)
                .where(inbox.c.id.in_([r["id"] for r in rows]))
                .values(
                    push_status="sending",
                    push_lease_owner=owner,
                    push_lease_until=now + timedelta(seconds=lease_seconds),
                )
            )
        return rows

    def mark_pushed(self, row: dict[str, Any], owner: str, detail: str) -> bool:
        """The webhook took the message: it counts as acknowledged by PLUS."""
        now = utcnow()
        with self._db.transaction() as conn:
            done = conn.execute(
                update(inbox)
                .where(inbox.c.id == row["id"], inbox.c.push_lease_owner == owner)
                .values(
                    push_status="delivered",
                    push_attempts=inbox.c.push_attempts + 1,
                    pushed_at=now,
                    acked_at=func.coalesce(inbox.c.acked_at, now),
                    push_lease_owner=None,
                    push_lease_until=None,
                    push_last_error=None,
                )
            ).rowcount
            if done:
                self._journal.append_in(
                    conn,
                    about=row,
                    at=now,
                    direction="local",
                    status="pushed",
                    actor="plus-webhook",
                    detail=detail[:2000],
                )
        return bool(done)

    def mark_push_failed(
        self, row: dict[str, Any], *, owner: str, code: str, error: str, next_at: datetime | None
    ) -> bool:
        """A failed push: retry at ``next_at`` or, when None, ``dead`` (PLUS can still pull)."""
        now = utcnow()
        error = mask_text(error)
        status = "pending" if next_at is not None else "dead"
        with self._db.transaction() as conn:
            done = conn.execute(
                update(inbox)
                .where(inbox.c.id == row["id"], inbox.c.push_lease_owner == owner)
                .values(
                    push_status=status,
                    push_attempts=inbox.c.push_attempts + 1,
                    push_next_at=next_at or now,
                    push_last_error=f"{code}: {error}"[:2000],
                    push_lease_owner=None,
                    push_lease_until=None,
                )
            ).rowcount
            if done:
                self._journal.append_in(
                    conn,
                    about=row,
                    at=now,
                    direction="local",
                    status="push_retry" if next_at is not None else "push_dead",
                    error_code=code,
                    detail=error[:2000],
                )
        return bool(done)

    def release_push_leases_in(self, conn: Connection, owner: str, now: datetime) -> int:
        """Give back every push leased to ``owner``, due now, inside the caller's transaction."""
        return int(
            conn.execute(
                update(inbox)
                .where(inbox.c.push_lease_owner == owner, inbox.c.push_status == "sending")
                .values(
                    push_status="pending",
                    push_next_at=now,
                    push_lease_owner=None,
                    push_lease_until=None,
                )
            ).rowcount
        )
