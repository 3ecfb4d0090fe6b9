from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.store import (
    IdempotencyConflictError,
    InboundRecord,
    OutboundRecord,
    Store,
    sha256_hex,
)
from gateway.store.schema import journal, utcnow


def outbound(
    message_id: str = "m-1", key: str = "k-1", body: str = "h1", case: str | None = "K-1"
) -> OutboundRecord:
    return OutboundRecord(
        message_id=message_id,
        partner="tis",
        operation="SubmitExecutionNotification",
        message_type="tis.execution_notification",
        payload=b"<signed/>",
        ordering_key=case,
        correlation_id=None,
        idempotency_key=key,
        request_sha256=body,
    )


def inbound(message_id: str = "i-1", partner_id: str = "TIS-1") -> InboundRecord:
    return InboundRecord(
        message_id=message_id,
        partner="tis",
        operation="SubmitCourtRuling",
        message_type="tis.court_ruling",
        partner_message_id=partner_id,
        correlation_id=None,
        canonical={"case": {"number": "K-1"}},
        payload=b"<soap/>",
    )


def test_accept_outbound_writes_outbox_journal_and_key(store: Store) -> None:
    assert store.outbox.accept(outbound()) == ("m-1", True)
    row = store.outbox.get("m-1")
    assert row is not None and row["status"] == "pending" and row["attempts"] == 0
    assert row["payload_sha256"] == sha256_hex(b"<signed/>")
    assert store.outbox.payload("m-1") == b"<signed/>"
    entries = store.journal.for_message("m-1")
    assert [e["status"] for e in entries] == ["accepted"]
    assert entries[0]["payload_sha256"] == sha256_hex(b"<signed/>")


def test_same_key_same_body_returns_first_message(store: Store) -> None:
    store.outbox.accept(outbound())
    assert store.outbox.accept(outbound(message_id="m-2")) == ("m-1", False)
    assert store.outbox.get("m-2") is None
    assert store.idempotency.resolve("k-1", "h1") == "m-1"


def test_same_key_other_body_conflicts(store: Store) -> None:
    store.outbox.accept(outbound())
    with pytest.raises(IdempotencyConflictError) as info:
        store.outbox.accept(outbound(message_id="m-2", body="other"))
    assert info.value.message_id == "m-1"


def test_concurrent_same_key_stores_one_message(store: Store) -> None:
    results: list[tuple[str, bool]] = []

    def go(i: int) -> None:
        results.append(store.outbox.accept(outbound(message_id=f"m-{i}")))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = {r[0] for r in results}
    assert len(ids) == 1
    assert sum(1 for r in results if r[1]) == 1
    assert len(store.outbox.messages()) == 1


def test_claim_leases_and_hides_rows(store: Store) -> None:
    for i in range(3):
        store.outbox.accept(outbound(message_id=f"m-{i}", key=f"k-{i}", case=f"K-{i}"))
    first = store.outbox.claim_due("w1", 2, 60)
    assert [r["message_id"] for r in first] == ["m-0", "m-1"]
    second = store.outbox.claim_due("w2", 5, 60)
    assert [r["message_id"] for r in second] == ["m-2"]
    assert store.outbox.claim_due("w3", 5, 60) == []


def test_expired_lease_is_claimed_again(store: Store) -> None:
    store.outbox.accept(outbound())
    store.outbox.claim_due("w1", 1, -1)  # lease already expired: as if w1 died mid-send
    again = store.outbox.claim_due("w2", 1, 60)
    assert [r["message_id"] for r in again] == ["m-1"]
    # the dead worker's late answer is not recorded over the new owner's lease
    assert not store.outbox.mark_delivered(again[0], {"Status": "ACCEPTED"}, "w1")
    assert store.outbox.mark_delivered(again[0], {"Status": "ACCEPTED"}, "w2")
    row = store.outbox.get("m-1")
    assert row is not None and row["status"] == "delivered" and row["attempts"] == 1


def test_failure_schedules_retry_or_dead_letter(store: Store) -> None:
    store.outbox.accept(outbound())
    row = store.outbox.claim_due("w", 1, 60)[0]
    later = utcnow() + timedelta(hours=1)
    store.outbox.mark_failed(
        row, owner="w", code="PARTNER_UNAVAILABLE", error="down", next_attempt_at=later
    )
    got = store.outbox.get("m-1")
    assert got is not None and got["status"] == "pending" and got["attempts"] == 1
    assert store.outbox.claim_due("w", 1, 60) == []  # not due yet
    store.outbox.replay("m-1", actor="test", reason="partner is back")
    row = store.outbox.claim_due("w", 1, 60)[0]
    store.outbox.mark_failed(
        row, owner="w", code="PARTNER_REJECTED", error="no", next_attempt_at=None
    )
    got = store.outbox.get("m-1")
    assert (
        got is not None and got["status"] == "dead" and got["last_error_code"] == "PARTNER_REJECTED"
    )
    statuses = [e["status"] for e in store.journal.for_message("m-1")]
    assert statuses == ["accepted", "retry", "replayed", "dead"]
    replayed = next(e for e in store.journal.for_message("m-1") if e["status"] == "replayed")
    assert replayed["actor"] == "test" and replayed["detail"] == "partner is back"


def test_inbound_dedupes_by_partner_message_id(store: Store) -> None:
    assert store.inbox.accept(inbound()) == ("i-1", True)
    assert store.inbox.accept(inbound(message_id="i-2")) == ("i-1", False)
    rows = store.inbox.page(0, 10)
    assert [r["message_id"] for r in rows] == ["i-1"]
    with store.engine.connect() as conn:
        statuses = conn.execute(select(journal.c.status).order_by(journal.c.id)).scalars().all()
    assert statuses == ["accepted", "duplicate"]


def test_inbox_cursor_and_ack(store: Store) -> None:
    for i in range(5):
        store.inbox.accept(inbound(message_id=f"i-{i}", partner_id=f"TIS-{i}"))
    page = store.inbox.page(0, 2)
    assert [r["message_id"] for r in page] == ["i-0", "i-1"]
    page2 = store.inbox.page(page[-1]["id"], 10)
    assert [r["message_id"] for r in page2] == ["i-2", "i-3", "i-4"]
    acked = store.inbox.ack("i-0")
    assert acked is not None and acked["acked_at"] is not None
    assert store.inbox.ack("i-0") is not None  # idempotent
    assert next(r["message_id"] for r in store.inbox.page(0, 10)) == "i-1"
    assert len(store.inbox.page(0, 10, include_acked=True)) == 5
    assert store.inbox.ack("nope") is None
