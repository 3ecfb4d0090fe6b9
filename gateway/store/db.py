"""The database every store area shares: engine, migrations and the one transaction helper.

SQLite (WAL, durable) by default, PostgreSQL by URL. Every area (journal, outbox, inbox, ...)
writes through :meth:`Database.transaction`, so the SQLite writer queue and the mapping of
database outages to :class:`~gateway.errors.StoreUnavailableError` live in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError

from gateway.errors import StoreUnavailableError
from gateway.store.writelock import sqlite_write_lock

__all__ = ["Database", "checkpoint", "create_store_engine", "is_sqlite", "migrate"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(engine: Engine) -> bool:
    """True when the engine talks to SQLite (single-instance mode)."""
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the API) run while the worker writes; synchronous=FULL makes every
    # commit durable across power loss, which is the promise behind "202 Accepted".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers (Database.transaction) take the write lock at BEGIN IMMEDIATE so two writers queue
    # on busy_timeout instead of one failing with "database is locked" when it upgrades a
    # read transaction; reads stay DEFERRED so they never wait for the write lock.
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One engine and the one transaction helper that every store area writes through."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: True on PostgreSQL (several instances: claims lock rows with ``FOR UPDATE``).
        self.postgres = engine.dialect.name == "postgresql"
        # SQLite has one writer at a time. Queueing this process's writers on a lock hands the
        # write lock over at once; left to SQLite's busy handler, waiters sleep-poll in steps of
        # up to 100 ms, which is what made p99 latency approach a second under load.
        # Between processes (api.workers > 1) the same queue is a flock (writelock.py).
        self._write_lock: AbstractContextManager[Any] = (
            sqlite_write_lock(engine.url.database) if is_sqlite(engine) else nullcontext()
        )

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction; database outages surface as StoreUnavailableError (retryable).

        Areas that write several tables together (an accept: outbox, idempotency key and
        journal) pass this connection to each other's ``conn``-taking functions, so the write
        commits or rolls back as one.
        """
        try:
            with self._write_lock, self.engine.connect() as conn:
                # On SQLite a write transaction takes the write lock at BEGIN (see
                # _sqlite_begin); plain reads stay deferred and never queue behind writers.
                conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StoreUnavailableError(f"store unavailable: {exc.orig}") from exc

    def connect(self) -> Connection:
        """A connection for reads (deferred on SQLite: it never waits for the write lock)."""
        return self.engine.connect()


def create_store_engine(url: str, *, echo: bool = False) -> Engine:
    """Create the engine for ``url``; creates the SQLite file's directory if needed."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            # Bound parameters are message content (personal data) and must never reach a log
            # line or an exception text.
            hide_parameters=True,
            connect_args={"check_same_thread": False, "isolation_level": None, "timeout": 30},
            # Pooled: opening a connection per transaction costs the PRAGMAs and, when the last
            # connection closes, a WAL checkpoint with its fsyncs. The pool rolls back on
            # return, so an idle pooled connection holds no read snapshot.
            pool_size=8,
            max_overflow=16,
            pool_pre_ping=False,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
    )


def checkpoint(engine: Engine) -> None:
    """Copy the SQLite WAL into the database file and truncate it (no-op elsewhere).

    Run at shutdown so a stopped gateway leaves one self-contained database file: a copy or
    backup taken while it is down needs no ``-wal`` beside it.
    """
    if not is_sqlite(engine):
        return
    # The raw DBAPI connection is in autocommit mode (isolation_level=None): a checkpoint run
    # inside the BEGIN that SQLAlchemy would issue could not truncate the WAL.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        busy, _frames, _done = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        cursor.close()
    finally:
        raw.close()
    if busy:
        raise StoreUnavailableError("WAL checkpoint incomplete: a reader or writer is active")


def migrate(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema to ``revision`` with Alembic (idempotent).

    ``heads``: areas may add their tables on branches of their own (each revising the last
    shared revision); every branch is applied. A later shared migration merges them.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
        if connection.in_transaction():
            connection.commit()
