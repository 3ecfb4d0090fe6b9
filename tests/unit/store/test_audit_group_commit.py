"""The audit area's group commit: rows of concurrent callers share a transaction, and each
caller returns only once its own rows are committed (or raises if their commit failed)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import GatewayError
from gateway.store import Store, create_store_engine
from gateway.store.audit import AuditEntry
from gateway.store.schema import registry_queries

WAIT = 30.0  # generous: the machine running the tests may be loaded


def _entry(n: int) -> AuditEntry:
    return AuditEntry("viis", f"officer-{n}", "test", "VPD-1", "161175-19997", f"q-{n}", "ok")


def _committed(store: Store, query_id: str) -> int:
    # A connection of its own engine: sees only what was committed.
    engine = create_store_engine(str(store.db.engine.url.render_as_string(hide_password=False)))
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(registry_queries.c.query_id == query_id)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_each_caller_returns_with_its_rows_committed(store: Store) -> None:
    seen: dict[int, int] = {}
    errors: list[BaseException] = []

    def call(n: int) -> None:
        try:
            store.audit.record([_entry(n)])
            seen[n] = _committed(store, f"q-{n}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not errors
    assert seen == dict.fromkeys(range(12), 1)
    assert store.audit.rows == 12 and 1 <= store.audit.commits <= 12


def test_callers_waiting_during_a_commit_share_the_next_one(store: Store) -> None:
    if store.db.postgres:
        pytest.skip("holds the SQLite writer lock to keep the first commit open")
    lock = store.db._write_lock
    lock.__enter__()  # the first caller's transaction waits here: the others queue behind it
    returned: list[int] = []
    threads = [
        threading.Thread(target=lambda n=n: (store.audit.record([_entry(n)]), returned.append(n)))
        for n in range(5)
    ]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + WAIT
        while len(store.audit._queue) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(store.audit._queue) == 4  # one leads (blocked), four wait for the next
        assert returned == []  # nobody has an answer before its row is committed
    finally:
        lock.__exit__(None, None, None)
    for t in threads:
        t.join(WAIT)
    assert sorted(returned) == list(range(5))
    assert (store.audit.commits, store.audit.rows) == (2, 5)
    for n in range(5):
        assert _committed(store, f"q-{n}") == 1


def test_a_failed_commit_raises_in_every_caller_of_it(store: Store) -> None:
    with store.db.engine.begin() as conn:
        conn.execute(text("DROP TABLE registry_queries"))
    outcomes: list[str] = []

    def call(n: int) -> None:
        try:
            store.audit.record([_entry(n)])
            outcomes.append("returned")
        except (GatewayError, SQLAlchemyError):
            outcomes.append("raised")

    threads = [threading.Thread(target=call, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert outcomes == ["raised"] * 6
