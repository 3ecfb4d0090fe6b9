"""E-service requests waiting for PLUS, the parties PLUS registers, and their assignments.

Revision ID: 0009_eservices
Revises: 0008_facade_indexes
Create Date: 2026-11-23

A branch of its own beside the other areas' (``migrate()`` applies every head); the lead's
merge migration joins them. The tables are gateway/store/eservices.py's.
"""

import sqlalchemy as sa
from alembic import op

from gateway.store.schema import UTCDateTime

revision = "0009_eservices"
down_revision = "0008_facade_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eservice_requests",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("eservice", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("volunteer_kind", sa.String(32), nullable=True),
        sa.Column("party_key", sa.String(80), nullable=True),
        sa.Column("client_key", sa.String(64), nullable=True),
        sa.Column("recipient_code", sa.String(16), nullable=False),
        sa.Column("minor", sa.Boolean, nullable=False),
        sa.Column("form", sa.String(64), nullable=True),
        sa.Column("form_version", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("pending_sent_at", UTCDateTime, nullable=True),
        sa.Column("pending_message_id", sa.String(64), nullable=True),
        sa.Column("answered_at", UTCDateTime, nullable=True),
        sa.Column("answer_message_id", sa.String(64), nullable=True),
        sa.Column("answer_key", sa.String(200), nullable=True),
        sa.Column("notification_message_id", sa.String(64), nullable=True),
        sa.UniqueConstraint("message_id", name="uq_eservice_requests_message_id"),
    )
    op.create_index("ix_eservice_requests_status", "eservice_requests", ["status", "received_at"])
    op.create_table(
        "eservice_parties",
        sa.Column("party_key", sa.String(80), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("legal_form", sa.String(40), nullable=True),
        sa.Column("state_share_percent", sa.Float, nullable=True),
        sa.Column("volunteer_kind", sa.String(32), nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "eservice_assignments",
        sa.Column("party_key", sa.String(80), nullable=False),
        sa.Column("client_id", sa.String(40), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("assigned_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("party_key", "client_id", name="pk_eservice_assignments"),
    )


def downgrade() -> None:
    op.drop_table("eservice_assignments")
    op.drop_table("eservice_parties")
    op.drop_index("ix_eservice_requests_status", table_name="eservice_requests")
    op.drop_table("eservice_requests")
