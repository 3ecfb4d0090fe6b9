"""Batched delivery records (issue 14 part 1): ``Outbox.mark_delivered_many`` and
``Journal.append_many_in`` under the delivery worker's group commit, on SQLite and PostgreSQL.

Per case order, exactly once, and the same hash chain as appending entries one by one.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from sqlalchemy import select

from gateway.delivery.recorder import DeliveryRecorder
from gateway.store import OutboundRecord, Store
from gateway.store.schema import journal, outbox


def out(mid: str, case: str) -> OutboundRecord:
    return OutboundRecord(
        message_id=mid,
        partner="tis",
        operation="SubmitExecutionNotification",
        message_type="execution_notification",
        payload=f"<signed id='{mid}'/>".encode(),
        ordering_key=case,
        correlation_id=case,
        idempotency_key=f"key-{mid}",
        request_sha256=f"h-{mid}",
    )


def delivered_entries(store: Store) -> list[tuple[int, str]]:
    """(journal id, message id) of every 'delivered' entry, in chain order."""
    with store.db.connect() as conn:  # the test reads the tables directly
        rows = conn.execute(
            select(journal.c.id, journal.c.message_id)
            .where(journal.c.status == "delivered")
            .order_by(journal.c.id)
        )
        return [(int(r[0]), str(r[1])) for r in rows]


def test_batch_is_one_chain_with_one_entry_per_row(store: Store) -> None:
    for i in range(30):
        store.outbox.accept(out(f"m{i}", f"K{i}"))
    rows = store.outbox.claim_due("w", 30, 60)
    assert len(rows) == 30
    results = store.outbox.mark_delivered_many(
        [(r, {"Status": str(i)}) for i, r in enumerate(rows)], "w"
    )
    assert results == [True] * 30
    entries = delivered_entries(store)
    assert [m for _, m in entries] == [r["message_id"] for r in rows]
    ids = [i for i, _ in entries]
    assert ids == list(range(ids[0], ids[0] + 30))  # gap-free, in the batch's order
    verdict = store.journal.verify()
    assert verdict.ok, verdict
    # A single append after the batch continues the same chain.
    store.journal.append(direction="local", partner="tis", status="note", detail="after")
    assert store.journal.verify().ok
    for r in rows:
        got = store.outbox.get(r["message_id"])
        assert got is not None and got["status"] == "delivered" and got["attempts"] == 1


def test_rows_whose_lease_was_lost_are_not_recorded(store: Store) -> None:
    for i in range(4):
        store.outbox.accept(out(f"m{i}", f"K{i}"))
    rows = store.outbox.claim_due("old", 4, 0)  # lease already expired
    time.sleep(0.01)
    taken = store.outbox.claim_due("new", 2, 60)  # another worker takes two over
    assert {r["message_id"] for r in taken} == {"m0", "m1"}
    results = store.outbox.mark_delivered_many([(r, {}) for r in rows], "old")
    assert results == [False, False, True, True]
    assert [m for _, m in delivered_entries(store)] == ["m2", "m3"]
    # The new owner records its own, once.
    assert store.outbox.mark_delivered_many([(r, {}) for r in taken], "new") == [True, True]
    assert store.outbox.mark_delivered_many([(r, {}) for r in taken], "new") == [False, False]
    assert sorted(m for _, m in delivered_entries(store)) == ["m0", "m1", "m2", "m3"]
    assert store.journal.verify().ok


def test_concurrent_group_commits_keep_case_order_and_exactly_once(store: Store) -> None:
    """Two workers (lease owners), four sending threads each, every delivery recorded through
    the worker's group commit: each message delivered once, each case in acceptance order."""
    cases, per_case = 12, 8
    expected: dict[str, list[str]] = {}
    n = 0
    for _ in range(per_case):
        for c in range(cases):
            mid = f"m{n:04d}"
            store.outbox.accept(out(mid, f"K{c}"))
            expected.setdefault(f"K{c}", []).append(mid)
            n += 1
    sent: list[str] = []
    sent_lock = threading.Lock()
    errors: list[BaseException] = []

    def sender(owner: str, recorder: DeliveryRecorder, seed: int) -> None:
        rnd = random.Random(seed)
        idle = 0
        while idle < 50:
            rows = store.outbox.claim_due(owner, 2, 60)
            if not rows:
                idle += 1
                time.sleep(0.01)
                continue
            idle = 0
            for row in rows:
                time.sleep(rnd.random() * 0.003)  # the partner's answer
                with sent_lock:
                    sent.append(row["message_id"])
                try:
                    assert recorder.delivered(row, {"Status": "ACCEPTED"})
                except BaseException as exc:  # reported by the test thread
                    errors.append(exc)

    threads = []
    recorders = []
    for w in range(2):
        recorder = DeliveryRecorder(store, f"w{w}")
        recorders.append(recorder)
        for t in range(4):
            threads.append(threading.Thread(target=sender, args=(f"w{w}", recorder, w * 10 + t)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    total = cases * per_case
    assert sorted(sent) == sorted(m for ms in expected.values() for m in ms)  # sent once each
    entries = delivered_entries(store)
    assert len(entries) == total and len({m for _, m in entries}) == total  # recorded once each
    position = {m: i for i, (_, m) in enumerate(entries)}
    for case, mids in expected.items():
        assert sorted(mids, key=position.__getitem__) == mids, case
        order = [m for m in sent if m in set(mids)]
        assert order == mids, case
    # The group commit did group: fewer transactions than rows.
    assert sum(r.rows for r in recorders) == total
    assert sum(r.commits for r in recorders) < total
    assert store.journal.verify().ok
    with store.db.connect() as conn:
        statuses: dict[str, Any] = dict(
            conn.execute(select(outbox.c.message_id, outbox.c.status)).all()  # type: ignore[arg-type]
        )
    assert set(statuses.values()) == {"delivered"}
