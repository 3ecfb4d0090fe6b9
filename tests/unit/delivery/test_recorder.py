"""Group commit: many delivery threads, few transactions, each thread sees its own outcome."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from gateway.delivery.recorder import DeliveryRecorder
from gateway.errors import StoreUnavailableError


class SlowOutbox:
    """A store whose commit takes a while (an fsync), recording each transaction's rows."""

    def __init__(self, fail: bool = False) -> None:
        self.transactions: list[list[int]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def mark_delivered_many(
        self, items: list[tuple[dict[str, Any], Any]], owner: str
    ) -> list[bool]:
        time.sleep(0.01)
        if self.fail:
            raise StoreUnavailableError("disk full")
        with self.lock:
            self.transactions.append([row["id"] for row, _ in items])
        # A row whose lease was lost (odd ids here) is not recorded as ours.
        return [row["id"] % 2 == 0 for row, _ in items]


class Store:
    def __init__(self, outbox: SlowOutbox) -> None:
        self.outbox = outbox


def run_threads(recorder: DeliveryRecorder, n: int) -> dict[int, Any]:
    results: dict[int, Any] = {}
    start = threading.Barrier(n)

    def one(i: int) -> None:
        start.wait()
        try:
            results[i] = recorder.delivered({"id": i}, {"Status": "ACCEPTED"})
        except Exception as exc:  # the thread's own outcome
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_every_row_committed_once_in_fewer_transactions() -> None:
    outbox = SlowOutbox()
    recorder = DeliveryRecorder(Store(outbox), "w")  # type: ignore[arg-type]
    results = run_threads(recorder, 32)
    committed = [i for t in outbox.transactions for i in t]
    assert sorted(committed) == list(range(32))
    assert len(outbox.transactions) < 32  # rows that arrived during a commit went together
    assert results == {i: i % 2 == 0 for i in range(32)}
    assert recorder.rows == 32 and recorder.commits == len(outbox.transactions)


def test_a_failed_commit_fails_every_row_in_it() -> None:
    recorder = DeliveryRecorder(Store(SlowOutbox(fail=True)), "w")  # type: ignore[arg-type]
    results = run_threads(recorder, 8)
    assert len(results) == 8
    assert all(isinstance(r, StoreUnavailableError) for r in results.values())


def test_one_thread_alone_commits_at_once() -> None:
    outbox = SlowOutbox()
    recorder = DeliveryRecorder(Store(outbox), "w")  # type: ignore[arg-type]
    assert recorder.delivered({"id": 2}, {}) is True
    with pytest.raises(StoreUnavailableError):
        outbox.fail = True
        recorder.delivered({"id": 4}, {})
    assert outbox.transactions == [[2]]
