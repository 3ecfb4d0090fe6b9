"""The outbox's part in partner outages: claims per pool, waiting without spending attempts,
pulling waiting messages forward, the trial claim and the waiting counts (both backends)."""

from __future__ import annotations

from datetime import timedelta

from gateway.store import OutboundRecord, Store
from gateway.store.schema import utcnow


def out(mid: str, partner: str = "tis", case: str | None = "K-1") -> OutboundRecord:
    return OutboundRecord(
        message_id=mid,
        partner=partner,
        operation="SubmitExecutionNotification",
        message_type="execution_notification",
        payload=b"<signed/>",
        ordering_key=case,
        correlation_id=case,
        idempotency_key=f"key-{mid}",
        request_sha256=f"h-{mid}",
    )


def ids(rows: list[dict]) -> list[str]:
    return [r["message_id"] for r in rows]


def test_claim_by_partner_and_exclude(store: Store) -> None:
    for mid, partner, case in [("t1", "tis", "A"), ("p1", "prois", "B"), ("e1", "em", "C")]:
        store.outbox.accept(out(mid, partner, case))
    assert ids(store.outbox.claim_due("w", 10, 60, partners=[])) == []
    assert ids(store.outbox.claim_due("w", 10, 60, partners=["prois", "em"])) == ["p1", "e1"]
    assert ids(store.outbox.claim_due("w", 10, 60, exclude={"tis"})) == []
    assert ids(store.outbox.claim_due("w", 10, 60, exclude={"prois"})) == ["t1"]


def test_waiting_failure_keeps_attempts_and_journals_waiting(store: Store) -> None:
    store.outbox.accept(out("m1"))
    [row] = store.outbox.claim_due("w", 1, 60)
    later = utcnow() + timedelta(hours=1)
    assert store.outbox.mark_failed(
        row,
        owner="w",
        code="PARTNER_UNAVAILABLE",
        error="down",
        next_attempt_at=later,
        counted=False,
    )
    got = store.outbox.get("m1")
    assert got is not None
    assert got["status"] == "pending" and got["attempts"] == 0
    assert got["last_error_code"] == "PARTNER_UNAVAILABLE"
    assert [e["status"] for e in store.journal.for_message("m1")] == ["accepted", "waiting"]
    assert store.outbox.claim_due("w", 1, 60) == []  # its time has not come


def test_trial_claim_takes_the_oldest_waiting_message_whatever_its_backoff(store: Store) -> None:
    for mid, case in [("a1", "A"), ("a2", "A"), ("b1", "B")]:
        store.outbox.accept(out(mid, case=case))
    for row in store.outbox.claim_due("w", 10, 60):
        store.outbox.mark_failed(
            row,
            owner="w",
            code="PARTNER_TIMEOUT",
            error="slow",
            next_attempt_at=utcnow() + timedelta(minutes=5),
        )
    assert store.outbox.claim_due("w", 10, 60) == []
    trial = store.outbox.claim_due("w", 1, 60, partners=["tis"], any_time=True)
    assert ids(trial) == ["a1"]  # the oldest; a2 stays behind it (case order)
    assert ids(store.outbox.claim_due("w", 10, 60, partners=["tis"], any_time=True)) == ["b1"]


def test_pull_forward_makes_the_waiting_due_and_counts_them(store: Store) -> None:
    for mid, partner, case in [("t1", "tis", "A"), ("t2", "tis", "B"), ("p1", "prois", "C")]:
        store.outbox.accept(out(mid, partner, case))
    for row in store.outbox.claim_due("w", 10, 60):
        store.outbox.mark_failed(
            row,
            owner="w",
            code="PARTNER_UNAVAILABLE",
            error="down",
            next_attempt_at=utcnow() + timedelta(minutes=5),
            counted=False,
        )
    assert store.outbox.waiting(["tis", "prois", "em"]) == {"tis": 2, "prois": 1}
    assert store.outbox.waiting([]) == {}
    assert store.outbox.pull_forward("tis") == 2
    assert store.outbox.pull_forward("tis") == 0  # already due
    assert sorted(ids(store.outbox.claim_due("w", 10, 60))) == ["t1", "t2"]  # not prois's


def test_group_commit_records_several_deliveries_in_order(store: Store) -> None:
    for mid, case in [("a", "A"), ("b", "B"), ("c", "C")]:
        store.outbox.accept(out(mid, case=case))
    rows = store.outbox.claim_due("w", 10, 60)
    rows[1]["lease_owner"] = "someone else"
    store.outbox.release([rows[1]["id"]], "w")  # b's lease is no longer ours
    results = store.outbox.mark_delivered_many([(r, {"Status": "ACCEPTED"}) for r in rows], "w")
    assert results == [True, False, True]
    statuses = [(store.outbox.get(m) or {}).get("status") for m in "abc"]
    assert statuses == ["delivered", "pending", "delivered"]
    assert store.journal.verify().ok
