"""Planner statistics (gateway/store/maintenance.py) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from gateway.errors import ConfigError
from gateway.store import Store
from gateway.store.facade import FacadeStore
from gateway.store.maintenance import FACADE_TABLES, analyze


def _postings(store: Store, count: int) -> None:
    facade = FacadeStore(store.db)
    number = "40000000077"
    facade.listings.create_organisation(
        number,
        {
            "registration_number": number,
            "name": "Biedrība",
            "type": "association",
            "field": "culture",
            "contacts": {"email": "org@example.lv"},
        },
    )
    now = datetime.now(UTC)
    facade.listings.import_many(
        number,
        [
            {
                "external_ref": f"r-{i}",
                "title": f"Talka {i}",
                "place": {"municipality": ["Cēsu novads", "Ogres novads"][i % 2]},
                "duties": "Palīdzēt",
                "deadline": now + timedelta(days=5),
                "volunteers_needed": 2,
                "kind": ["regular", "on_demand", "one_off"][i % 3],
            }
            for i in range(count)
        ],
    )


def test_analyze_gathers_statistics_of_the_facade_tables(store: Store) -> None:
    _postings(store, 60)
    took = analyze(store.db)
    assert set(took) == set(FACADE_TABLES)
    with store.db.connect() as conn:
        if store.db.postgres:
            analyzed = conn.execute(
                text(
                    "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                    "WHERE relname = 'vol_opportunities' AND schemaname = current_schema()"
                )
            ).scalar()
            assert analyzed
        else:
            indexes = {
                row[0]
                for row in conn.execute(
                    text("SELECT idx FROM sqlite_stat1 WHERE tbl = 'vol_opportunities'")
                )
            }
            # Every filter index has its selectivity now (what the planner lacked).
            assert {"ix_vol_opportunities_municipality", "ix_vol_opportunities_kind"} <= indexes
            # The outbox was tuned without statistics: they are not gathered store-wide.
            outbox = conn.execute(
                text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'outbox'")
            ).scalar()
            assert outbox == 0


def test_unknown_tables_are_refused(store: Store) -> None:
    with pytest.raises(ConfigError, match="no_such_table"):
        analyze(store.db, ["vol_opportunities", "no_such_table"])
