"""Initial store: journal, inbox, outbox, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from gateway.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "journal",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("partner", sa.String(32), nullable=False),
        sa.Column("operation", sa.String(64)),
        sa.Column("message_type", sa.String(64)),
        sa.Column("message_id", sa.String(64)),
        sa.Column("partner_message_id", sa.String(128)),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("detail", sa.Text),
        sa.Column("actor", sa.String(64)),
        sa.Column("payload_sha256", sa.String(64)),
        sa.Column("payload", sa.LargeBinary),
        sa.PrimaryKeyConstraint("id", name="pk_journal"),
    )
    op.create_index("ix_journal_message_id", "journal", ["message_id"])
    op.create_index("ix_journal_partner_at", "journal", ["partner", "at"])

    op.create_table(
        "inbox",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("partner", sa.String(32), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("message_type", sa.String(64), nullable=False),
        sa.Column("partner_message_id", sa.String(128), nullable=False),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("canonical", sa.Text, nullable=False),
        sa.Column("acked_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
        sa.UniqueConstraint("message_id", name="uq_inbox_message_id"),
        sa.UniqueConstraint(
            "partner", "partner_message_id", name="uq_inbox_partner_partner_message_id"
        ),
    )
    op.create_index("ix_inbox_unacked", "inbox", ["acked_at", "id"])

    op.create_table(
        "outbox",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("partner", sa.String(32), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("message_type", sa.String(64), nullable=False),
        sa.Column("ordering_key", sa.String(128)),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("last_error_code", sa.String(64)),
        sa.Column("last_error", sa.Text),
        sa.Column("ack", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_ordering", "outbox", ["partner", "ordering_key", "id"])

    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("message_type", sa.String(64), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("outbox")
    op.drop_table("inbox")
    op.drop_table("journal")
