"""Tables of the volunteer facade (``vol_*``), mirrored by migration ``0006_facade``.

They hang off the store's one :data:`~gateway.store.schema.metadata`, so the naming convention
and the UTC column type are shared with every other area.

Personal data lives in ``vol_volunteers`` (names, contacts, personal code), in the free texts
of applications and messages and in issued certificate PDFs; erasure clears exactly those and
keeps the rows, so hours, certificates and the live counters still add up in statistics.
Hours are kept in whole minutes: equality of the two records is then exact.

The public list's indexes (migration ``0008_facade_indexes``): one per equality filter
(organisation included), each ordered by deadline like the default page; one per other order;
on SQLite the dates and ``skills_key`` beside the deadline, so those counts read the index
alone. Beyond these tables, on SQLite only, the migration makes :data:`FTS_TABLE`, an FTS5
trigram index of ``search_text`` and ``skills_key`` kept in step by triggers; on PostgreSQL,
trigram GIN indexes (pg_trgm) of the same two columns, which its planner can use for the LIKE
filters directly.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from gateway.store.schema import UTCDateTime, metadata, utcnow

__all__ = [
    "FTS_TABLE",
    "applications",
    "attachments",
    "certificates",
    "hours",
    "messages",
    "opportunities",
    "organisations",
    "volunteers",
]

_Id = BigInteger().with_variant(Integer(), "sqlite")

#: The FTS5 table over ``vol_opportunities`` (SQLite only; made by ``0008_facade_indexes``).
FTS_TABLE = "vol_opportunities_fts"

#: An organisation, keyed by its registration number (what the issuer asserts in tokens).
organisations = Table(
    "vol_organisations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("type", String(32), nullable=False),
    Column("field", String(32), nullable=False),
    Column("municipality", String(100), nullable=True),
    # The whole profile (VOL-03..08) as JSON; the columns above are what lists filter on.
    Column("profile", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
)

#: A posting. ``applied``/``approved`` are the live counters of the public list, kept in the
#: row so the list needs no join and a last-seat application is one conditional UPDATE.
opportunities = Table(
    "vol_opportunities",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column(
        "organisation_id",
        String(32),
        ForeignKey("vol_organisations.id", name="fk_vol_opportunities_organisation"),
        nullable=False,
    ),
    Column("external_ref", String(100), nullable=True),
    Column("title", String(200), nullable=False),
    Column("duties", Text, nullable=False),
    Column("city", String(100), nullable=True),
    Column("municipality", String(100), nullable=True),
    Column("digital", Boolean, nullable=False, default=False),
    Column("starts_at", UTCDateTime, nullable=True),
    Column("ends_at", UTCDateTime, nullable=True),
    Column("expected_hours", Float, nullable=True),
    Column("deadline", UTCDateTime, nullable=False),
    Column("desired_profile", Text, nullable=True),
    Column("skills", Text, nullable=False),  # JSON list
    Column("skills_key", Text, nullable=False),  # "|skill|skill|", lower case, for filters
    Column("volunteers_needed", Integer, nullable=False),
    Column("applied", Integer, nullable=False, default=0),
    Column("approved", Integer, nullable=False, default=0),
    Column("benefits", Text, nullable=True),
    Column("kind", String(16), nullable=False),  # regular | on_demand | one_off
    Column("search_text", Text, nullable=False),  # lower-case title, duties, profile, place
    Column("place_key", Text, nullable=False),  # "|city:rīga|municipality:rīga|", lower case
    # casefold() of municipality and city ("" when none), for the indexed equality filters.
    Column("municipality_key", Text, nullable=False, server_default=""),
    Column("city_key", Text, nullable=False, server_default=""),
    Column("status", String(16), nullable=False),  # published | archived
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    Column("archived_at", UTCDateTime, nullable=True),
    UniqueConstraint("organisation_id", "external_ref"),
    Index("ix_vol_opportunities_status_deadline", "status", "deadline", "id"),
    Index("ix_vol_opportunities_organisation_id", "organisation_id", "id"),
    # The public list (0008_facade_indexes): filters in deadline order, the other orders.
    Index("ix_vol_opportunities_municipality", "status", "municipality_key", "deadline", "id"),
    Index("ix_vol_opportunities_city", "status", "city_key", "deadline", "id"),
    Index("ix_vol_opportunities_kind", "status", "kind", "deadline", "id"),
    Index("ix_vol_opportunities_digital", "status", "digital", "deadline", "id"),
    Index(
        "ix_vol_opportunities_organisation_listed", "organisation_id", "status", "deadline", "id"
    ),
    # SQLite only: what the date and skill filters test beside the deadline, so their counts
    # read the index alone. PostgreSQL's B-tree entries are too small for 20 long skills;
    # its trigram GIN index of skills_key and its planner's statistics serve there.
    Index(
        "ix_vol_opportunities_scan", "status", "deadline", "starts_at", "ends_at", "skills_key"
    ).ddl_if(dialect="sqlite"),
    Index("ix_vol_opportunities_created", "status", "created_at", "id"),
    Index("ix_vol_opportunities_title", "status", "title", "id"),
)

#: A volunteer: ``anonymous`` keeps an alias only; ``identified`` adds name and contacts.
#: ``subject`` is the issuer's ``sub`` (the credential lives with the issuer, not here).
volunteers = Table(
    "vol_volunteers",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("subject", String(200), nullable=True, unique=True),
    Column("mode", String(16), nullable=False),  # anonymous | identified | erased
    Column("alias", String(64), nullable=False),
    Column("first_name", String(100), nullable=True),
    Column("last_name", String(100), nullable=True),
    Column("email", String(254), nullable=True),
    Column("phone", String(32), nullable=True),
    Column("personal_code", String(16), nullable=True),
    Column("municipality", String(100), nullable=True),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("erased_at", UTCDateTime, nullable=True),
)

applications = Table(
    "vol_applications",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column(
        "opportunity_id",
        _Id,
        ForeignKey("vol_opportunities.id", name="fk_vol_applications_opportunity"),
        nullable=False,
    ),
    Column(
        "volunteer_id",
        _Id,
        ForeignKey("vol_volunteers.id", name="fk_vol_applications_volunteer"),
        nullable=False,
    ),
    Column("status", String(16), nullable=False),  # pending | approved | declined | withdrawn
    Column("motivation", Text, nullable=True),
    Column("decision_reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("decided_at", UTCDateTime, nullable=True),
    UniqueConstraint("opportunity_id", "volunteer_id"),
    Index("ix_vol_applications_volunteer_id", "volunteer_id"),
)

#: The organiser reaching a volunteer (anonymous ones too) through the platform.
messages = Table(
    "vol_messages",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column(
        "application_id",
        _Id,
        ForeignKey("vol_applications.id", name="fk_vol_messages_application"),
        nullable=False,
    ),
    Column("sender", String(16), nullable=False),  # volunteer | organisation
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Index("ix_vol_messages_application_id", "application_id", "id"),
)

#: One day of work on one application, as the volunteer and the organiser each recorded it.
hours = Table(
    "vol_hours",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column(
        "application_id",
        _Id,
        ForeignKey("vol_applications.id", name="fk_vol_hours_application"),
        nullable=False,
    ),
    Column("work_date", Date, nullable=False),
    Column("volunteer_minutes", Integer, nullable=True),
    Column("organiser_minutes", Integer, nullable=True),
    Column("approved_minutes", Integer, nullable=True),
    Column("volunteer_note", Text, nullable=True),
    Column("organiser_note", Text, nullable=True),
    Column("approved_at", UTCDateTime, nullable=True),
    Column("approved_by", String(200), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    UniqueConstraint("application_id", "work_date"),
)

#: A certificate (izziņa) from draft to sealed PDF. ``number`` is set when it is issued.
certificates = Table(
    "vol_certificates",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("number", String(32), nullable=True, unique=True),
    Column(
        "application_id",
        _Id,
        ForeignKey("vol_applications.id", name="fk_vol_certificates_application"),
        nullable=False,
    ),
    Column("volunteer_id", _Id, nullable=False),
    Column("organisation_id", String(32), nullable=False),
    Column("origin", String(16), nullable=False),  # organisation | volunteer
    Column("status", String(16), nullable=False),  # draft | submitted | returned | issued
    Column("competences", Text, nullable=False),  # JSON list
    Column("description", Text, nullable=True),
    Column("return_reason", Text, nullable=True),
    Column("minutes", Integer, nullable=True),  # approved time it certifies, fixed at issue
    Column("period_from", Date, nullable=True),
    Column("period_to", Date, nullable=True),
    Column("pdf", LargeBinary, nullable=True),
    Column("pdf_sha256", String(64), nullable=True),
    Column("holder_erased", Boolean, nullable=False, default=False),
    Column("issued_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    Index("ix_vol_certificates_volunteer_id", "volunteer_id"),
    Index("ix_vol_certificates_organisation_id", "organisation_id"),
)

#: Extra documents of a certificate; embedded in the PDF (and so under its seal) at issue.
attachments = Table(
    "vol_attachments",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column(
        "certificate_id",
        _Id,
        ForeignKey("vol_certificates.id", name="fk_vol_attachments_certificate"),
        nullable=False,
    ),
    Column("filename", String(200), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", LargeBinary, nullable=True),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Index("ix_vol_attachments_certificate_id", "certificate_id"),
)
