"""Stores over real databases: a temp SQLite file, and PostgreSQL when configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import Store, create_store_engine, migrate
from tests.conftest import SKIP_PG, postgres_schema

__all__ = ["SKIP_PG", "store"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on each backend (PostgreSQL in a throwaway schema)."""
    if request.param == "sqlite":
        engine = create_store_engine(f"sqlite:///{tmp_path}/store.db")
        migrate(engine)
        yield Store(engine)
        engine.dispose()
        return
    with postgres_schema() as url:
        engine = create_store_engine(url)
        migrate(engine)
        try:
            yield Store(engine)
        finally:
            engine.dispose()
