"""Volunteer facade: organisations, opportunities, volunteers, applications, messages, hours,
certificates and their attachments (gateway/store/facade/tables.py).

Revision ID: 0006_facade
Revises: 0005
Create Date: 2027-02-01

A branch of its own off 0005 (other areas add 0006_calendar and 0006_jobs); ``migrate()``
applies every head until a later shared revision merges them.
"""

import sqlalchemy as sa
from alembic import op

from gateway.store.schema import UTCDateTime

revision = "0006_facade"
down_revision = "0005"
branch_labels = None
depends_on = None

# 64-bit keys on PostgreSQL that are still ROWID aliases on SQLite.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_TABLES = (
    "vol_attachments",
    "vol_certificates",
    "vol_hours",
    "vol_messages",
    "vol_applications",
    "vol_volunteers",
    "vol_opportunities",
    "vol_organisations",
)


def upgrade() -> None:
    op.create_table(
        "vol_organisations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("municipality", sa.String(length=100), nullable=True),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vol_organisations")),
    )
    op.create_table(
        "vol_opportunities",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("organisation_id", sa.String(length=32), nullable=False),
        sa.Column("external_ref", sa.String(length=100), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("duties", sa.Text(), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("municipality", sa.String(length=100), nullable=True),
        sa.Column("digital", sa.Boolean(), nullable=False),
        sa.Column("starts_at", UTCDateTime, nullable=True),
        sa.Column("ends_at", UTCDateTime, nullable=True),
        sa.Column("expected_hours", sa.Float(), nullable=True),
        sa.Column("deadline", UTCDateTime, nullable=False),
        sa.Column("desired_profile", sa.Text(), nullable=True),
        sa.Column("skills", sa.Text(), nullable=False),
        sa.Column("skills_key", sa.Text(), nullable=False),
        sa.Column("volunteers_needed", sa.Integer(), nullable=False),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("approved", sa.Integer(), nullable=False),
        sa.Column("benefits", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("place_key", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("archived_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["vol_organisations.id"], name="fk_vol_opportunities_organisation"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vol_opportunities")),
        sa.UniqueConstraint(
            "organisation_id",
            "external_ref",
            name=op.f("uq_vol_opportunities_organisation_id_external_ref"),
        ),
    )
    op.create_index(
        "ix_vol_opportunities_organisation_id",
        "vol_opportunities",
        ["organisation_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_vol_opportunities_status_deadline",
        "vol_opportunities",
        ["status", "deadline", "id"],
        unique=False,
    )
    op.create_table(
        "vol_volunteers",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("personal_code", sa.String(length=16), nullable=True),
        sa.Column("municipality", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("erased_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vol_volunteers")),
        sa.UniqueConstraint("subject", name=op.f("uq_vol_volunteers_subject")),
    )
    op.create_table(
        "vol_applications",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("opportunity_id", _ID, nullable=False),
        sa.Column("volunteer_id", _ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("motivation", sa.Text(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("decided_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["opportunity_id"], ["vol_opportunities.id"], name="fk_vol_applications_opportunity"
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"], ["vol_volunteers.id"], name="fk_vol_applications_volunteer"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vol_applications")),
        sa.UniqueConstraint(
            "opportunity_id",
            "volunteer_id",
            name=op.f("uq_vol_applications_opportunity_id_volunteer_id"),
        ),
    )
    op.create_index(
        "ix_vol_applications_volunteer_id", "vol_applications", ["volunteer_id"], unique=False
    )
    op.create_table(
        "vol_messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("application_id", _ID, nullable=False),
        sa.Column("sender", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"], ["vol_applications.id"], name="fk_vol_messages_application"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vol_messages")),
    )
    op.create_index(
        "ix_vol_messages_application_id", "vol_messages", ["application_id", "id"], unique=False
    )
    op.create_table(
        "vol_hours",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("application_id", _ID, nullable=False),
        sa.Column("work_date", sa.Date(), nullable=False),
        sa.Column("volunteer_minutes", sa.Integer(), nullable=True),
        sa.Column("organiser_minutes", sa.Integer(), nullable=True),
        sa.Column("approved_minutes", sa.Integer(), nullable=True),
        sa.Column("volunteer_note", sa.Text(), nullable=True),
        sa.Column("organiser_note", sa.Text(), nullable=True),
        sa.Column("approved_at", UTCDateTime, nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"], ["vol_applications.id"], name="fk_vol_hours_application"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vol_hours")),
        sa.UniqueConstraint(
            "application_id", "work_date", name=op.f("uq_vol_hours_application_id_work_date")
        ),
    )
    op.create_table(
        "vol_certificates",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("application_id", _ID, nullable=False),
        sa.Column("volunteer_id", _ID, nullable=False),
        sa.Column("organisation_id", sa.String(length=32), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("competences", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("return_reason", sa.Text(), nullable=True),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("period_from", sa.Date(), nullable=True),
        sa.Column("period_to", sa.Date(), nullable=True),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=True),
        sa.Column("holder_erased", sa.Boolean(), nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"], ["vol_applications.id"], name="fk_vol_certificates_application"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vol_certificates")),
        sa.UniqueConstraint("number", name=op.f("uq_vol_certificates_number")),
    )
    op.create_index(
        "ix_vol_certificates_organisation_id", "vol_certificates", ["organisation_id"], unique=False
    )
    op.create_index(
        "ix_vol_certificates_volunteer_id", "vol_certificates", ["volunteer_id"], unique=False
    )
    op.create_table(
        "vol_attachments",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("certificate_id", _ID, nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["vol_certificates.id"], name="fk_vol_attachments_certificate"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vol_attachments")),
    )
    op.create_index(
        "ix_vol_attachments_certificate_id", "vol_attachments", ["certificate_id"], unique=False
    )


def downgrade() -> None:
    for table in _TABLES:
        op.drop_table(table)
