"""The journal area: an append-only, hash-chained record of everything that happened.

Other areas add their entries with :meth:`Journal.append_in`, inside their own transaction, so a
state change and its entry commit together. The rest of the area lives beside this module: the
chain's canonical hash (gateway/store/chain.py), verification (gateway/store/verify.py), signed
checkpoints kept outside the database (gateway/store/anchor.py) and the bounded journaling of
refused requests (gateway/store/rejections.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import StoreUnavailableError
from gateway.store.chain import GENESIS, entry_hash, sha256_hex
from gateway.store.db import Database
from gateway.store.schema import journal, journal_chain, utcnow
from gateway.store.verify import AnchorPoint, ChainVerdict, verify_journal

__all__ = ["ChainHead", "Journal"]

# Built once: the append runs in every write transaction, and constructing statements (and
# their cache keys) per call showed up as a tenth of the server's CPU in profiles.
_CHAIN_HEAD = (
    select(journal_chain.c.last_id, journal_chain.c.last_hash)
    .where(journal_chain.c.id == 1)
    .with_for_update()
)
_INSERT = insert(journal)
_CHAIN_ADVANCE = (
    update(journal_chain)
    .where(journal_chain.c.id == 1)
    .values(last_id=bindparam("new_id"), last_hash=bindparam("new_hash"))
)
_WITHOUT_PAYLOAD = [c for c in journal.c if c.name != "payload"]

#: What an entry about a stored message copies from it.
_ABOUT_FIELDS = ("partner", "operation", "message_type", "message_id", "correlation_id")


@dataclass(frozen=True)
class ChainHead:
    """The chain head and the number of entries, read in one snapshot."""

    entry_id: int
    entry_hash: str | None
    count: int


def _entry(about: Any, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` completed from the stored message ``about`` (its ids), payload hash, time."""
    if about is not None:
        source = about._mapping if hasattr(about, "_mapping") else about
        if not isinstance(source, dict) and not hasattr(source, "keys"):
            source = vars(source)
        for key in _ABOUT_FIELDS:
            if key in source:
                values.setdefault(key, source[key])
    payload = values.get("payload")
    if payload is not None and "payload_sha256" not in values:
        values["payload_sha256"] = sha256_hex(payload)
    values.setdefault("at", utcnow())
    return values


