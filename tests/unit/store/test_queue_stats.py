"""The queue statistics read model answers what ``Outbox.stats`` answers, from the small parts:
before and after a checkpoint, and when rows below the checkpoint change status."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from gateway.store import OutboundRecord, Store
from gateway.store.queue_stats import checkpoint_in, outbox_totals, stats


def _accept(store: Store, partner: str, case: str) -> str:
    mid = uuid.uuid4().hex
    store.outbox.accept(
        OutboundRecord(
            message_id=mid,
            partner=partner,
            operation="SubmitExecutionNotification",
            message_type="execution_notification",
            payload=b"<signed/>",
            ordering_key=case,
            correlation_id=None,
            idempotency_key=mid,
            request_sha256=mid,
        )
    )
    return mid


def _same(store: Store) -> dict[str, Any]:
    """Both answers, without the oldest age (it grows between the two reads)."""

    def strip(result: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {
            p: {k: v for k, v in s.items() if k != "oldest_age_seconds"}
            | {"has_oldest": s["oldest_age_seconds"] is not None}
            for p, s in result.items()
        }

    expected = strip(store.outbox.stats())
    assert strip(stats(store.db)) == expected
    return expected


def test_same_figures_through_a_lifecycle_and_across_the_checkpoint(store: Store) -> None:
    for i in range(12):
        _accept(store, "tis" if i % 3 else "prois", f"case-{i % 4}")
    first = _same(store)
    assert first["tis"]["counts"] == {"pending": 8} and first["tis"]["depth"] == 8

    # Deliver some, fail one for good (dead: holds its case), leave some in flight.
    claimed = store.outbox.claim_due("w1", 12, 60)
    assert len(claimed) >= 4
    for row in claimed[:3]:
        assert store.outbox.mark_delivered(row, {"status": "ok"}, "w1")
    assert store.outbox.mark_failed(
        claimed[3], owner="w1", code="PARTNER_REJECTED", error="no", next_attempt_at=None
    )
    _accept(store, claimed[3]["partner"], claimed[3]["ordering_key"])  # waits behind it
    held = _same(store)
    assert sum(s["held_by_dead"] for s in held.values()) >= 1  # behind the dead one

    # A checkpoint over every row (tail 0), then more rows and changes below and above it.
    with store.db.transaction() as conn:
        upto = checkpoint_in(conn, settled=timedelta(0))
    with store.db.connect() as conn:
        assert {r.upto_id for r in conn.execute(select(outbox_totals))} == {upto}
    for i in range(5):
        _accept(store, "ievp", f"case-x{i}")
    for row in claimed[4:]:  # rows below the checkpoint become delivered now
        store.outbox.mark_delivered(row, {"status": "ok"}, "w1")
    dead = claimed[3]["message_id"]
    assert store.outbox.discard(dead, actor="op", reason="test")
    after = _same(store)
    assert after["ievp"]["counts"] == {"pending": 5}
    assert sum(sum(s["counts"].values()) for s in after.values()) == 18

    # Rows younger than the settling time stay after the checkpoint.
    with store.db.transaction() as conn:
        assert checkpoint_in(conn) == upto
    # The checkpoint moves again, the answers stay the same.
    with store.db.transaction() as conn:
        assert checkpoint_in(conn, settled=timedelta(0)) > upto
    assert _same(store) == after


def test_without_any_checkpoint_and_on_an_empty_store(store: Store) -> None:
    assert stats(store.db) == {} == store.outbox.stats()
    _accept(store, "tis", "c")
    _same(store)
