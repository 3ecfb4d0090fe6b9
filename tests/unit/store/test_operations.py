"""Operations: capped rejected payloads and their retention, the write probe, lease release,
hidden bound parameters."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.store import InboundRecord, OutboundRecord, Store
from gateway.store.health import store_health
from gateway.store.leases import release_leases
from gateway.store.rejections import enforce_rejected_retention, journal_rejection
from gateway.store.schema import idempotency_keys, journal, journal_chain, utcnow


def reject(store: Store, raw: bytes | None, *, prefix: int = 4096, keep: int = 10**9) -> None:
    journal_rejection(
        store,
        raw=raw,
        prefix_bytes=prefix,
        retention_bytes=keep,
        direction="in",
        partner="tis",
        error_code="XML_MALFORMED",
        detail="not XML",
    )


def rejected_rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(journal).where(journal.c.status == "rejected").order_by(journal.c.id)
        )
        return [dict(r._mapping) for r in rows]


def kept_total(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(journal_chain.c.rejected_bytes)).scalar_one())


# -- rejected payloads -----------------------------------------------------------------------


def test_rejection_keeps_hash_of_whole_body_and_a_prefix(store: Store) -> None:
    body = b"<junk>" + b"x" * 100_000
    reject(store, body, prefix=4096)
    [row] = rejected_rows(store)
    assert row["payload"] == body[:4096]
    assert row["payload_sha256"] == hashlib.sha256(body[:4096]).hexdigest()
    assert row["received_size"] == len(body)
    assert row["received_sha256"] == hashlib.sha256(body).hexdigest()
    assert store.journal.verify().ok
    # the whole body's size and hash are in the chain: changing them is seen
    with store.engine.begin() as conn:
        conn.execute(journal.update().values(received_size=10))
    verdict = store.journal.verify()
    assert not verdict.ok and verdict.bad_id == row["id"]


def test_changed_byte_in_a_kept_prefix_is_seen(store: Store) -> None:
    reject(store, b"<a>" * 10, prefix=16)
    with store.engine.begin() as conn:
        conn.execute(journal.update().values(payload=b"<b>" + b"<a>" * 4 + b"<"))
    verdict = store.journal.verify()
    assert not verdict.ok and "payload changed" in (verdict.problem or "")


def test_short_body_kept_whole_and_no_body_kept_as_metadata(store: Store) -> None:
    reject(store, b"<short/>")
    reject(store, None)
    reject(store, b"<x/>", prefix=0)
    first, second, third = rejected_rows(store)
    assert first["payload"] == b"<short/>" and first["received_size"] == 8
    assert second["payload"] is None and second["received_sha256"] is None
    assert third["payload"] is None and third["received_size"] == 4
    assert kept_total(store) == 8
    assert store.journal.verify().ok


def test_retention_purges_oldest_rejected_payloads_first(store: Store) -> None:
    store.inbox.accept(
        InboundRecord(
            message_id="in-1",
            partner="tis",
            operation="SubmitCourtRuling",
            message_type="tis.court_ruling",
            partner_message_id="p-1",
            correlation_id=None,
            canonical={},
            payload=b"<accepted/>" * 1000,
        )
    )
    for i in range(10):
        reject(store, bytes([65 + i]) * 5000, prefix=1000, keep=4000)
        assert kept_total(store) <= 4000
    rows = rejected_rows(store)
    kept = [r for r in rows if r["payload"] is not None]
    # the newest are kept, the oldest purged, down to three quarters of the bound
    assert kept and kept[-1]["id"] == rows[-1]["id"]
    assert all(r["payload"] is None for r in rows[: len(rows) - len(kept)])
    assert sum(len(r["payload"]) for r in kept) == kept_total(store) <= 4000
    # accepted messages are never touched by it, and the chain still verifies
    with store.engine.connect() as conn:
        accepted = conn.execute(select(journal.c.payload).where(journal.c.id == 1)).scalar()
    assert accepted == b"<accepted/>" * 1000
    verdict = store.journal.verify()
    assert verdict.ok and verdict.checked == 11


def test_enforce_recounts_and_purges_to_the_bound(store: Store) -> None:
    for _ in range(4):
        reject(store, b"y" * 1000)
    assert kept_total(store) == 4000
    assert enforce_rejected_retention(store, 2500) == 2
    assert kept_total(store) == 2000
    assert enforce_rejected_retention(store, 2500) == 0


# -- the write probe ---------------------------------------------------------------------------


def test_store_health_ok_and_leaves_nothing_behind(store: Store) -> None:
    assert store_health(store) == "ok"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM store_probe").scalar() == 0


def test_store_health_reports_a_store_that_cannot_write(store: Store) -> None:
    engine = store.engine
    if engine.dialect.name == "sqlite":
        # A database that cannot grow: the stand-in for a full disk.
        with engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
            assert conn.exec_driver_sql("PRAGMA freelist_count").scalar() == 0

        def limit(dbapi: Any, _record: Any) -> None:
            dbapi.execute(f"PRAGMA max_page_count={pages}")

        event.listen(engine, "connect", limit)
    else:
        # A database that refuses writes (a read-only replica after failover, a full volume).
        def limit(dbapi: Any, _record: Any) -> None:
            dbapi.execute("SET default_transaction_read_only = on")
            dbapi.commit()

        event.listen(engine, "connect", limit)
    engine.dispose()
    health = store_health(store)
    assert health.startswith("cannot write: "), health
    assert "full" in health or "read-only" in health
    event.remove(engine, "connect", limit)
    engine.dispose()
    assert store_health(store) == "ok"


# -- leases -----------------------------------------------------------------------------------


def test_release_leases_gives_back_outbox_and_push_rows_of_one_owner(store: Store) -> None:
    for i in range(3):
        store.outbox.accept(
            OutboundRecord(
                message_id=f"o{i}",
                partner="tis",
                operation="SubmitExecutionNotification",
                message_type="tis.execution_notification",
                payload=b"<signed/>",
                ordering_key=f"case-{i}",
                correlation_id=None,
                idempotency_key=f"k{i}",
                request_sha256=f"h{i}",
            )
        )
    store.inbox.accept(
        InboundRecord(
            message_id="in-1",
            partner="tis",
            operation="SubmitCourtRuling",
            message_type="tis.court_ruling",
            partner_message_id="p-1",
            correlation_id=None,
            canonical={},
            payload=b"<in/>",
        )
    )
    assert len(store.outbox.claim_due("stopping", 2, 120)) == 2
    assert len(store.outbox.claim_due("other", 5, 120)) == 1
    assert len(store.inbox.claim_push("stopping", 1, 120)) == 1
    released = release_leases(store, "stopping")
    assert (released.outbox, released.push) == (2, 1)
    # claimable at once by another worker, not after the 120 s lease
    assert sorted(r["message_id"] for r in store.outbox.claim_due("next", 5, 120)) == ["o0", "o1"]
    assert [r["message_id"] for r in store.inbox.claim_push("next", 1, 120)] == ["in-1"]
    # the other worker's lease is not touched
    assert store.outbox.get("o2")["lease_owner"] == "other"  # type: ignore[index]


# -- bound parameters ---------------------------------------------------------------------------


def test_bound_parameters_never_reach_error_texts(store: Store) -> None:
    # The key is the conflict PostgreSQL itself names in its error detail; every other bound
    # value must stay out of the text.
    row = {
        "key": "conflicting-key",
        "message_type": "t",
        "request_sha256": "150390-12345",
        "message_id": "Bērziņš",
        "created_at": utcnow(),
    }
    with store.engine.begin() as conn:
        conn.execute(insert(idempotency_keys).values(**row))
    with pytest.raises(IntegrityError) as caught, store.engine.begin() as conn:
        conn.execute(insert(idempotency_keys).values(**row))
    text = str(caught.value)
    assert "150390-12345" not in text and "Bērziņš" not in text
    assert "hidden" in text