class Journal:
    """Appends to, reads, purges and verifies the ``journal`` table and its chain head."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def append_in(self, conn: Connection, *, about: Any = None, **values: Any) -> None:
        """Append one entry to the hash chain, inside the caller's transaction ``conn``.

        ``about`` (a row, a mapping or a record dataclass) is the stored message the entry is
        about: its partner, operation, message type and ids are copied where it has them, and
        ``values`` add or override. The chain head row is locked first (SELECT ... FOR UPDATE
        on PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes writers), so appends from
        several instances form one linear chain. Ids are assigned here, gap-free, under that
        lock. Call it last in a transaction so the lock is held only until the commit.
        """
        values = _entry(about, values)
        head = conn.execute(_CHAIN_HEAD).first()
        if head is None:
            raise StoreUnavailableError("journal chain head missing; run the migrations")
        values["id"] = int(head.last_id) + 1
        values["prev_hash"] = head.last_hash or GENESIS
        values["entry_hash"] = entry_hash(values)
        conn.execute(_INSERT, values)
        conn.execute(_CHAIN_ADVANCE, {"new_id": values["id"], "new_hash": values["entry_hash"]})

    def append_many_in(
        self, conn: Connection, entries: Sequence[tuple[Any, dict[str, Any]]]
    ) -> None:
        """Append several entries, in order, inside the caller's transaction ``conn``.

        Each entry is ``(about, values)`` as for :meth:`append_in`; the chain head is read and
        advanced once and the entries inserted in one statement (a batch of deliveries), the
        same chain as appending them one by one. Entries must carry the same fields.
        """
        if not entries:
            return
        head = conn.execute(_CHAIN_HEAD).first()
        if head is None:
            raise StoreUnavailableError("journal chain head missing; run the migrations")
        last_id, last_hash = int(head.last_id), head.last_hash or GENESIS
        rows = []
        for about, values in entries:
            entry = _entry(about, dict(values))
            last_id += 1
            entry["id"] = last_id
            entry["prev_hash"] = last_hash
            entry["entry_hash"] = last_hash = entry_hash(entry)
            rows.append(entry)
        keys = set().union(*rows)
        conn.execute(_INSERT, [{k: r.get(k) for k in keys} for r in rows])
        conn.execute(_CHAIN_ADVANCE, {"new_id": last_id, "new_hash": last_hash})

    def append(self, **values: Any) -> None:
        """Append one entry in its own transaction (rejections, operator actions)."""
        with self._db.transaction() as conn:
            self.append_in(conn, **values)

    def count_messages(
        self,
        *,
        direction: str,
        status: str,
        message_types: Iterable[str],
        since: datetime,
        until: datetime,
    ) -> int:
        """Distinct messages of ``message_types`` journaled with ``direction`` and ``status``
        in ``[since, until)``: a message journaled twice (a replayed delivery) counts once."""
        query = select(func.count(func.distinct(journal.c.message_id))).where(
            journal.c.direction == direction,
            journal.c.status == status,
            journal.c.message_type.in_(list(message_types)),
            journal.c.at >= since,
            journal.c.at < until,
        )
        with self._db.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def for_message(self, message_id: str) -> list[dict[str, Any]]:
        """Entries of one message, oldest first, without payloads."""
        query = (
            select(*_WITHOUT_PAYLOAD)
            .where(journal.c.message_id == message_id)
            .order_by(journal.c.id)
        )
        with self._db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def purge_payloads(self, older_than: timedelta, *, actor: str) -> int:
        """Retention: null payloads older than ``older_than``; hashes stay, journaled."""
        now = utcnow()
        cutoff = now - older_than
        with self._db.transaction() as conn:
            purged = self.purge_payloads_in(conn, cutoff)
            self.append_in(
                conn,
                at=now,
                direction="local",
                partner="gateway",
                status="purged",
                actor=actor,
                detail=f"payloads of {purged} entries before {cutoff.isoformat()} removed",
            )
        return purged

    def purge_payloads_in(
        self, conn: Connection, before: datetime, *, status: str | None = None
    ) -> int:
        """Null the payloads of entries older than ``before`` (only ``status`` ones if given).

        Inside the caller's transaction, which journals what it removed. The chain still
        verifies: ``payload_sha256`` stands for a payload in it.
        """
        query = update(journal).where(journal.c.at < before, journal.c.payload.is_not(None))
        if status is not None:
            query = query.where(journal.c.status == status)
        return int(conn.execute(query.values(payload=None)).rowcount)

    def verify(
        self,
        batch: int = 5000,
        *,
        anchors: Sequence[AnchorPoint] = (),
        anchor_problems: Sequence[str] = (),
    ) -> ChainVerdict:
        """Walk the hash chain, payload hashes and anchors (see gateway/store/verify.py)."""
        return verify_journal(
            self._db.engine, anchors=anchors, anchor_problems=anchor_problems, batch=batch
        )

    def head(self) -> ChainHead:
        """The chain head and the number of entries, read in one snapshot (for anchors)."""
        try:
            conn = self._db.connect()
            if self._db.postgres:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn:
                row = conn.execute(
                    select(journal_chain.c.last_id, journal_chain.c.last_hash).where(
                        journal_chain.c.id == 1
                    )
                ).first()
                count = int(conn.execute(select(func.count()).select_from(journal)).scalar_one())
        except SQLAlchemyError as exc:
            raise StoreUnavailableError(f"store unavailable: {type(exc).__name__}") from exc
        if row is None:
            raise StoreUnavailableError("journal chain head missing; run the migrations")
        return ChainHead(entry_id=int(row.last_id), entry_hash=row.last_hash, count=count)
