"""Operations hardening: capped rejected payloads with a size-based retention, write probe.

Revision ID: 0005
Revises: 0004
Create Date: 2027-01-18
"""

import sqlalchemy as sa
from alembic import op

from gateway.store.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_REJECTED = "status = 'rejected' AND payload IS NOT NULL"


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch table copy): nullable columns need none on SQLite either.
    op.add_column("journal", sa.Column("received_size", sa.BigInteger))
    op.add_column("journal", sa.Column("received_sha256", sa.String(64)))
    op.add_column(
        "journal_chain",
        sa.Column("rejected_bytes", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_journal_rejected_payload",
        "journal",
        ["id"],
        sqlite_where=sa.text(_REJECTED),
        postgresql_where=sa.text(_REJECTED),
    )
    # Rejections stored before this revision count against the retention from the start.
    op.execute(
        "UPDATE journal_chain SET rejected_bytes = (SELECT COALESCE(SUM(LENGTH(payload)), 0) "
        "FROM journal WHERE status = 'rejected' AND payload IS NOT NULL)"
    )
    op.create_table(
        "store_probe",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("filler", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_store_probe"),
    )


def downgrade() -> None:
    op.drop_table("store_probe")
    op.drop_index("ix_journal_rejected_payload", table_name="journal")
    with op.batch_alter_table("journal_chain") as batch:
        batch.drop_column("rejected_bytes")
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("received_sha256")
        batch.drop_column("received_size")
