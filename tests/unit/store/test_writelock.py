"""The SQLite writer queue holds across processes (``api.workers`` > 1, issue 14 part 4)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from sqlalchemy import text

from gateway.store import create_store_engine
from gateway.store.db import Database
from gateway.store.writelock import SqliteWriteLock, sqlite_write_lock


def _hold(db: str, held: multiprocessing.synchronize.Event, release: float) -> None:
    with SqliteWriteLock(Path(db)):
        held.set()
        time.sleep(release)


def test_a_writer_in_another_process_waits_for_the_lock(tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    ctx = multiprocessing.get_context("spawn")
    held = ctx.Event()
    other = ctx.Process(target=_hold, args=(db, held, 1.0))
    other.start()
    try:
        assert held.wait(60)
        t0 = time.monotonic()
        with SqliteWriteLock(Path(db)):
            waited = time.monotonic() - t0
        assert waited > 0.3  # it queued behind the other process's transaction
    finally:
        other.join(60)


def _writes(db: str, n: int, tag: str) -> None:
    engine = create_store_engine(f"sqlite:///{db}")
    database = Database(engine)
    for i in range(n):
        with database.transaction() as conn:
            conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"{tag}-{i}"})
    engine.dispose()


def test_two_processes_write_every_row(tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    engine = create_store_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v TEXT PRIMARY KEY)"))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writes, args=(db, 100, f"p{i}")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 200
    engine.dispose()


def test_memory_databases_keep_a_thread_lock() -> None:
    assert not isinstance(sqlite_write_lock(":memory:"), SqliteWriteLock)
    assert not isinstance(sqlite_write_lock(None), SqliteWriteLock)
