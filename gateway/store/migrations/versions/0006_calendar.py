"""Calendar: resources, busy blocks, bookings, occupancy, published objects, intake.

Revision ID: 0006_calendar
Revises: 0005
Create Date: 2027-02-01

A branch of its own from 0005 (other areas add theirs beside it); ``migrate()`` applies every
head, and a later shared migration merges them.
"""

import sqlalchemy as sa
from alembic import op

from gateway.store.schema import UTCDateTime

revision = "0006_calendar"
down_revision = "0005"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "calendar_resources",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("location", sa.String(200), nullable=True),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("working_hours", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calendar_resources"),
    )
    op.create_table(
        "calendar_busy",
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("busy_id", sa.String(64), nullable=False),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("end", UTCDateTime, nullable=False),
        sa.Column("rrule", sa.String(500), nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("resource_id", "busy_id", name="pk_calendar_busy"),
    )
    op.create_table(
        "calendar_bookings",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("uid", sa.String(255), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("end", UTCDateTime, nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("rrule", sa.String(500), nullable=True),
        sa.Column("organizer", sa.String(255), nullable=True),
        sa.Column("resources", sa.Text, nullable=False),
        sa.Column("inbox_message_id", sa.String(64), nullable=True),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calendar_bookings"),
        sa.UniqueConstraint("uid", name="uq_calendar_bookings_uid"),
    )
    op.create_index("ix_calendar_bookings_status", "calendar_bookings", ["status"])
    op.create_table(
        "calendar_occupancy",
        sa.Column("id", _Id, nullable=False, autoincrement=True),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("end", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calendar_occupancy"),
    )
    op.create_index(
        "ix_calendar_occupancy_resource_id_start", "calendar_occupancy", ["resource_id", "start"]
    )
    op.create_index(
        "ix_calendar_occupancy_source_source_id", "calendar_occupancy", ["source", "source_id"]
    )
    op.create_table(
        "calendar_published",
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("etag", sa.String(200), nullable=True),
        sa.Column("published_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("resource_id", "name", name="pk_calendar_published"),
    )
    op.create_table(
        "calendar_intake",
        sa.Column("href", sa.String(500), nullable=False),
        sa.Column("etag", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("message_id", sa.String(64), nullable=True),
        sa.Column("seen_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("href", name="pk_calendar_intake"),
    )


def downgrade() -> None:
    op.drop_table("calendar_intake")
    op.drop_table("calendar_published")
    op.drop_index("ix_calendar_occupancy_source_source_id", table_name="calendar_occupancy")
    op.drop_index("ix_calendar_occupancy_resource_id_start", table_name="calendar_occupancy")
    op.drop_table("calendar_occupancy")
    op.drop_index("ix_calendar_bookings_status", table_name="calendar_bookings")
    op.drop_table("calendar_bookings")
    op.drop_table("calendar_busy")
    op.drop_table("calendar_resources")
