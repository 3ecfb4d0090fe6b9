"""Migration 0013_growth_indexes: the indexes exist, and the queries they serve give the same
results with and without them, over a small slice of bench.growth's ten years of history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import inspect, select, text

from bench.growth import GrowthPlan, generate
from gateway.store import Store
from gateway.store.schema import inbox, outbox, registry_queries

_INDEXES = (
    "ix_outbox_status_partner",
    "ix_outbox_delivered_at",
    "ix_outbox_created_at",
    "ix_journal_payload_at",
)


def _indexes(store: Store) -> tuple[str, ...]:
    return _INDEXES


def _answers(store: Store) -> dict[str, Any]:
    """What the status lookup, inbox pages, audit search and queue stats answer."""
    with store.db.connect() as conn:
        ids = [r[0] for r in conn.execute(select(outbox.c.message_id).order_by(outbox.c.id))]
        codes = [
            r[0]
            for r in conn.execute(
                select(registry_queries.c.personal_code).order_by(registry_queries.c.id.desc())
            )
        ]
        last = conn.execute(select(inbox.c.id).order_by(inbox.c.id.desc()).limit(1)).scalar()
    stats = store.outbox.stats(window=timedelta(days=3650))
    return {
        "status": [store.outbox.get(m) for m in ids[:: max(1, len(ids) // 40)]],
        "inbox": store.inbox.page(0, 100),
        "inbox_all": [store.inbox.page(a, 50, include_acked=True) for a in range(0, last, 97)],
        "audit": [store.audit.search(c) for c in codes[:: max(1, len(codes) // 40)]],
        "stats": {
            p: {k: v for k, v in s.items() if k != "oldest_age_seconds"} for p, s in stats.items()
        },
    }


def test_indexes_change_no_answer(store: Store) -> None:
    engine = store.db.engine
    names = {ix["name"] for ix in inspect(engine).get_indexes("outbox")}
    names |= {ix["name"] for ix in inspect(engine).get_indexes("journal")}
    assert set(_indexes(store)) <= names
    # An hour back, so that the rates over the last minutes do not move between the two reads.
    summary = generate(
        engine, GrowthPlan(scale=0.0005, end=datetime.now(UTC) - timedelta(hours=1)), progress=False
    )
    assert summary["rows"]["outbox"] > 100 and summary["rows"]["registry_queries"] > 400
    assert store.journal.verify().ok  # the generated chain is one the real verification accepts
    with_indexes = _answers(store)
    with engine.begin() as conn:
        for name in _indexes(store):
            conn.execute(text(f"DROP INDEX {name}"))
    assert _answers(store) == with_indexes
