"""The SQLite writer queue across processes (``api.workers`` > 1, issue 14 part 4).

SQLite has one writer at a time. Within a process, writers queue on a thread lock before
``BEGIN IMMEDIATE`` so the write lock passes at once (see :class:`gateway.store.db.Database`).
Between processes (``serve`` and its HTTP workers on one file), a waiting writer would be left
to SQLite's busy handler, which sleep-polls in steps of up to 100 ms: most of a second
process's gain went into those sleeps. Here writers also queue on an advisory ``flock`` of a
file beside the database, which the kernel hands to the next waiter as soon as it is released.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["SqliteWriteLock", "sqlite_write_lock"]


class SqliteWriteLock:
    """A thread lock, then an exclusive ``flock`` of ``<database>-writer.lock``."""

    def __init__(self, database: Path) -> None:
        self._thread_lock = threading.Lock()
        self._path = database.with_name(database.name + "-writer.lock")
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        # Opened lazily, and again in a forked child: a lock taken through an inherited
        # descriptor would be the parent's lock, not a queue between the two.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


def sqlite_write_lock(database: str | None) -> AbstractContextManager[Any]:
    """The writer queue for the SQLite file ``database`` (a thread lock alone in memory)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return threading.Lock()
    return SqliteWriteLock(Path(database))
