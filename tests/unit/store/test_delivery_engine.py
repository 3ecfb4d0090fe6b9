"""Outbox ordering, dead letters, replay, leases, push state and the journal chain."""

from __future__ import annotations

import threading
from datetime import timedelta

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import delete, insert, select, update

from gateway.store import InboundRecord, OutboundRecord, Store
from gateway.store.db import _MIGRATIONS
from gateway.store.schema import journal, utcnow


def out(
    mid: str, case: str | None = "K-1", op: str = "SubmitExecutionNotification"
) -> OutboundRecord:
    return OutboundRecord(
        message_id=mid,
        partner="tis",
        operation=op,
        message_type="tis.execution_notification",
        payload=b"<signed/>",
        ordering_key=case,
        correlation_id=case,
        idempotency_key=f"key-{mid}",
        request_sha256=f"h-{mid}",
    )


def claim_ids(store: Store, owner: str = "w", limit: int = 10) -> list[str]:
    return [r["message_id"] for r in store.outbox.claim_due(owner, limit, 60)]


def deliver(store: Store, mid: str, owner: str = "w") -> None:
    row = store.outbox.get(mid)
    assert row is not None
    assert store.outbox.mark_delivered(row, {"Status": "ACCEPTED"}, owner)


def kill(store: Store, mid: str, owner: str = "w", code: str = "PARTNER_REJECTED") -> None:
    row = store.outbox.get(mid)
    assert row is not None
    assert store.outbox.mark_failed(row, owner=owner, code=code, error="no", next_attempt_at=None)


def test_one_message_per_case_in_flight_in_submission_order(store: Store) -> None:
    for mid, case in [("a1", "A"), ("a2", "A"), ("b1", "B"), ("a3", "A"), ("n1", None)]:
        store.outbox.accept(out(mid, case))
    assert claim_ids(store) == ["a1", "b1", "n1"]  # a2, a3 wait behind a1; B and None do not
    assert claim_ids(store) == []
    deliver(store, "a1")
    assert claim_ids(store) == ["a2"]
    row = store.outbox.get("a2")
    assert row is not None
    store.outbox.mark_failed(
        row, owner="w", code="PARTNER_UNAVAILABLE", error="down", next_attempt_at=utcnow()
    )
    assert claim_ids(store) == ["a2"]  # retrying keeps its place; a3 still waits
    deliver(store, "a2")
    assert claim_ids(store) == ["a3"]


def test_dead_letter_holds_its_case_until_replayed_or_discarded(store: Store) -> None:
    for mid in ("a1", "a2", "a3"):
        store.outbox.accept(out(mid, "A"))
    store.outbox.accept(out("b1", "B"))
    assert claim_ids(store) == ["a1", "b1"]
    kill(store, "a1")
    deliver(store, "b1")
    assert claim_ids(store) == []
    stats = store.outbox.stats()["tis"]
    assert stats["counts"]["dead"] == 1 and stats["held_by_dead"] == 2
    assert stats["depth"] == 2 and stats["oldest_age_seconds"] is not None
    dead = store.outbox.messages(status="dead", code="PARTNER_REJECTED", partner="tis")
    assert [r["message_id"] for r in dead] == ["a1"]
    # replay keeps the id and restarts the retry budget
    assert store.outbox.replay("a1", actor="ops", reason="partner fixed")
    row = store.outbox.get("a1")
    assert row is not None and row["status"] == "pending" and row["attempts"] == 0
    assert row["replayed_at"] is not None
    assert claim_ids(store) == ["a1"]
    kill(store, "a1")
    # discard releases the rest of the case
    assert store.outbox.discard("a1", actor="ops", reason="sent by fax instead")
    assert not store.outbox.discard("a1", actor="ops", reason="twice")
    assert claim_ids(store) == ["a2"]
    entries = [(e["status"], e["actor"], e["detail"]) for e in store.journal.for_message("a1")]
    assert ("replayed", "ops", "partner fixed") in entries
    assert ("discarded", "ops", "sent by fax instead") in entries
    assert store.outbox.stats()["tis"]["held_by_dead"] == 0


def test_in_flight_message_cannot_be_replayed_or_discarded(store: Store) -> None:
    store.outbox.accept(out("a1"))
    assert claim_ids(store) == ["a1"]
    assert not store.outbox.replay("a1", actor="ops", reason="x")
    assert not store.outbox.discard("a1", actor="ops", reason="x")


def test_expired_lease_is_taken_over_and_release_gives_back(store: Store) -> None:
    store.outbox.accept(out("a1", "A"))
    store.outbox.accept(out("a2", "A"))
    store.outbox.accept(out("b1", "B"))
    assert [r["message_id"] for r in store.outbox.claim_due("dead-worker", 10, -1)] == ["a1", "b1"]
    assert [r["message_id"] for r in store.outbox.messages(stuck=True)] == ["a1", "b1"]
    assert claim_ids(store, "w2") == ["a1", "b1"]  # a2 still waits behind a1
    assert store.outbox.release([store.outbox.get("b1")["id"]], "not-me") == 0  # type: ignore[index]
    assert store.outbox.release([store.outbox.get("b1")["id"]], "w2") == 1  # type: ignore[index]
    assert claim_ids(store, "w3") == ["b1"]


