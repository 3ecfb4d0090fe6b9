"""The store's operations: every multi-table write happens in one transaction here."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.errors import BadInputError, StoreUnavailableError
from gateway.logging import mask_text
from gateway.store.chain import GENESIS, entry_hash
from gateway.store.schema import (
    idempotency_keys,
    inbox,
    journal,
    journal_chain,
    outbox,
    utcnow,
)
from gateway.store.verify import AnchorPoint, ChainVerdict, verify_journal

__all__ = [
    "ChainVerdict",
    "IdempotencyConflictError",
    "InboundRecord",
    "OutboundRecord",
    "Store",
    "sha256_hex",
]

# Literal (not bound) status lists, so SQLite's planner can match the partial indexes.
_LIVE = "IN ('pending', 'sending')"
_HELD = "IN ('pending', 'sending', 'dead')"


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
    #: The userId header of every delivery attempt (the officer, or the system user).
    user_id: str | None = None


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


# Built once: the journal append runs in every write transaction, and constructing statements
# (and their cache keys) per call showed up as a tenth of the server's CPU in profiles.
_CHAIN_HEAD = (
    select(journal_chain.c.last_id, journal_chain.c.last_hash)
    .where(journal_chain.c.id == 1)
    .with_for_update()
)
_JOURNAL_INSERT = insert(journal)
_INSERT_IDEMPOTENCY_KEYS = insert(idempotency_keys)
_INSERT_OUTBOX = insert(outbox)
_CHAIN_ADVANCE = (
    update(journal_chain)
    .where(journal_chain.c.id == 1)
    .values(last_id=bindparam("new_id"), last_hash=bindparam("new_hash"))
)


#: What a journal entry about a stored message copies from it.
_ABOUT_FIELDS = ("partner", "operation", "message_type", "message_id", "correlation_id")


class Store:
    """Journal, inbox, outbox and idempotency keys over one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Queueing this process's writers on a lock hands the
        # write lock over at once; left to SQLite's busy handler, waiters sleep-poll in steps of
        # up to 100 ms, which is what made p99 latency approach a second under load.
        insert_once = (sqlite_insert if engine.dialect.name == "sqlite" else pg_insert)(inbox)
        # An explicit RETURNING tells "stored" from "skipped" on both backends; rowcount does
        # not, since SQLAlchemy fetches the new primary key with RETURNING on PostgreSQL.
        self._insert_inbox_once = insert_once.on_conflict_do_nothing(
            index_elements=["partner", "partner_message_id"]
        ).returning(inbox.c.id)
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction; database outages surface as StoreUnavailableError (retryable)."""
        try:
            with self._write_lock, self.engine.connect() as conn:
                # On SQLite a write transaction takes the write lock at BEGIN (see db.py);
                # plain reads elsewhere stay deferred and never queue behind writers.
                conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StoreUnavailableError(f"store unavailable: {exc.orig}") from exc

    # -- journal -------------------------------------------------------------------------

    def _journal(self, conn: Connection, **values: Any) -> None:
        """Append one entry to the hash chain, inside the caller's transaction.

        The chain head row is locked first (SELECT ... FOR UPDATE on PostgreSQL; SQLite's
        BEGIN IMMEDIATE already serializes writers), so appends from several instances form
        one linear chain. Ids are assigned here, gap-free, under that lock. Call it last in a
        transaction so the lock is held only until the commit.
        """
        payload = values.get("payload")
        if payload is not None and "payload_sha256" not in values:
            values["payload_sha256"] = sha256_hex(payload)
        values.setdefault("at", utcnow())
        head = conn.execute(_CHAIN_HEAD).first()
        if head is None:
            raise StoreUnavailableError("journal chain head missing; run the migrations")
        values["id"] = int(head.last_id) + 1
        values["prev_hash"] = head.last_hash or GENESIS
        values["entry_hash"] = entry_hash(values)
        conn.execute(_JOURNAL_INSERT, values)
        conn.execute(_CHAIN_ADVANCE, {"new_id": values["id"], "new_hash": values["entry_hash"]})

    def _journal_about(self, conn: Connection, about: Any, **values: Any) -> None:
        """Journal an entry about a stored message or record; ``values`` add or override.

        Partner, operation, message type and ids are taken from ``about`` (a row, a mapping or
        a record dataclass) where it has them.
        """
        source = about._mapping if hasattr(about, "_mapping") else about
        if not isinstance(source, dict) and not hasattr(source, "keys"):
            source = vars(source)
        for key in _ABOUT_FIELDS:
            if key in source:
                values.setdefault(key, source[key])
        self._journal(conn, **values)

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
                    _INSERT_IDEMPOTENCY_KEYS,
                    dict(
                        key=record.idempotency_key,
                        message_type=record.message_type,
                        request_sha256=record.request_sha256,
                        message_id=record.message_id,
                        created_at=now,
                    ),
                )
                conn.execute(
                    _INSERT_OUTBOX,
                    dict(
                        message_id=record.message_id,
                        partner=record.partner,
                        operation=record.operation,
                        message_type=record.message_type,
                        ordering_key=record.ordering_key,
                        correlation_id=record.correlation_id,
                        user_id=record.user_id,
                        payload=record.payload,
                        payload_sha256=sha256_hex(record.payload),
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    ),
                )
                self._journal_about(
                    conn,
                    record,
                    at=now,
                    direction="out",
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
        operation: str | None = None,
        code: str | None = None,
        older_than: timedelta | None = None,
        stuck: bool = False,
        limit: int | None = 100,
    ) -> list[dict[str, Any]]:
        """Outbox rows, oldest first, without payloads, filtered.

        ``code`` matches the last error code (the dead letter's reason); ``older_than`` the age
        since acceptance; ``stuck`` selects rows ``sending`` whose lease has run out.
        """
        cols = [c for c in outbox.c if c.name != "payload"]
        query = select(*cols).order_by(outbox.c.id)
        if limit is not None:
            query = query.limit(limit)
        if status:
            query = query.where(outbox.c.status == status)
        if partner:
            query = query.where(outbox.c.partner == partner)
        if operation:
            query = query.where(
                or_(outbox.c.operation == operation, outbox.c.message_type == operation)
            )
        if code:
            query = query.where(outbox.c.last_error_code == code)
        if older_than is not None:
            query = query.where(outbox.c.created_at <= utcnow() - older_than)
        if stuck:
            query = query.where(outbox.c.status == "sending", outbox.c.lease_until < utcnow())
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- delivery ------------------------------------------------------------------------

    def claim_due(self, owner: str, limit: int, lease_seconds: float) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due messages to ``owner``, oldest first.

        Due means pending with ``next_attempt_at`` passed, or sending with an expired lease (a
        worker died mid-send). A row with an ordering key is due only when no earlier row of
        the same partner and key is still pending, sending or dead, so each case has at most
        one message in flight and they leave in submission order; a dead one holds the rest
        of its case until it is replayed or discarded. The lease is written in the same
        transaction that selects (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two workers
        never hold the same row. Returned rows carry the new lease.
        """
        now = utcnow()
        lease_until = now + timedelta(seconds=lease_seconds)
        due = or_(
            and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now),
            and_(outbox.c.status == "sending", outbox.c.lease_until < now),
        )
        earlier = outbox.alias("earlier")
        held = exists().where(
            earlier.c.partner == outbox.c.partner,
            earlier.c.ordering_key == outbox.c.ordering_key,
            earlier.c.id < outbox.c.id,
            text(f"earlier.status {_HELD}"),
        )
        query = (
            select(outbox)
            .where(text(f"outbox.status {_LIVE}"), due)
            .where(or_(outbox.c.ordering_key.is_(None), ~held))
            .order_by(outbox.c.id)
            .limit(limit)
        )
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=outbox)
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
                    lease_until=lease_until,
                    updated_at=now,
                )
            )
        for row in rows:
            row.update(status="sending", lease_owner=owner, lease_until=lease_until)
        return rows

    def release(self, ids: list[int], owner: str) -> int:
        """Give back claimed rows not sent yet (stopping, or the lease would not last)."""
        if not ids:
            return 0
        with self.transaction() as conn:
            return int(
                conn.execute(
                    update(outbox)
                    .where(
                        outbox.c.id.in_(ids),
                        outbox.c.lease_owner == owner,
                        outbox.c.status == "sending",
                    )
                    .values(status="pending", lease_owner=None, lease_until=None)
                ).rowcount
            )

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
                self._journal_about(
                    conn,
                    row,
                    at=now,
                    direction="out",
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
        # A partner's fault text can quote our payload back; stored and journaled masked.
        error = mask_text(error)
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
                self._journal_about(
                    conn,
                    row,
                    at=now,
                    direction="out",
                    status="retry" if status == "pending" else "dead",
                    error_code=code,
                    detail=error[:2000],
                )
        return bool(done)

    def replay(self, message_id: str, *, actor: str, reason: str) -> bool:
        """Put a dead, discarded or stuck message back in the queue, keeping its id.

        The retry budget starts again (attempts 0, age counted from now); journaled with who
        and why. False when the message is unknown or already delivered.
        """
        now = utcnow()
        with self.transaction() as conn:
            row = self._locked_outbox_row(conn, message_id)
            if row is None or row.status == "delivered" or self._in_flight(row, now):
                return False
            conn.execute(
                update(outbox)
                .where(outbox.c.message_id == message_id)
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    replayed_at=now,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            )
            self._journal_about(
                conn,
                row,
                at=now,
                direction="local",
                message_id=message_id,
                status="replayed",
                actor=actor,
                detail=reason,
            )
        return True

    def _locked_outbox_row(self, conn: Connection, message_id: str) -> Any:
        query = select(
            outbox.c.status,
            outbox.c.partner,
            outbox.c.operation,
            outbox.c.message_type,
            outbox.c.lease_until,
        ).where(outbox.c.message_id == message_id)
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update()
        return conn.execute(query).first()

    @staticmethod
    def _in_flight(row: Any, now: datetime) -> bool:
        # A worker holding a live lease may be sending right now: leave the row to it.
        return bool(row.status == "sending" and row.lease_until and row.lease_until >= now)

    def discard(self, message_id: str, *, actor: str, reason: str) -> bool:
        """Give up on an undelivered message for good (status ``discarded``), journaled.

        A discarded message no longer holds later messages of its case. False when the message
        is unknown, delivered, already discarded or being sent right now.
        """
        now = utcnow()
        with self.transaction() as conn:
            row = self._locked_outbox_row(conn, message_id)
            if row is None or row.status in ("delivered", "discarded") or self._in_flight(row, now):
                return False
            conn.execute(
                update(outbox)
                .where(outbox.c.message_id == message_id)
                .values(status="discarded", lease_owner=None, lease_until=None, updated_at=now)
            )
            self._journal_about(
                conn,
                row,
                at=now,
                direction="local",
                message_id=message_id,
                status="discarded",
                actor=actor,
                detail=reason,
            )
        return True

    def outbox_stats(
        self, *, window: timedelta = timedelta(minutes=5)
    ) -> dict[str, dict[str, Any]]:
        """Per partner: counts by status, depth, oldest waiting age, held messages, rates.

        ``held`` counts pending messages waiting behind a dead one of the same case (they move
        only once it is replayed or discarded). Rates are per minute over ``window``.
        """
        now = utcnow()
        since = now - window
        minutes = window.total_seconds() / 60
        out: dict[str, dict[str, Any]] = {}

        def entry(partner: str) -> dict[str, Any]:
            return out.setdefault(
                partner,
                {
                    "counts": {},
                    "depth": 0,
                    "oldest_age_seconds": None,
                    "held_by_dead": 0,
                    "delivered_per_minute": 0.0,
                    "dead_per_minute": 0.0,
                    "accepted_per_minute": 0.0,
                },
            )

        earlier = outbox.alias("earlier")
        held = exists().where(
            earlier.c.partner == outbox.c.partner,
            earlier.c.ordering_key == outbox.c.ordering_key,
            earlier.c.id < outbox.c.id,
            earlier.c.status == "dead",
        )
        with self.engine.connect() as conn:
            for partner, status, n in conn.execute(
                select(outbox.c.partner, outbox.c.status, func.count()).group_by(
                    outbox.c.partner, outbox.c.status
                )
            ):
                e = entry(partner)
                e["counts"][status] = int(n)
                if status in ("pending", "sending"):
                    e["depth"] += int(n)
            for partner, oldest in conn.execute(
                select(outbox.c.partner, func.min(outbox.c.created_at))
                .where(text(f"outbox.status {_LIVE}"))
                .group_by(outbox.c.partner)
            ):
                if oldest is not None:
                    oldest = _aware(oldest)
                    entry(partner)["oldest_age_seconds"] = (now - oldest).total_seconds()
            for partner, n in conn.execute(
                select(outbox.c.partner, func.count())
                .where(outbox.c.status == "pending", outbox.c.ordering_key.is_not(None), held)
                .group_by(outbox.c.partner)
            ):
                entry(partner)["held_by_dead"] = int(n)
            for partner, n in conn.execute(
                select(outbox.c.partner, func.count())
                .where(outbox.c.delivered_at >= since)
                .group_by(outbox.c.partner)
            ):
                entry(partner)["delivered_per_minute"] = round(int(n) / minutes, 2)
            for partner, n in conn.execute(
                select(outbox.c.partner, func.count())
                .where(outbox.c.created_at >= since)
                .group_by(outbox.c.partner)
            ):
                entry(partner)["accepted_per_minute"] = round(int(n) / minutes, 2)
            for partner, n in conn.execute(
                select(outbox.c.partner, func.count())
                .where(outbox.c.status == "dead", outbox.c.updated_at >= since)
                .group_by(outbox.c.partner)
            ):
                entry(partner)["dead_per_minute"] = round(int(n) / minutes, 2)
        return out

    def outbox_gauges(self) -> list[tuple[str, str, str, int, float | None]]:
        """``(partner, operation, status, count, oldest age in seconds)`` for the metrics."""
        now = utcnow()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    outbox.c.partner,
                    outbox.c.operation,
                    outbox.c.status,
                    func.count(),
                    func.min(outbox.c.created_at),
                ).group_by(outbox.c.partner, outbox.c.operation, outbox.c.status)
            )
            return [
                (
                    r[0],
                    r[1],
                    r[2],
                    int(r[3]),
                    (now - _aware(r[4])).total_seconds() if r[4] is not None else None,
                )
                for r in rows
            ]

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

    def accept_inbound(self, record: InboundRecord) -> tuple[str, bool]:
        """Store journal + inbox in one transaction. Returns ``(message_id, created)``.

        This is the duplicate check: a partner message id seen before is not stored again
        (``ON CONFLICT DO NOTHING`` on the partner's id, race-free across instances); its first
        message id comes back with ``created=False`` and the duplicate is journaled in the
        same transaction.
        """
        now = utcnow()
        with self.transaction() as conn:
            stored = (
                conn.execute(
                    self._insert_inbox_once,
                    dict(
                        message_id=record.message_id,
                        partner=record.partner,
                        operation=record.operation,
                        message_type=record.message_type,
                        partner_message_id=record.partner_message_id,
                        correlation_id=record.correlation_id,
                        received_at=now,
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
            self._journal_about(
                conn,
                record,
                at=now,
                direction="in",
                message_id=message_id,
                partner_message_id=record.partner_message_id,
                status="accepted" if stored else "duplicate",
                # A duplicate's bytes are the partner's resend; its hash is enough.
                **({"payload": record.payload} if stored else {}),
                payload_sha256=sha256_hex(record.payload),
            )
        return message_id, stored

    def inbound_senders(self, partner_message_id: str, message_types: Sequence[str]) -> list[str]:
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
        with self.engine.connect() as conn:
            return sorted(str(p) for p in conn.execute(query).scalars())

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
                self._journal_about(
                    conn,
                    row,
                    at=now,
                    direction="local",
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

    # -- push to PLUS (optional) ---------------------------------------------------------

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
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        with self.transaction() as conn:
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
        with self.transaction() as conn:
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
                self._journal_about(
                    conn,
                    row,
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
        with self.transaction() as conn:
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
                self._journal_about(
                    conn,
                    row,
                    at=now,
                    direction="local",
                    status="push_retry" if next_at is not None else "push_dead",
                    error_code=code,
                    detail=error[:2000],
                )
        return bool(done)

    # -- journal chain ---------------------------------------------------------------------

    def verify_journal(
        self,
        batch: int = 5000,
        *,
        anchors: Sequence[AnchorPoint] = (),
        anchor_problems: Sequence[str] = (),
    ) -> ChainVerdict:
        """Walk the hash chain, payload hashes and anchors (see gateway/store/verify.py)."""
        return verify_journal(
            self.engine, anchors=anchors, anchor_problems=anchor_problems, batch=batch
        )

    def purge_payloads(self, older_than: timedelta, *, actor: str) -> int:
        """Retention: null journal payloads older than ``older_than``; hashes stay, journaled."""
        now = utcnow()
        cutoff = now - older_than
        with self.transaction() as conn:
            purged = int(
                conn.execute(
                    update(journal)
                    .where(journal.c.at < cutoff, journal.c.payload.is_not(None))
                    .values(payload=None)
                ).rowcount
            )
            self._journal(
                conn,
                at=now,
                direction="local",
                partner="gateway",
                status="purged",
                actor=actor,
                detail=f"payloads of {purged} entries before {cutoff.isoformat()} removed",
            )
        return purged


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)
