"""The outbox area: signed messages waiting for delivery, their leases, retries and dead letters.

Accepting a message writes the outbox row, its idempotency key and the journal entry in one
transaction; every later change of state (claimed, delivered, retry, dead, replayed,
discarded) is journaled in the transaction that makes it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    String,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from gateway.logging import mask_text
from gateway.store.chain import sha256_hex
from gateway.store.db import Database
from gateway.store.idempotency import IdempotencyKeys
from gateway.store.journal import Journal
from gateway.store.schema import outbox, utcnow

__all__ = ["OutboundRecord", "Outbox"]

# Literal (not bound) status lists, so SQLite's planner can match the partial indexes.
_LIVE = "IN ('pending', 'sending')"
_HELD = "IN ('pending', 'sending', 'dead')"

_INSERT = insert(outbox)  # built once: it runs in every accept
# Built once: it runs for every delivery (as an executemany over a group commit's rows).
_DELIVERED = (
    update(outbox)
    .where(outbox.c.id == bindparam("b_id"), outbox.c.lease_owner == bindparam("b_owner"))
    .values(
        status="delivered",
        attempts=outbox.c.attempts + 1,
        ack=bindparam("b_ack"),
        delivered_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
        lease_owner=None,
        lease_until=None,
        last_error=None,
        last_error_code=None,
    )
)
_WITHOUT_PAYLOAD = [c for c in outbox.c if c.name != "payload"]


_LEASE = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("c_ids", expanding=True)))
    .values(
        status="sending",
        lease_owner=bindparam("c_owner"),
        lease_until=bindparam("c_until"),
        updated_at=bindparam("c_now"),
    )
)


#: ``+outbox.partner``: SQLite's unary plus keeps the column out of index selection.
_PLAIN_PARTNER = literal_column("+outbox.partner", String)


@functools.cache
def _claim_query(*, partners: bool, exclude: bool, any_time: bool, postgres: bool) -> Any:
    """The claim's SELECT for one combination of options, built once (a delivery pool claims
    several times a second; building the statement each time cost more than running it).

    Parameters: ``c_now``, ``c_limit`` and, with those options, ``c_partners``/``c_exclude``.
    """
    now: Any = bindparam("c_now")
    due = or_(
        outbox.c.status == "pending"
        if any_time
        else and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now),
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
        .limit(bindparam("c_limit", type_=Integer))
    )
    # With a plain partner filter SQLite searches ix_outbox_ordering by partner (every row the
    # partner ever had, delivered ones too) and sorts them all by id, per claim. SQLite's unary
    # plus keeps the column out of index selection: the ordered scan of the live rows
    # (ix_outbox_live) stays, and stops at the limit.
    partner = outbox.c.partner if postgres else _PLAIN_PARTNER
    if partners:
        query = query.where(partner.in_(bindparam("c_partners", expanding=True)))
    if exclude:
        query = query.where(partner.not_in(bindparam("c_exclude", expanding=True)))
    if postgres:
        query = query.with_for_update(skip_locked=True, of=outbox)
    return query


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


class Outbox:
    """The ``outbox`` table: accept, claim with a lease, record the outcome, operate."""

    def __init__(self, db: Database, journal: Journal, keys: IdempotencyKeys) -> None:
        self._db = db
        self._journal = journal
        self._keys = keys

    # -- accepting -------------------------------------------------------------------------

    def accept(self, record: OutboundRecord) -> tuple[str, bool]:
        """Store outbox row + idempotency key + journal entry in one transaction.

        Returns ``(message_id, created)``; when the key was already used for the same request
        the earlier message id comes back with ``created=False``. A key reused for a different
        request raises IdempotencyConflictError.
        """
        now = utcnow()
        try:
            with self._db.transaction() as conn:
                self.accept_in(conn, record, at=now)
        except IntegrityError:
            # Another request with the same key won the race; answer what it stored.
            earlier = self._keys.resolve(record.idempotency_key, record.request_sha256)
            if earlier is None:
                raise
            return earlier, False
        return record.message_id, True

    def accept_in(self, conn: Connection, record: OutboundRecord, *, at: datetime) -> str:
        """Store outbox row + idempotency key + journal entry inside the caller's transaction.

        Returns the message id. A key used before raises IntegrityError, which spoils the
        caller's transaction on PostgreSQL; :meth:`accept` is the one that answers repeats.
        """
        self._keys.insert_in(
            conn,
            key=record.idempotency_key,
            message_type=record.message_type,
            request_sha256=record.request_sha256,
            message_id=record.message_id,
            at=at,
        )
        conn.execute(
            _INSERT,
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
                next_attempt_at=at,
                created_at=at,
                updated_at=at,
            ),
        )
        self._journal.append_in(
            conn,
            about=record,
            at=at,
            direction="out",
            status="accepted",
            payload=record.payload,
        )
        return record.message_id

    # -- reading ---------------------------------------------------------------------------

    def get(self, message_id: str) -> dict[str, Any] | None:
        """One outbox row without its payload."""
        with self._db.connect() as conn:
            row = conn.execute(
                select(*_WITHOUT_PAYLOAD).where(outbox.c.message_id == message_id)
            ).first()
            return dict(row._mapping) if row else None

    def payload(self, message_id: str) -> bytes | None:
        """The signed payload stored for ``message_id``."""
        with self._db.connect() as conn:
            return conn.execute(
                select(outbox.c.payload).where(outbox.c.message_id == message_id)
            ).scalar()

    def messages(
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
        query = select(*_WITHOUT_PAYLOAD).order_by(outbox.c.id)
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
        with self._db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- delivery --------------------------------------------------------------------------

    def claim_due(
        self,
        owner: str,
        limit: int,
        lease_seconds: float,
        *,
        partners: Collection[str] | None = None,
        exclude: Collection[str] = (),
        any_time: bool = False,
    ) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due messages to ``owner``, oldest first.

        Due means pending with ``next_attempt_at`` passed, or sending with an expired lease (a
        worker died mid-send). A row with an ordering key is due only when no earlier row of
        the same partner and key is still pending, sending or dead, so each case has at most
        one message in flight and they leave in submission order; a dead one holds the rest
        of its case until it is replayed or discarded. The lease is written in the same
        transaction that selects (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two workers
        never hold the same row. Returned rows carry the new lease.

        ``partners`` limits the claim to those partners (one delivery pool's), ``exclude``
        leaves some out; ``any_time`` also takes pending rows whose next attempt is still
        ahead (the trial message of a partner's circuit breaker: the oldest of its waiting
        messages, whatever its backoff said). Case order holds either way.
        """
        if partners is not None and not partners:
            return []
        now = utcnow()
        lease_until = now + timedelta(seconds=lease_seconds)
        query = _claim_query(
            partners=partners is not None,
            exclude=bool(exclude),
            any_time=any_time,
            postgres=self._db.postgres,
        )
        params: dict[str, Any] = {"c_now": now, "c_limit": limit}
        if partners is not None:
            params["c_partners"] = sorted(partners)
        if exclude:
            params["c_exclude"] = sorted(exclude)
        with self._db.transaction() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query, params)]
            if not rows:
                return []
            conn.execute(
                _LEASE,
                {
                    "c_ids": [r["id"] for r in rows],
                    "c_owner": owner,
                    "c_until": lease_until,
                    "c_now": now,
                },
            )
        for row in rows:
            row.update(status="sending", lease_owner=owner, lease_until=lease_until)
        return rows

    def release(self, ids: list[int], owner: str) -> int:
        """Give back claimed rows not sent yet (stopping, or the lease would not last)."""
        if not ids:
            return 0
        with self._db.transaction() as conn:
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

    def release_leases_in(self, conn: Connection, owner: str, now: datetime) -> int:
        """Give back every row leased to ``owner``, inside the caller's transaction."""
        return int(
            conn.execute(
                update(outbox)
                .where(outbox.c.lease_owner == owner, outbox.c.status == "sending")
                .values(status="pending", lease_owner=None, lease_until=None, updated_at=now)
            ).rowcount
        )

    def mark_delivered(self, row: dict[str, Any], ack: dict[str, Any], owner: str) -> bool:
        """Record the partner's acknowledgement; False if our lease was lost meanwhile."""
        return self.mark_delivered_many([(row, ack)], owner)[0]

    def mark_delivered_many(
        self, items: list[tuple[dict[str, Any], dict[str, Any]]], owner: str
    ) -> list[bool]:
        """Record several acknowledgements in one transaction (one commit, one fsync: the
        delivery threads' group commit); per item, False if our lease was lost meanwhile.

        A handful of statements whatever the batch size: the rows still leased to ``owner``
        are read (and locked on PostgreSQL), updated in one executemany, and journaled with
        one insert and one advance of the chain head.
        """
        if not items:
            return []
        now = utcnow()
        with self._db.transaction() as conn:
            query = select(outbox.c.id).where(
                outbox.c.id.in_([row["id"] for row, _ in items]), outbox.c.lease_owner == owner
            )
            if self._db.postgres:
                query = query.with_for_update()
            ours = set(conn.execute(query).scalars())
            done = [(row, json.dumps(ack, default=str)) for row, ack in items if row["id"] in ours]
            if done:
                conn.execute(
                    _DELIVERED,
                    [
                        {"b_id": row["id"], "b_owner": owner, "b_ack": ack, "b_now": now}
                        for row, ack in done
                    ],
                )
                self._journal.append_many_in(
                    conn,
                    [
                        (row, {"at": now, "direction": "out", "status": "delivered", "detail": ack})
                        for row, ack in done
                    ],
                )
        return [row["id"] in ours for row, _ in items]

    def mark_failed(
        self,
        row: dict[str, Any],
        *,
        owner: str,
        code: str,
        error: str,
        next_attempt_at: datetime | None,
        counted: bool = True,
    ) -> bool:
        """Record a failed attempt: retry at ``next_attempt_at`` or, when None, dead-letter.

        ``counted=False`` records a send that failed while the partner's circuit breaker was
        open (the partner is down, not this message): the row waits for the partner with its
        attempts unchanged, journaled ``waiting`` instead of ``retry``.
        """
        now = utcnow()
        # A partner's fault text can quote our payload back; stored and journaled masked.
        error = mask_text(error)
        status = "pending" if next_attempt_at is not None else "dead"
        journaled = status if status == "dead" else ("retry" if counted else "waiting")
        with self._db.transaction() as conn:
            done = conn.execute(
                update(outbox)
                .where(outbox.c.id == row["id"], outbox.c.lease_owner == owner)
                .values(
                    status=status,
                    attempts=outbox.c.attempts + (1 if counted else 0),
                    next_attempt_at=next_attempt_at or now,
                    last_error_code=code,
                    last_error=error[:2000],
                    updated_at=now,
                    lease_owner=None,
                    lease_until=None,
                )
            ).rowcount
            if done:
                self._journal.append_in(
                    conn,
                    about=row,
                    at=now,
                    direction="out",
                    status=journaled,
                    error_code=code,
                    detail=error[:2000],
                )
        return bool(done)

    def pull_forward(self, partner: str) -> int:
        """Make every waiting message of ``partner`` due now (its circuit breaker closed).

        Messages that backed off while the partner was down would otherwise sleep out their
        backoff after it is back. Returns how many were moved.
        """
        now = utcnow()
        with self._db.transaction() as conn:
            return int(
                conn.execute(
                    update(outbox)
                    .where(
                        # The live rows only (ix_outbox_live), not the partner's whole history.
                        text(f"outbox.status {_LIVE}"),
                        self._partner_column() == partner,
                        outbox.c.status == "pending",
                        outbox.c.next_attempt_at > now,
                    )
                    .values(next_attempt_at=now, updated_at=now)
                ).rowcount
            )

    def waiting(self, partners: Collection[str]) -> dict[str, int]:
        """Undelivered (pending or sending) messages per partner, for ``partners`` only."""
        if not partners:
            return {}
        with self._db.connect() as conn:
            rows = conn.execute(
                select(outbox.c.partner, func.count())
                .where(
                    text(f"outbox.status {_LIVE}"),
                    self._partner_column().in_(sorted(partners)),
                )
                .group_by(outbox.c.partner)
            )
            return {r[0]: int(r[1]) for r in rows}

    def _partner_column(self) -> Any:
        # On SQLite, a filter on partner alone would use ix_outbox_ordering (every row the
        # partner ever had); see _claim_query.
        return outbox.c.partner if self._db.postgres else _PLAIN_PARTNER

    def empty_delivered_payloads_in(self, conn: Connection, before: datetime) -> int:
        """Retention: empty the payloads of messages delivered before ``before`` (hash stays).

        Inside the caller's transaction, which journals what it removed.
        """
        return int(
            conn.execute(
                update(outbox)
                .where(
                    outbox.c.status == "delivered",
                    outbox.c.delivered_at < before,
                    func.length(outbox.c.payload) > 0,
                )
                .values(payload=b"")
            ).rowcount
        )

    # -- operator actions ------------------------------------------------------------------

    def replay(self, message_id: str, *, actor: str, reason: str) -> bool:
        """Put a dead, discarded or stuck message back in the queue, keeping its id.

        The retry budget starts again (attempts 0, age counted from now); journaled with who
        and why. False when the message is unknown or already delivered.
        """
        now = utcnow()
        with self._db.transaction() as conn:
            row = self._locked_row(conn, message_id)
            if row is None or row.status == "delivered" or _in_flight(row, now):
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
            self._journal.append_in(
                conn,
                about=row,
                at=now,
                direction="local",
                message_id=message_id,
                status="replayed",
                actor=actor,
                detail=reason,
            )
        return True

    def discard(self, message_id: str, *, actor: str, reason: str) -> bool:
        """Give up on an undelivered message for good (status ``discarded``), journaled.

        A discarded message no longer holds later messages of its case. False when the message
        is unknown, delivered, already discarded or being sent right now.
        """
        now = utcnow()
        with self._db.transaction() as conn:
            row = self._locked_row(conn, message_id)
            if row is None or row.status in ("delivered", "discarded") or _in_flight(row, now):
                return False
            conn.execute(
                update(outbox)
                .where(outbox.c.message_id == message_id)
                .values(status="discarded", lease_owner=None, lease_until=None, updated_at=now)
            )
            self._journal.append_in(
                conn,
                about=row,
                at=now,
                direction="local",
                message_id=message_id,
                status="discarded",
                actor=actor,
                detail=reason,
            )
        return True

    def _locked_row(self, conn: Connection, message_id: str) -> Any:
        query = select(
            outbox.c.status,
            outbox.c.partner,
            outbox.c.operation,
            outbox.c.message_type,
            outbox.c.lease_until,
        ).where(outbox.c.message_id == message_id)
        if self._db.postgres:
            query = query.with_for_update()
        return conn.execute(query).first()

    # -- statistics ------------------------------------------------------------------------

    def stats(self, *, window: timedelta = timedelta(minutes=5)) -> dict[str, dict[str, Any]]:
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
        with self._db.connect() as conn:
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

    def gauges(self) -> list[tuple[str, str, str, int, float | None]]:
        """``(partner, operation, status, count, oldest age in seconds)`` for the metrics."""
        now = utcnow()
        with self._db.connect() as conn:
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

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of outbox rows per (partner, status)."""
        with self._db.connect() as conn:
            rows = conn.execute(
                select(outbox.c.partner, outbox.c.status, func.count()).group_by(
                    outbox.c.partner, outbox.c.status
                )
            )
            return {(r[0], r[1]): int(r[2]) for r in rows}


def _in_flight(row: Any, now: datetime) -> bool:
    # A worker holding a live lease may be sending right now: leave the row to it.
    return bool(row.status == "sending" and row.lease_until and row.lease_until >= now)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
