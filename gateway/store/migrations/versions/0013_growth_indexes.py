"""Ten years of history (issue 14 part 3): queue statistics and the journal payload purge.

Revision ID: 0013_growth_indexes
Revises: 0008_facade_indexes
Create Date: 2026-11-23

Measured with bench/growth.py (docs/PERFORMANCE.md, "Ten years of growth"): with about 1.2 M
messages, 4 M journal entries and 1.4 M audit rows, the status lookup, the inbox page and the
audit query by person were already index lookups; ``queue stats`` counted every outbox row at
each call (2.5 s on SQLite) and the journal payload purge read every entry since the first.

- ``outbox_totals``: rows per partner up to a checkpoint row id, for the queue statistics read
  model (gateway/store/queue_stats.py): rows are never deleted nor change partner, so the
  count up to a row id never changes, and delivered = rows - the rows not delivered.
- ``ix_outbox_status_partner`` (status, partner): the rows not delivered (pending, sending,
  dead, discarded: few) are a range.
- ``ix_outbox_delivered_at`` and ``ix_outbox_created_at``: the rates over the last minutes are
  ranges of the newest entries instead of a scan of every row ever queued.
- ``ix_journal_payload_at`` (at) over entries that still hold a payload (partial): the journal
  payload purge (retention and ``journal purge``) reads the entries it may purge, not every
  entry since the first.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_growth_indexes"
down_revision = "0008_facade_indexes"
branch_labels = None
depends_on = None

_OUTBOX = {
    "ix_outbox_status_partner": ["status", "partner"],
    "ix_outbox_delivered_at": ["delivered_at"],
    "ix_outbox_created_at": ["created_at"],
}
_HOLDS_PAYLOAD = sa.text("payload IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "outbox_totals",
        sa.Column("partner", sa.String(32), nullable=False),
        sa.Column("upto_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("partner", name="pk_outbox_totals"),
    )
    for name, columns in _OUTBOX.items():
        op.create_index(name, "outbox", columns, unique=False)
    op.create_index(
        "ix_journal_payload_at",
        "journal",
        ["at"],
        unique=False,
        sqlite_where=_HOLDS_PAYLOAD,
        postgresql_where=_HOLDS_PAYLOAD,
    )


def downgrade() -> None:
    op.drop_index("ix_journal_payload_at", table_name="journal")
    for name in _OUTBOX:
        op.drop_index(name, table_name="outbox")
    op.drop_table("outbox_totals")
