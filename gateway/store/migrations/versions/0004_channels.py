"""E-case channel: the userId header of each outbound message, replies found by request id.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The officer (or system user) on whose behalf PLUS sent the message: the userId header
    # of every delivery attempt, so a resend carries the same header as the first try.
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("user_id", sa.String(64), nullable=True))
    # Reply routing looks up the request an outbound message answers by the sender's id.
    op.create_index("ix_inbox_partner_message_id", "inbox", ["partner_message_id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_partner_message_id", table_name="inbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("user_id")