def test_list_filters(store: Store) -> None:
    store.outbox.accept(out("a1", "A", op="SubmitExecutionNotification"))
    store.outbox.accept(out("b1", "B", op="SubmitEvaluationReport"))
    assert [r["message_id"] for r in store.outbox.messages(operation="SubmitEvaluationReport")] == [
        "b1"
    ]
    assert store.outbox.messages(older_than=timedelta(hours=1)) == []
    assert len(store.outbox.messages(older_than=timedelta(0))) == 2


def test_claims_from_many_threads_never_overlap(store: Store) -> None:
    for i in range(60):
        store.outbox.accept(out(f"m{i}", f"K{i % 6}"))
    seen: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            rows = store.outbox.claim_due(name, 3, 60)
            if not rows:
                if not store.outbox.messages(status="pending", limit=1):
                    return
                continue
            with lock:
                seen.extend(r["message_id"] for r in rows)
            for r in rows:
                assert store.outbox.mark_delivered(r, {}, name)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(seen) == sorted(f"m{i}" for i in range(60))  # each claimed exactly once
    for k in range(6):
        ids = [m for m in seen if int(m[1:]) % 6 == k]
        assert ids == sorted(ids, key=lambda m: int(m[1:]))
    assert store.journal.verify().ok


# -- push --------------------------------------------------------------------------------


def inbound(n: int) -> InboundRecord:
    return InboundRecord(
        message_id=f"i{n}",
        partner="tis",
        operation="SubmitCourtRuling",
        message_type="tis.court_ruling",
        partner_message_id=f"TIS-{n}",
        correlation_id=None,
        canonical={"n": n},
        payload=b"<soap/>",
    )


def test_push_goes_in_cursor_order_one_at_a_time(store: Store) -> None:
    for n in range(3):
        store.inbox.accept(inbound(n))
    first = store.inbox.claim_push("p", 5, 60)
    assert [r["message_id"] for r in first] == ["i0"]
    assert store.inbox.claim_push("p", 5, 60) == []
    assert store.inbox.mark_push_failed(
        first[0], owner="p", code="X", error="down", next_at=utcnow()
    )
    again = store.inbox.claim_push("p", 5, 60)
    assert [r["message_id"] for r in again] == ["i0"]
    assert store.inbox.mark_pushed(again[0], "p", "HTTP 204")
    assert store.inbox.page(0, 10)[0]["message_id"] == "i1"  # pushed counts as acked
    nxt = store.inbox.claim_push("p", 5, 60)
    assert store.inbox.mark_push_failed(nxt[0], owner="p", code="X", error="gone", next_at=None)
    assert store.inbox.claim_push("p", 5, 60) == []  # a dead push holds the line ...
    store.inbox.ack("i1")  # ... until PLUS pulls and acks it
    assert [r["message_id"] for r in store.inbox.claim_push("p", 5, 60)] == ["i2"]


# -- journal chain -----------------------------------------------------------------------


def _filled(store: Store) -> Store:
    for i in range(5):
        store.outbox.accept(out(f"m{i}", f"K{i}"))
    assert store.journal.verify().ok
    return store


def test_chain_is_intact_and_survives_purge(store: Store) -> None:
    _filled(store)
    verdict = store.journal.verify()
    assert verdict.ok and verdict.checked == 5 and verdict.head_id == 5
    assert store.journal.purge_payloads(timedelta(0), actor="retention") == 5
    with store.engine.connect() as conn:
        assert conn.execute(select(journal.c.payload).where(journal.c.id == 1)).scalar() is None
    verdict = store.journal.verify()
    assert verdict.ok and verdict.checked == 6


def test_changed_entry_is_named(store: Store) -> None:
    _filled(store)
    with store.engine.begin() as conn:
        conn.execute(update(journal).where(journal.c.id == 3).values(status="delivered"))
    verdict = store.journal.verify()
    assert not verdict.ok and verdict.bad_id == 3 and "changed" in (verdict.problem or "")


def test_deleted_entry_is_named(store: Store) -> None:
    _filled(store)
    with store.engine.begin() as conn:
        conn.execute(delete(journal).where(journal.c.id == 2))
    verdict = store.journal.verify()
    assert not verdict.ok and verdict.bad_id == 2 and "deleted" in (verdict.problem or "")


def test_deleted_last_entry_is_named(store: Store) -> None:
    _filled(store)
    with store.engine.begin() as conn:
        conn.execute(delete(journal).where(journal.c.id == 5))
    verdict = store.journal.verify()
    assert not verdict.ok and verdict.bad_id == 5


def test_inserted_entry_is_named(store: Store) -> None:
    _filled(store)
    with store.engine.begin() as conn:
        row = dict(conn.execute(select(journal).where(journal.c.id == 5)).one()._mapping)
        row.update(id=6, prev_hash=row["entry_hash"], status="delivered")
        conn.execute(insert(journal).values(**row))
    verdict = store.journal.verify()
    assert not verdict.ok and verdict.bad_id == 6


def test_concurrent_appends_keep_one_linear_chain(store: Store) -> None:
    def go(t: int) -> None:
        for i in range(10):
            store.journal.append(direction="local", partner="tis", status="note", detail=f"{t}-{i}")

    threads = [threading.Thread(target=go, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = store.journal.verify()
    assert verdict.ok and verdict.checked == 60


def test_migrations_have_one_head_and_reach_it(store: Store) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1
    with store.engine.connect() as conn:
        from alembic.runtime.migration import MigrationContext

        assert MigrationContext.configure(conn).get_current_heads() == tuple(heads)
