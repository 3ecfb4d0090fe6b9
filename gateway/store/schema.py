"""Tables of the store, as SQLAlchemy Core metadata (Alembic migrations mirror this file)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = ["UTCDateTime", "idempotency_keys", "inbox", "journal", "metadata", "outbox", "utcnow"]


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Integer keys that are 64-bit on PostgreSQL and still ROWID aliases on SQLite.
_Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Every message in and out, every rejection and every operator action.
journal = Table(
    "journal",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, default=utcnow),
    Column("direction", String(8), nullable=False),  # in | out | local
    Column("partner", String(32), nullable=False),
    Column("operation", String(64), nullable=True),
    Column("message_type", String(64), nullable=True),
    Column("message_id", String(64), nullable=True),
    Column("partner_message_id", String(128), nullable=True),
    Column("correlation_id", String(64), nullable=True),
    Column("status", String(32), nullable=False),
    Column("error_code", String(64), nullable=True),
    # Never personal data: error messages and operator notes written by the gateway.
    Column("detail", Text, nullable=True),
    Column("actor", String(64), nullable=True),
    Column("payload_sha256", String(64), nullable=True),
    Column("payload", LargeBinary, nullable=True),
    Index("ix_journal_message_id", "message_id"),
    Index("ix_journal_partner_at", "partner", "at"),
)

#: Messages received from partners, in canonical JSON, for PLUS to pull and ack.
inbox = Table(
    "inbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),  # the cursor
    Column("message_id", String(64), nullable=False, unique=True),
    Column("partner", String(32), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("message_type", String(64), nullable=False),
    Column("partner_message_id", String(128), nullable=False),
    Column("correlation_id", String(64), nullable=True),
    Column("received_at", UTCDateTime, nullable=False, default=utcnow),
    Column("canonical", Text, nullable=False),
    Column("acked_at", UTCDateTime, nullable=True),
    UniqueConstraint("partner", "partner_message_id"),
    Index("ix_inbox_unacked", "acked_at", "id"),
)

#: Signed messages waiting for (or done with) delivery to a partner.
outbox = Table(
    "outbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),  # submission order
    Column("message_id", String(64), nullable=False, unique=True),
    Column("partner", String(32), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("message_type", String(64), nullable=False),
    Column("ordering_key", String(128), nullable=True),
    Column("correlation_id", String(64), nullable=True),
    Column("payload", LargeBinary, nullable=False),
    Column("payload_sha256", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # pending | sending | delivered | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_error_code", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("ack", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    Column("delivered_at", UTCDateTime, nullable=True),
    Index("ix_outbox_due", "status", "next_attempt_at"),
    Index("ix_outbox_ordering", "partner", "ordering_key", "id"),
)

#: PLUS's Idempotency-Key header: the same key answers the same message.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("message_type", String(64), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
)
