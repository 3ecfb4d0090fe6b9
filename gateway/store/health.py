"""Readiness of the store: can it answer, and can it still write?

A database that answers reads but refuses writes (full disk, a file made read-only, quota,
a read-only replica after a failover) would otherwise look ready while every accept fails.
The probe writes the way an accept does: a row large enough to need new pages, in a write
transaction that is committed (so the WAL append and its fsync happen too), then deleted in
the same transaction, so nothing stays behind.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError

from gateway.errors import GatewayError, StoreUnavailableError
from gateway.store.schema import store_probe, utcnow

if TYPE_CHECKING:
    from gateway.store import Store

__all__ = ["probe_write", "store_health"]

# Two pages' worth of incompressible bytes: the probe must allocate pages (PostgreSQL would
# compress zeros away, and a small row fits in a page that already exists).
_FILLER = 8 * 1024


def probe_write(store: Store) -> None:
    """Write and delete one probe row in a committed transaction; StoreUnavailableError if not."""
    key = uuid.uuid4().hex
    try:
        with store.db.transaction() as conn:
            row = {"id": key, "at": utcnow(), "filler": os.urandom(_FILLER)}
            conn.execute(insert(store_probe).values(**row))
            conn.execute(delete(store_probe).where(store_probe.c.id == key))
    except DBAPIError as exc:
        # Not only OperationalError: a read-only PostgreSQL transaction is an InternalError.
        raise StoreUnavailableError(f"store unavailable: {str(exc.orig).strip()}") from exc


def store_health(store: Store) -> str:
    """``ok``, ``unavailable: CODE`` (no answer) or ``cannot write: REASON`` for /ready."""
    try:
        with store.db.connect() as conn:
            conn.execute(select(1))
    except Exception as exc:  # any driver error means "not answering"
        code = exc.code if isinstance(exc, GatewayError) else "STORE_UNAVAILABLE"
        return f"unavailable: {code}"
    try:
        probe_write(store)
    except GatewayError as exc:
        return f"cannot write: {exc.message.removeprefix('store unavailable: ')}"
    return "ok"
