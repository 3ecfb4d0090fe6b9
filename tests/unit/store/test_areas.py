"""The store by area: one transaction helper shared, writes across areas atomic, tables owned."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from sqlalchemy import Table, func, select

from gateway.store import InboundRecord, OutboundRecord, Store
from gateway.store.schema import idempotency_keys, inbox, journal, outbox, utcnow

GATEWAY = Path(__file__).resolve().parents[3] / "gateway"

#: The area of a store module that is not named after its area.
_AREA_OF = {
    "chain": "journal",
    "verify": "journal",
    "anchor": "journal",
    "rejections": "journal",
    # The outbox area's statistics read model, beside outbox.py (as verify.py beside journal.py).
    "queue_stats": "outbox",
    "health": "health",
}
#: Owners of the tables in gateway/store/schema.py (an area's other tables live in its module).
_SCHEMA_OWNER = {
    "journal": "journal",
    "journal_chain": "journal",
    "inbox": "inbox",
    "outbox": "outbox",
    "idempotency_keys": "idempotency",
    "store_probe": "health",
    "registry_queries": "audit",
}


def _area(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["gateway", "store"] or len(parts) < 3:
        return None
    return _AREA_OF.get(parts[2], parts[2])


def _records(n: int) -> tuple[InboundRecord, OutboundRecord]:
    return (
        InboundRecord(
            message_id=f"in-{n}",
            partner="tis",
            operation="SubmitCourtRuling",
            message_type="court_ruling",
            partner_message_id=f"TIS-{n}",
            correlation_id=None,
            canonical={"n": n},
            payload=b"<in/>",
        ),
        OutboundRecord(
            message_id=f"out-{n}",
            partner="tis",
            operation="SubmitEvaluationReport",
            message_type="evaluation_report",
            payload=b"<out/>",
            ordering_key=None,
            correlation_id=None,
            idempotency_key=f"k-{n}",
            request_sha256="h",
        ),
    )


def _counts(store: Store) -> tuple[int, ...]:
    with store.engine.connect() as conn:
        return tuple(
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (inbox, outbox, idempotency_keys, journal)
        )


def test_areas_share_the_stores_one_database(store: Store) -> None:
    for area in (store.journal, store.idempotency, store.outbox, store.inbox, store.audit):
        assert area._db is store.db


def test_a_write_across_areas_commits_or_rolls_back_as_one(store: Store) -> None:
    received, answer = _records(1)
    with pytest.raises(RuntimeError), store.db.transaction() as conn:
        store.inbox.accept_in(conn, received, at=utcnow())
        store.outbox.accept_in(conn, answer, at=utcnow())
        raise RuntimeError("the caller fails after both areas wrote")
    assert _counts(store) == (0, 0, 0, 0)

    with store.db.transaction() as conn:
        assert store.inbox.accept_in(conn, received, at=utcnow()) == ("in-1", True)
        assert store.outbox.accept_in(conn, answer, at=utcnow()) == "out-1"
    assert _counts(store) == (1, 1, 1, 2)
    assert [e["status"] for e in store.journal.for_message("out-1")] == ["accepted"]
    assert store.journal.verify().ok


def test_no_module_reaches_into_another_areas_tables() -> None:
    """An area's tables are imported only by that area; others go through its methods."""
    trespass = []
    for path in sorted(GATEWAY.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        module = ".".join(path.relative_to(GATEWAY.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module):
                continue
            if not node.module.startswith("gateway.store"):
                continue
            source = importlib.import_module(node.module)
            for alias in node.names:
                table = getattr(source, alias.name, None)
                if not isinstance(table, Table):
                    continue
                owner = (
                    _SCHEMA_OWNER.get(table.name)
                    if node.module == "gateway.store.schema"
                    else _area(node.module)
                )
                if owner is None or owner != _area(module):
                    trespass.append(f"{module} imports {table.name} (area {owner})")
    assert trespass == []
