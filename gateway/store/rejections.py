"""Journaling refused requests with a bounded cost: a capped prefix and a size-based retention.

A refused request is evidence (what did the partner, or an attacker, send?), but keeping every
body whole lets anyone grow the database by tens of megabytes per junk POST. So the journal
keeps the SHA-256 and size of the whole body (``received_sha256``, ``received_size``, both in
the hash chain) and at most ``prefix_bytes`` of it as the payload (``payload_sha256`` is the
hash of the bytes kept, so ``journal verify`` checks them like any payload). The payloads of
rejections together stay under ``retention_bytes``: past it, the oldest are purged (set to
NULL; their hashes and the chain stay intact) down to three quarters of the bound, so the
purge runs once per quarter of the bound rather than on every rejection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select, text, update

from gateway.store.chain import sha256_hex
from gateway.store.schema import journal, journal_chain

if TYPE_CHECKING:
    from gateway.store import Store

__all__ = ["enforce_rejected_retention", "journal_rejection", "rejection_payload"]

_REJECTED = "rejected"
# Literal, not a bound parameter: SQLite uses a partial index only when it can see that the
# query's condition implies the index's.
_KEPT = text("journal.status = 'rejected' AND journal.payload IS NOT NULL")


def rejection_payload(raw: bytes | None, prefix_bytes: int) -> dict[str, Any]:
    """Journal fields for a refused body: its size and hash, and a prefix as the payload."""
    if raw is None:
        return {}
    kept = raw[: max(prefix_bytes, 0)]
    return {
        "received_size": len(raw),
        "received_sha256": sha256_hex(raw),
        "payload": kept or None,
        "payload_sha256": sha256_hex(kept) if kept else None,
    }


def journal_rejection(
    store: Store,
    *,
    raw: bytes | None,
    prefix_bytes: int,
    retention_bytes: int,
    **values: Any,
) -> None:
    """Append one ``rejected`` entry for ``raw`` and keep rejected payloads under the bound.

    ``values`` are the entry's other fields (direction, partner, error_code, detail, ...). The
    entry, the running total and any purge share one transaction.
    """
    fields = rejection_payload(raw, prefix_bytes if retention_bytes > 0 else 0)
    with store.db.transaction() as conn:
        # The append locks the chain head row; the total lives in that row, so concurrent
        # rejections (several instances) add up correctly.
        store.journal.append_in(conn, **values, status=_REJECTED, **fields)
        kept = len(fields.get("payload") or b"")
        if not kept:
            return
        total = conn.execute(
            update(journal_chain)
            .where(journal_chain.c.id == 1)
            .values(rejected_bytes=journal_chain.c.rejected_bytes + kept)
            .returning(journal_chain.c.rejected_bytes)
        ).scalar_one()
        if total > retention_bytes:
            _purge_oldest(conn, retention_bytes)


def enforce_rejected_retention(store: Store, retention_bytes: int) -> int:
    """Purge the oldest rejected payloads until they fit ``retention_bytes``; how many."""
    with store.db.transaction() as conn:
        conn.execute(select(journal_chain.c.id).where(journal_chain.c.id == 1).with_for_update())
        return _purge_oldest(conn, retention_bytes, low_water=retention_bytes)


def _purge_oldest(conn: Connection, retention_bytes: int, low_water: int | None = None) -> int:
    """Keep the newest rejected payloads that fit ``low_water`` bytes, purge the rest.

    Walks newest first over the partial index of kept rejected payloads, so it reads only the
    rows that stay (plus one), then purges everything older in one statement and stores the
    exact total left, which also corrects a total that drifted (age-based purges).
    """
    budget = retention_bytes * 3 // 4 if low_water is None else low_water
    kept = 0
    cutoff: int | None = None
    rows = conn.execute(
        select(journal.c.id, func.length(journal.c.payload))
        .where(_KEPT)
        .order_by(journal.c.id.desc())
    )
    for entry_id, size in rows:
        if kept + int(size) > budget:
            cutoff = int(entry_id)
            break
        kept += int(size)
    rows.close()
    purged = 0
    if cutoff is not None:
        purged = int(
            conn.execute(
                update(journal).where(_KEPT, journal.c.id <= cutoff).values(payload=None)
            ).rowcount
        )
    conn.execute(update(journal_chain).where(journal_chain.c.id == 1).values(rejected_bytes=kept))
    return purged
