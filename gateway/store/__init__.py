"""Durable store: journal, inbox, outbox and idempotency keys (SQLite WAL or PostgreSQL)."""

from gateway.store.db import create_store_engine, is_sqlite, migrate
from gateway.store.repository import (
    IdempotencyConflictError,
    InboundRecord,
    OutboundRecord,
    Store,
    sha256_hex,
)

__all__ = [
    "IdempotencyConflictError",
    "InboundRecord",
    "OutboundRecord",
    "Store",
    "create_store_engine",
    "is_sqlite",
    "migrate",
    "sha256_hex",
]
