"""A counter of this process's committed writes that change the public list.

Every store area that writes what the public list shows (postings, their live counters, the
organiser's profile) bumps :func:`list_version` of its :class:`~gateway.store.db.Database`
after the transaction commits. Caches of list pages (gateway/facade/cache.py) remember the
version they were computed at and are void once it moves, so a write answered here is in the
next list read here. One counter per ``Database`` object, so every area over the same store
(the API's, the archiving loop's) shares it. Writes by other processes (other instances, a
direct SQL update) do not move it: their effect waits for the cache's time to live.
"""

from __future__ import annotations

import threading
import weakref

from gateway.store.db import Database

__all__ = ["ListVersion", "list_version"]


class ListVersion:
    """A monotonic counter: bumped under a lock, read without one (``value`` is an int)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def bump(self) -> None:
        """Call after a write that changes the public list has committed."""
        with self._lock:
            self.value += 1


_versions: weakref.WeakKeyDictionary[Database, ListVersion] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def list_version(db: Database) -> ListVersion:
    """The one :class:`ListVersion` of ``db`` in this process."""
    with _lock:
        found = _versions.get(db)
        if found is None:
            found = _versions[db] = ListVersion()
        return found
