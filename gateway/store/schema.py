"""Tables of the store, as SQLAlchemy Core metadata (Alembic migrations mirror this file)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
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
    text,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "UNDELIVERED",
    "UTCDateTime",
    "idempotency_keys",
    "inbox",
    "journal",
    "journal_chain",
    "metadata",
    "outbox",
    "registry_queries",
    "store_probe",
    "utcnow",
]


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Store as UTC; a naive datetime is a bug, not something to guess about."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Return aware UTC whatever the backend kept."""
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
    # Hash chain: entry_hash covers every field above except the payload (so retention can
    # purge payloads) plus prev_hash, the entry_hash of the entry before.
    Column("prev_hash", String(64), nullable=True),
    Column("entry_hash", String(64), nullable=True),
    # A rejected request keeps only a prefix as its payload (journal.rejected_prefix_bytes);
    # these say what the whole body was. Hashed when set (gateway/store/chain.py).
    Column("received_size", BigInteger, nullable=True),
    Column("received_sha256", String(64), nullable=True),
    Index("ix_journal_message_id", "message_id"),
    Index("ix_journal_partner_at", "partner", "at"),
    # Entries still holding a payload, by time: the payload purge reads only those (0013).
    Index(
        "ix_journal_payload_at",
        "at",
        sqlite_where=text("payload IS NOT NULL"),
        postgresql_where=text("payload IS NOT NULL"),
    ),
    # The rejected payloads still kept, for the size-based retention (oldest purged first).
    Index(
        "ix_journal_rejected_payload",
        "id",
        sqlite_where=text("status = 'rejected' AND payload IS NOT NULL"),
        postgresql_where=text("status = 'rejected' AND payload IS NOT NULL"),
    ),
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
    # Reply routing: which institution sent the request an outbound message answers.
    Index("ix_inbox_partner_message_id", "partner_message_id"),
    # Push to a PLUS webhook (optional): pending | sending | delivered | dead; NULL = not yet.
    Column("push_status", String(16), nullable=True),
    Column("push_attempts", Integer, nullable=False, default=0),
    Column("push_next_at", UTCDateTime, nullable=True),
    Column("push_lease_owner", String(64), nullable=True),
    Column("push_lease_until", UTCDateTime, nullable=True),
    Column("push_last_error", Text, nullable=True),
    Column("pushed_at", UTCDateTime, nullable=True),
)

#: The head of the journal's hash chain: one row, locked by every append so the chain stays
#: linear when several instances write to one PostgreSQL database.
journal_chain = Table(
    "journal_chain",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("last_id", _Id, nullable=False),
    Column("last_hash", String(64), nullable=True),
    # Bytes of rejected payloads kept (a running total, recounted when over the retention).
    Column("rejected_bytes", BigInteger, nullable=False, default=0),
)

#: Statuses that hold back later messages with the same partner and ordering key.
UNDELIVERED = ("pending", "sending", "dead")

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
    # Set when an operator replays: retry age (max_age) counts from here instead.
    Column("replayed_at", UTCDateTime, nullable=True),
    # The userId header (officer or system user) every delivery attempt carries.
    Column("user_id", String(64), nullable=True),
    Index("ix_outbox_ordering", "partner", "ordering_key", "id"),
    # The queue statistics (gateway/store/queue_stats.py, migration 0013): the rows not
    # delivered by status, and the rates over the newest rows.
    Index("ix_outbox_status_partner", "status", "partner"),
    Index("ix_outbox_delivered_at", "delivered_at"),
    Index("ix_outbox_created_at", "created_at"),
    # Partial indexes over the live part of the queue, so claims stay fast however many
    # delivered rows accumulate: the claim scan in id order, and the "earlier one of the same
    # case still undelivered" probe. (0001's ix_outbox_due is dropped: without statistics
    # SQLite preferred it and sorted every due row, seconds per claim at 1M queued.)
    Index(
        "ix_outbox_live",
        "id",
        sqlite_where=text("status IN ('pending', 'sending')"),
        postgresql_where=text("status IN ('pending', 'sending')"),
    ),
    Index(
        "ix_outbox_held",
        "partner",
        "ordering_key",
        "id",
        sqlite_where=text("status IN ('pending', 'sending', 'dead')"),
        postgresql_where=text("status IN ('pending', 'sending', 'dead')"),
    ),
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

#: Scratch rows of the readiness write probe (gateway/store/health.py); always empty at rest.
store_probe = Table(
    "store_probe",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("filler", LargeBinary, nullable=False),
)

#: Data-protection audit of registry queries: who looked at whose data, when and why.
#: Holds the personal code (searchable, for "who looked at this person"), never the answer:
#: only its SHA-256, so the answer a decision was based on can be proven without keeping it.
registry_queries = Table(
    "registry_queries",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, default=utcnow),
    Column("registry", String(8), nullable=False),  # viis | iis | vid | rd
    Column("officer_id", String(64), nullable=False),
    Column("purpose", String(500), nullable=False),
    Column("case_id", String(64), nullable=False),
    Column("personal_code", String(16), nullable=False),
    Column("query_id", String(64), nullable=False),  # the VISS message id we sent
    Column("response_id", String(64), nullable=True),  # the registry's reference
    # ok | not_found | timeout | unavailable | circuit_open | error
    Column("status", String(16), nullable=False),
    Column("error_code", String(64), nullable=True),
    Column("answer_sha256", String(64), nullable=True),
    Column("cached", Boolean, nullable=False, default=False),
    Column("duration_ms", Integer, nullable=True),
    Index("ix_registry_queries_personal_code_at", "personal_code", "at"),
    Index("ix_registry_queries_officer_id_at", "officer_id", "at"),
)
