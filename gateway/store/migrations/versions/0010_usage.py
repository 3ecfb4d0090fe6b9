"""E-service usage counts (KPI-01), the distinct clients using them (KPI-05), and the totals
PLUS supplies for the indicators (KPI-02 to KPI-05).

Revision ID: 0010_usage
Revises: 0008_facade_indexes
Create Date: 2026-11-23

A branch of its own beside the other areas' (``migrate()`` applies every head); the lead's
merge migration joins them. The tables are gateway/store/usage.py's and
gateway/store/indicators.py's.
"""

import sqlalchemy as sa
from alembic import op

from gateway.store.schema import UTCDateTime

revision = "0010_usage"
down_revision = "0008_facade_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eservice_usage",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("eservice", sa.String(32), nullable=False),
        sa.Column("recipient_type", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("uses", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "eservice", "recipient_type", "outcome", name="pk_eservice_usage"
        ),
    )
    op.create_table(
        "eservice_usage_clients",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("client_key", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("month", "client_key", name="pk_eservice_usage_clients"),
    )
    op.create_table(
        "indicator_totals",
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("measure", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("period", "measure", name="pk_indicator_totals"),
    )


def downgrade() -> None:
    op.drop_table("indicator_totals")
    op.drop_table("eservice_usage_clients")
    op.drop_table("eservice_usage")
