"""Planner statistics: ``ANALYZE`` of the tables whose query plans depend on them.

SQLite's planner knows nothing of an index's selectivity until ``ANALYZE`` has filled
``sqlite_stat1``; without it, a public-list query with two equality filters (a municipality
and a kind) sorted by title walks whichever filter index it meets first (the kind's: a third of
the postings) instead of the municipality's (a seventh), about 50 ms at 10,000 postings
(docs/PERFORMANCE.md). PostgreSQL's autovacuum analyzes on its own, but only after enough
changes; a bulk import is visible to the planner at once when analyzed here.

Only the tables named are analyzed (by default the facade's): statistics change plans, and the
outbox claim was tuned and measured without them (docs/PERFORMANCE.md), so they are not
gathered store-wide. Run by the ``store-analyze`` job (schedules/store-analyze.yaml) and after a
bulk import of postings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import structlog
from sqlalchemy import inspect

from gateway.errors import ConfigError
from gateway.store.db import Database

__all__ = ["FACADE_TABLES", "analyze"]

log = structlog.get_logger(__name__)

#: The facade's tables the public list and the statistics read with several indexes to choose.
FACADE_TABLES: tuple[str, ...] = (
    "vol_opportunities",
    "vol_organisations",
    "vol_applications",
    "vol_hours",
)


def analyze(db: Database, tables: Sequence[str] = FACADE_TABLES) -> dict[str, float]:
    """``ANALYZE`` each of ``tables`` (names checked against the store); seconds per table."""
    known = set(inspect(db.engine).get_table_names())
    unknown = sorted(set(tables) - known)
    if unknown:
        raise ConfigError(f"cannot analyze tables the store does not have: {unknown}")
    took: dict[str, float] = {}
    for table in tables:
        started = time.perf_counter()
        # One statement per table, each its own transaction: a long one on PostgreSQL holds
        # only a share lock of its table, and SQLite's write lock is not kept between them.
        with db.transaction() as conn:
            conn.exec_driver_sql(f'ANALYZE "{table}"')
        took[table] = round(time.perf_counter() - started, 4)
    log.info("planner statistics gathered", tables=took)
    return took
