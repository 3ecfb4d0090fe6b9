"""Volunteer facade: indexes of the public list (filters, orders, full text).

Revision ID: 0008_facade_indexes
Revises: 0007_merge_areas
Create Date: 2026-11-23

A revision of its own rather than an amendment of 0006_facade: stores already at 0006_facade
(developers' and test databases) get the indexes too, which an edited 0006 would never reach.
After the merge of the areas' branches (0007_merge_areas), so the store keeps one head.

- ``municipality_key`` and ``city_key``: the case-folded municipality and city (what
  ``place_key`` holds) as columns, filled from the rows here and by ``opportunity_columns``
  afterwards, so those filters are equality on an index instead of a LIKE over every row.
- One index per equality filter (municipality, city, kind, digital, organisation), each
  ordered by deadline like the default page; one per other order (newest, title); on SQLite
  the dates and ``skills_key`` beside the deadline, so those counts read the index alone.
- Text and skills: on SQLite an FTS5 table with the trigram tokenizer (substring matching,
  which is what the LIKE filters do) over ``search_text`` and ``skills_key``, external content
  kept in step by triggers; skipped when the SQLite build lacks FTS5 or trigram (3.34+), and
  the list then keeps the plain LIKE. On PostgreSQL, pg_trgm GIN indexes of the same columns,
  which the planner can use for ``LIKE '%...%'`` itself (the extension goes to ``public``,
  not to the first schema of the search path); skipped (with the LIKE scan) when the
  extension cannot be created by this role.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_facade_indexes"
down_revision = "0007_merge_areas"
branch_labels = None
depends_on = None

_TABLE = "vol_opportunities"
_FTS = "vol_opportunities_fts"
_INDEXES = {
    "ix_vol_opportunities_municipality": ["status", "municipality_key", "deadline", "id"],
    "ix_vol_opportunities_city": ["status", "city_key", "deadline", "id"],
    "ix_vol_opportunities_kind": ["status", "kind", "deadline", "id"],
    "ix_vol_opportunities_organisation_listed": ["organisation_id", "status", "deadline", "id"],
    "ix_vol_opportunities_digital": ["status", "digital", "deadline", "id"],
    "ix_vol_opportunities_created": ["status", "created_at", "id"],
    "ix_vol_opportunities_title": ["status", "title", "id"],
}
_SQLITE_INDEXES = {
    "ix_vol_opportunities_scan": ["status", "deadline", "starts_at", "ends_at", "skills_key"]
}
_PG_TRIGRAM = {
    "ix_vol_opportunities_search_trgm": "search_text",
    "ix_vol_opportunities_skills_trgm": "skills_key",
}
# The FTS5 table holds no text of its own (external content): the triggers tell it what each
# insert, delete and change of the indexed columns did to vol_opportunities.
_FTS_CREATE = (
    "CREATE VIRTUAL TABLE vol_opportunities_fts USING fts5(search_text, skills_key, "
    "content='vol_opportunities', content_rowid='id', tokenize='trigram case_sensitive 1')"
)
_FTS_NEW = (
    "INSERT INTO vol_opportunities_fts(rowid, search_text, skills_key) "
    "VALUES (new.id, new.search_text, new.skills_key);"
)
_FTS_OLD = (
    "INSERT INTO vol_opportunities_fts(vol_opportunities_fts, rowid, search_text, skills_key) "
    "VALUES ('delete', old.id, old.search_text, old.skills_key);"
)
_FTS_REBUILD = "INSERT INTO vol_opportunities_fts(vol_opportunities_fts) VALUES ('rebuild')"
_TRIGGERS = {
    "vol_opportunities_fts_ai": "AFTER INSERT ON vol_opportunities BEGIN " + _FTS_NEW + " END",
    "vol_opportunities_fts_ad": "AFTER DELETE ON vol_opportunities BEGIN " + _FTS_OLD + " END",
    "vol_opportunities_fts_au": "AFTER UPDATE OF search_text, skills_key ON vol_opportunities "
    "BEGIN " + _FTS_OLD + " " + _FTS_NEW + " END",
}


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column(
        _TABLE, sa.Column("municipality_key", sa.Text(), nullable=False, server_default="")
    )
    op.add_column(_TABLE, sa.Column("city_key", sa.Text(), nullable=False, server_default=""))
    _fill_keys(bind)
    for name, columns in _INDEXES.items():
        op.create_index(name, _TABLE, columns, unique=False)
    if bind.dialect.name == "sqlite":
        for name, columns in _SQLITE_INDEXES.items():
            op.create_index(name, _TABLE, columns, unique=False)
        _sqlite_fts(bind)
    elif bind.dialect.name == "postgresql":
        _postgres_trigram(bind)


def _fill_keys(bind: sa.Connection) -> None:
    table = sa.table(
        _TABLE,
        sa.column("id"),
        sa.column("city"),
        sa.column("municipality"),
        sa.column("municipality_key"),
        sa.column("city_key"),
    )
    rows = bind.execute(sa.select(table.c.id, table.c.city, table.c.municipality)).all()
    values = [
        {"row_id": r.id, "m": (r.municipality or "").casefold(), "c": (r.city or "").casefold()}
        for r in rows
        if r.municipality or r.city
    ]
    if values:
        bind.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"))
            .values(municipality_key=sa.bindparam("m"), city_key=sa.bindparam("c")),
            values,
        )


def _sqlite_fts(bind: sa.Connection) -> None:
    try:
        bind.exec_driver_sql(_FTS_CREATE)
    except sa.exc.OperationalError:
        # No FTS5 or no trigram tokenizer in this SQLite build: the list keeps the LIKE scan.
        return
    for name, body in _TRIGGERS.items():
        bind.exec_driver_sql(f"CREATE TRIGGER {name} {body}")
    bind.exec_driver_sql(_FTS_REBUILD)


def _postgres_trigram(bind: sa.Connection) -> None:
    schema = _trigram_schema(bind)
    if schema is None:
        # The extension is not there and this role may not create it (pg_trgm is trusted
        # from PostgreSQL 13: a database owner may): the LIKE filters scan, as before.
        return
    opclass = f"{bind.dialect.identifier_preparer.quote_identifier(schema)}.gin_trgm_ops"
    try:
        with bind.begin_nested():
            for name, column in _PG_TRIGRAM.items():
                bind.exec_driver_sql(
                    f"CREATE INDEX {name} ON {_TABLE} USING gin ({column} {opclass})"
                )
    except sa.exc.DBAPIError:
        return  # an index of convenience: the list answers the same without it


def _trigram_schema(bind: sa.Connection) -> str | None:
    """Where pg_trgm lives, creating it (in ``public`` if possible) when it is not there."""
    found = "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    schema = bind.exec_driver_sql(found).scalar()
    # In public rather than the first schema of the search path: a schema dropped later
    # (a test's) would take the extension and every index using it along.
    for create in (
        "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public",
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    ):
        if schema is not None:
            break
        try:
            with bind.begin_nested():
                bind.exec_driver_sql(create)
        except sa.exc.DBAPIError:
            continue
        schema = bind.exec_driver_sql(found).scalar()
    return None if schema is None else str(schema).strip('"')


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in _TRIGGERS:
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS {_FTS}")
        for name in _SQLITE_INDEXES:
            op.drop_index(name, table_name=_TABLE)
    elif bind.dialect.name == "postgresql":
        for name in _PG_TRIGRAM:
            bind.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    for name in _INDEXES:
        op.drop_index(name, table_name=_TABLE)
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): no copy of a table others refer to.
    op.drop_column(_TABLE, "city_key")
    op.drop_column(_TABLE, "municipality_key")
