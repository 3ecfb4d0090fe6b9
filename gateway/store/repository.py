"""The store's operations: every multi-table write happens in one transaction here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.errors import BadInputError, StoreUnavailableError
from gateway.store.schema import idempotency_keys, inbox, journal, outbox, utcnow

__all__ = [
    "IdempotencyConflictError",
    "InboundRecord",
    "OutboundRecord",
    "Store",
    "sha256_hex",
]


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``; the journal keeps hashes so payloads can later be purged."""
    return hashlib.sha256(data).hexdigest()


class IdempotencyConflictError(BadInputError):
    """The Idempotency-Key was used before for a different request body."""

    code = "IDEMPOTENCY_CONFLICT"


@dataclass(frozen=True)
class OutboundRecord:
    """A signed message ready to be stored in the outbox."""

    message_id: str
    partner: str
    operation: str
    message_type: str
    payload: bytes
    ordering_key: str | None
    correlation_id: str | None
    idempotency_key: str
    request_sha256: str


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


class Store:
    """Journal, inbox, outbox and idempotency keys over one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction; database outages surface as StoreUnavailableError (retryable)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreUnavailableError(f"store unavailable: {exc.orig}") from exc

    # -- journal -------------------------------------------------------------------------

    def _journal(self, conn: Connection, **values: Any) -> None:
        payload = values.get("payload")
        if payload is not None and "payload_sha256" not in values:
            values["payload_sha256"] = sha256_hex(payload)
        values.setdefault("at", utcnow())
        conn.execute(insert(journal).values(**values))

    def journal(self, **values: Any) -> None:
        """Append one journal entry in its own transaction (rejections, operator actions)."""
        with self.transaction() as conn:
            self._journal(conn, **values)

    def journal_for(self, message_id: str) -> list[dict[str, Any]]:
        """Journal entries of one message, oldest first, without payloads."""
        cols = [c for c in journal.c if c.name != "payload"]
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*cols).where(journal.c.message_id == message_id).order_by(journal.c.id)
            )
            return [dict(r._mapping) for r in rows]

    # -- outbound ------------------------------------------------------------------------

    def find_idempotent(self, key: str) -> dict[str, Any] | None:
        """The stored answer for an Idempotency-Key, if the key was seen."""
        with self.engine.connect() as conn:
            row = conn.execute(select(idempotency_keys).where(idempotency_keys.c.key == key))
            found = row.first()
            return dict(found._mapping) if found else None

    def accept_outbound(self, record: OutboundRecord) -> tuple[str, bool]:
        """Store journal + outbox + idempotency key in one transaction.

        Returns ``(message_id, created)``; when the key was already used for the same request
        the earlier message id comes back with ``created=False``. A key reused for a different
        request raises IdempotencyConflictError.
        """
        now = utcnow()
        try:
            with self.transaction() as conn:
                conn.execute(
                    insert(idempotency_keys).values(
                        key=record.idempotency_key,
                        message_type=record.message_type,
                        request_sha256=record.request_sha256,
                        message_id=record.message_id,
                        created_at=now,
                    )
                )
                conn.execute(
                    insert(outbox).values(
                        message_id=record.message_id,
                        partner=record.partner,
                        operation=record.operation,
                        message_type=record.message_type,
                        ordering_key=record.ordering_key,
                        correlation_id=record.correlation_id,
                        payload=record.payload,
                        payload_sha256=sha256_hex(record.payload),
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
                self._journal(
                    conn,
                    at=now,
                    direction="out",
                    partner=record.partner,
                    operation=record.operation,
                    message_type=record.message_type,
                    message_id=record.message_id,
                    correlation_id=record.correlation_id,
                    status="accepted",
                    payload=record.payload,
                )
        except IntegrityError:
            # Another request with the same key won the race; answer what it stored.
            existing = self.find_idempotent(record.idempotency_key)
            if existing is None:
                raise
            return self._idempotent_answer(existing, record.request_sha256), False
        return record.message_id, True

    @staticmethod
    def _idempotent_answer(existing: dict[str, Any], request_sha256: str) -> str:
        if existing["request_sha256"] != request_sha256:
            raise IdempotencyConflictError(
                "Idempotency-Key was already used for a different request",
                message_id=existing["message_id"],
            )
        return str(existing["message_id"])

    def resolve_idempotent(self, key: str, request_sha256: str) -> str | None:
        """Message id stored for ``key`` if the same request was accepted before."""
        existing = self.find_idempotent(key)
        return self._idempotent_answer(existing, request_sha256) if existing else None

    def get_outbound(self, message_id: str) -> dict[str, Any] | None:
        """One outbox row without its payload."""
        cols = [c for c in outbox.c if c.name != "payload"]
        with self.engine.connect() as conn:
            row = conn.execute(select(*cols).where(outbox.c.message_id == message_id)).first()
            return dict(row._mapping) if row else None

    def get_outbound_payload(self, message_id: str) -> bytes | None:
        """The signed payload stored for ``message_id``."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(outbox.c.payload).where(outbox.c.message_id == message_id)
            ).scalar()

    def list_outbound(
        self,
        *,
        status: str | None = None,
        partner: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Outbox rows, oldest first, without payloads."""
        cols = [c for c in outbox.c if c.name != "payload"]
        query = select(*cols).order_by(outbox.c.id).limit(limit)
        if status:
            query = query.where(outbox.c.status == status)
        if partner:
            query = query.where(outbox.c.partner == partner)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- delivery ------------------------------------------------------------------------

    def claim_due(self, owner: str, limit: int, lease_seconds: float) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due messages to ``owner``, oldest first.

        Due means pending with ``next_attempt_at`` passed, or sending with an expired lease (a
        worker died mid-send). The lease is written in the same transaction that selects, so
        two workers never hold the same row.
        """
        now = utcnow()
        due = or_(
            and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now),
            and_(outbox.c.status == "sending", outbox.c.lease_until < now),
        )
        query = select(outbox).where(due).order_by(outbox.c.id).limit(limit)
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        with self.transaction() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            if not rows:
                return []
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([r["id"] for r in rows]))
                .values(
                    status="sending",
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=lease_seconds),
                    updated_at=now,
                )
            )
        return rows

    def mark_delivered(self, row: dict[str, Any], ack: dict[str, Any], owner: str) -> bool:
        """Record the partner's acknowledgement; False if our lease was lost meanwhile."""
        now = utcnow()
        with self.transaction() as conn:
            done = conn.execute(
                update(outbox)
                .where(outbox.c.id == row["id"], outbox.c.lease_owner == owner)
                .values(
                    status="delivered",
                    attempts=outbox.c.attempts + 1,
                    ack=json.dumps(ack, default=str),
                    delivered_at=now,
                    updated_at=now,
                    lease_owner=None,
                    lease_until=None,
                    last_error=None,
                    last_error_code=None,
                )
            ).rowcount
            if done:
                self._journal(
                    conn,
                    at=now,
                    direction="out",
                    partner=row["partner"],
                    operation=row["operation"],
                    message_type=row["message_type"],
                    message_id=row["message_id"],
                    correlation_id=row["correlation_id"],
                    status="delivered",
                    detail=json.dumps(ack, default=str),
                )
        return bool(done)

    def mark_failed(
        self,
        row: dict[str, Any],
        *,
        owner: str,
        code: str,
        error: str,
        next_attempt_at: datetime | None,
    ) -> bool:
        """Record a failed attempt: retry at ``next_attempt_at`` or, when None, dead-letter."""
        now = utcnow()
        status = "pending" if next_attempt_at is not None else "dead"
        with self.transaction() as conn:
            done = conn.execute(
                update(outbox)
                .where(outbox.c.id == row["id"], outbox.c.lease_owner == owner)
                .values(
                    status=status,
                    attempts=outbox.c.attempts + 1,
                    next_attempt_at=next_attempt_at or now,
                    last_error_code=code,
                    last_error=error[:2000],
                    updated_at=now,
                    lease_owner=None,
                    lease_until=None,
                )
            ).rowcount
            if done:
                self._journal(
                    conn,
                    at=now,
                    direction="out",
                    partner=row["partner"],
                    operation=row["operation"],
                    message_type=row["message_type"],
                    message_id=row["message_id"],
                    correlation_id=row["correlation_id"],
                    status="retry" if status == "pending" else "dead",
                    error_code=code,
                    detail=error[:2000],
                )
        return bool(done)

    def replay(self, message_id: str, *, actor: str, reason: str) -> bool:
        """Put a dead (or stuck) message back in the queue, keeping its id; journaled."""
        now = utcnow()
        with self.transaction() as conn:
            row = conn.execute(select(outbox).where(outbox.c.message_id == message_id)).first()
            if row is None or row.status == "delivered":
                return False
            conn.execute(
                update(outbox)
                .where(outbox.c.message_id == message_id)
                .values(
                    status="pending",
                    next_attempt_at=now,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            )
            self._journal(
                conn,
                at=now,
                direction="local",
                partner=row.partner,
                operation=row.operation,
                message_type=row.message_type,
                message_id=message_id,
                status="replayed",
                actor=actor,
                detail=reason,
            )
        return True

    def outbox_counts(self) -> dict[tuple[str, str], int]:
        """Number of outbox rows per (partner, status)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.partner, outbox.c.status, func.count()).group_by(
                    outbox.c.partner, outbox.c.status
                )
            )
            return {(r[0], r[1]): int(r[2]) for r in rows}

    # -- inbound -------------------------------------------------------------------------

    def find_inbound(self, partner: str, partner_message_id: str) -> dict[str, Any] | None:
        """The inbox row for a partner's message id, if we have it."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(inbox).where(
                    inbox.c.partner == partner, inbox.c.partner_message_id == partner_message_id
                )
            ).first()
            return dict(row._mapping) if row else None

    def accept_inbound(self, record: InboundRecord) -> tuple[str, bool]:
        """Store journal + inbox in one transaction. Returns ``(message_id, created)``.

        A partner message id seen before is not stored again: its first message id comes back
        with ``created=False`` and the duplicate is journaled.
        """
        now = utcnow()
        try:
            with self.transaction() as conn:
                conn.execute(
                    insert(inbox).values(
                        message_id=record.message_id,
                        partner=record.partner,
                        operation=record.operation,
                        message_type=record.message_type,
                        partner_message_id=record.partner_message_id,
                        correlation_id=record.correlation_id,
                        received_at=now,
                        canonical=json.dumps(record.canonical, ensure_ascii=False),
                    )
                )
                self._journal(
                    conn,
                    at=now,
                    direction="in",
                    partner=record.partner,
                    operation=record.operation,
                    message_type=record.message_type,
                    message_id=record.message_id,
                    partner_message_id=record.partner_message_id,
                    correlation_id=record.correlation_id,
                    status="accepted",
                    payload=record.payload,
                )
        except IntegrityError:
            existing = self.find_inbound(record.partner, record.partner_message_id)
            if existing is None:
                raise
            self.journal(
                direction="in",
                partner=record.partner,
                operation=record.operation,
                message_type=record.message_type,
                message_id=existing["message_id"],
                partner_message_id=record.partner_message_id,
                correlation_id=record.correlation_id,
                status="duplicate",
                payload_sha256=sha256_hex(record.payload),
            )
            return str(existing["message_id"]), False
        return record.message_id, True

    def inbox_after(
        self, after: int, limit: int, *, include_acked: bool = False
    ) -> list[dict[str, Any]]:
        """Inbox rows with cursor greater than ``after``, oldest first."""
        query = select(inbox).where(inbox.c.id > after).order_by(inbox.c.id).limit(limit)
        if not include_acked:
            query = query.where(inbox.c.acked_at.is_(None))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def ack_inbox(self, message_id: str) -> dict[str, Any] | None:
        """Mark an inbox message as taken by PLUS (idempotent); None if unknown."""
        now = utcnow()
        with self.transaction() as conn:
            row = conn.execute(select(inbox).where(inbox.c.message_id == message_id)).first()
            if row is None:
                return None
            if row.acked_at is None:
                conn.execute(
                    update(inbox).where(inbox.c.message_id == message_id).values(acked_at=now)
                )
                self._journal(
                    conn,
                    at=now,
                    direction="local",
                    partner=row.partner,
                    operation=row.operation,
                    message_type=row.message_type,
                    message_id=message_id,
                    status="acked",
                    actor="plus",
                )
            out = dict(row._mapping)
            out["acked_at"] = out["acked_at"] or now
            return out

    def ping(self) -> None:
        """Raise StoreUnavailableError unless the database answers."""
        with self.transaction() as conn:
            conn.execute(select(1))
