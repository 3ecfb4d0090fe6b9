"""Stores over real databases: a temp SQLite file, and PostgreSQL when configured."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.store import Store, create_store_engine, migrate
from tests.conftest import postgres_url

SKIP_PG = (
    "PostgreSQL tests need PLUSGW_TEST_POSTGRES_URL, e.g. "
    "PLUSGW_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test make test"
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on each backend (PostgreSQL in a throwaway schema)."""
    if request.param == "sqlite":
        engine = create_store_engine(f"sqlite:///{tmp_path}/store.db")
        migrate(engine)
        yield Store(engine)
        engine.dispose()
        return
    url = postgres_url()
    if not url:
        pytest.skip(SKIP_PG)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_store_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    engine = create_store_engine(f"{url}{sep}options=-csearch_path%3D{schema}")
    migrate(engine)
    try:
        yield Store(engine)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
