"""Durable delivery engine: journal hash chain, push state of the inbox, live-queue indexes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from gateway.store.chain import GENESIS, entry_hash
from gateway.store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LIVE = "status IN ('pending', 'sending')"
_HELD = "status IN ('pending', 'sending', 'dead')"


def upgrade() -> None:
    with op.batch_alter_table("journal") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(64)))
        batch.add_column(sa.Column("entry_hash", sa.String(64)))
    chain = op.create_table(
        "journal_chain",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("last_id", _Id, nullable=False),
        sa.Column("last_hash", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_journal_chain"),
    )
    last_id, last_hash = _backfill_chain()
    op.bulk_insert(chain, [{"id": 1, "last_id": last_id, "last_hash": last_hash}])

    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("push_status", sa.String(16)))
        batch.add_column(sa.Column("push_attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("push_next_at", UTCDateTime))
        batch.add_column(sa.Column("push_lease_owner", sa.String(64)))
        batch.add_column(sa.Column("push_lease_until", UTCDateTime))
        batch.add_column(sa.Column("push_last_error", sa.Text))
        batch.add_column(sa.Column("pushed_at", UTCDateTime))

    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("replayed_at", UTCDateTime))
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index(
        "ix_outbox_live",
        "outbox",
        ["id"],
        sqlite_where=sa.text(_LIVE),
        postgresql_where=sa.text(_LIVE),
    )
    op.create_index(
        "ix_outbox_held",
        "outbox",
        ["partner", "ordering_key", "id"],
        sqlite_where=sa.text(_HELD),
        postgresql_where=sa.text(_HELD),
    )


def _backfill_chain() -> tuple[int, str | None]:
    """Chain the entries written before this revision, oldest first."""
    bind = op.get_bind()
    journal = sa.table(
        "journal",
        *(
            sa.column(name, UTCDateTime if name == "at" else sa.String)
            for name in (
                "id",
                "at",
                "direction",
                "partner",
                "operation",
                "message_type",
                "message_id",
                "partner_message_id",
                "correlation_id",
                "status",
                "error_code",
                "detail",
                "actor",
                "payload_sha256",
                "prev_hash",
                "entry_hash",
            )
        ),
    )
    prev, last_id = GENESIS, 0
    rows = bind.execute(sa.select(journal).order_by(journal.c.id)).mappings().all()
    for row in rows:
        entry = dict(row)
        entry["id"] = int(entry["id"])
        entry["prev_hash"] = prev
        digest = entry_hash(entry)
        bind.execute(
            sa.update(journal)
            .where(journal.c.id == entry["id"])
            .values(prev_hash=prev, entry_hash=digest)
        )
        prev, last_id = digest, entry["id"]
    return last_id, (prev if rows else None)


def downgrade() -> None:
    op.drop_index("ix_outbox_held", table_name="outbox")
    op.drop_index("ix_outbox_live", table_name="outbox")
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("replayed_at")
    with op.batch_alter_table("inbox") as batch:
        for name in (
            "pushed_at",
            "push_last_error",
            "push_lease_until",
            "push_lease_owner",
            "push_next_at",
            "push_attempts",
            "push_status",
        ):
            batch.drop_column(name)
    op.drop_table("journal_chain")
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("entry_hash")
        batch.drop_column("prev_hash")
