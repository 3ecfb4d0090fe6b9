"""Data-protection audit of registry queries (who looked at whose data, when and why).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from gateway.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "registry_queries",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("registry", sa.String(8), nullable=False),
        sa.Column("officer_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(500), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("personal_code", sa.String(16), nullable=False),
        sa.Column("query_id", sa.String(64), nullable=False),
        sa.Column("response_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("answer_sha256", sa.String(64)),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("duration_ms", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_registry_queries"),
    )
    op.create_index(
        "ix_registry_queries_personal_code_at", "registry_queries", ["personal_code", "at"]
    )
    op.create_index("ix_registry_queries_officer_id_at", "registry_queries", ["officer_id", "at"])


def downgrade() -> None:
    op.drop_table("registry_queries")
