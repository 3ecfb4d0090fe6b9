"""A short-lived cache of the public list's encoded pages.

Every reader of ``GET /v1/volunteering/opportunities`` (and its ``.ics``/``.jsonld``) with the
same filters gets the same bytes: nobody's token changes a public page. So a page is computed
once, encoded once, and served from memory for ``facade.list_cache_seconds`` (default 2 s).

Freshness:

- **This instance's writes** (a posting created, changed, imported or archived, an application
  taking or giving back a seat, an organiser's profile) move the store's list version
  (gateway/store/facade/changes.py); a page remembers the version it was read at and is not
  served once that moved. A page read while a write was committing is not kept at all. So
  whoever writes here reads their write in the next list call here.
- **Other instances' writes** (several gateways on one PostgreSQL) are not seen until the page
  expires: a list page may be up to ``list_cache_seconds`` old there (live counters, a new or
  changed posting). So may a posting whose deadline passed within that time; applying to it
  is still refused, the seat rule reads the store.

Misses are single-flight: while one request computes a page, others asking for the same page
at the same version wait for it instead of running the same query (100 readers of the first
page after it expires run one query, not 100). The computation runs in the thread pool; hits
never leave the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from fastapi.concurrency import run_in_threadpool

from gateway.store.facade.changes import ListVersion

__all__ = ["PageCache"]


@dataclass(frozen=True)
class _Entry:
    body: bytes
    version: int
    expires: float


class PageCache:
    """Encoded pages by key, for ``ttl`` seconds and while the list version stands.

    ``ttl`` 0 turns it off: every call computes. At most ``max_entries`` pages and
    ``max_bytes`` of them are kept (the least recently used go first), so distinct filter
    combinations cannot fill the memory.
    """

    def __init__(
        self,
        ttl: float,
        version: ListVersion,
        *,
        max_entries: int = 512,
        max_bytes: int = 32 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.version = version
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._flights: dict[tuple[Hashable, int], asyncio.Future[bytes | None]] = {}
        #: Counters for tests and the curious: served from memory, computed.
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> bytes | None:
        """The page if it is fresh and no write was seen since it was read."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.version != self.version.value or entry.expires <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.body

    def put(self, key: Hashable, body: bytes, version: int) -> None:
        """Keep ``body``, read at list version ``version``: not if a write came since."""
        if self.ttl <= 0 or version != self.version.value or len(body) > self.max_bytes:
            return
        self._drop(key)
        self._entries[key] = _Entry(body, version, self.clock() + self.ttl)
        self._bytes += len(body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.body)

    def clear(self) -> None:
        """Forget every page."""
        self._entries.clear()
        self._bytes = 0

    async def page(self, key: Hashable, compute: Callable[[], bytes]) -> bytes:
        """The cached page of ``key``, or ``compute()`` run in the thread pool (once for all
        requests waiting for the same key at the same version) and kept."""
        if self.ttl <= 0:
            self.misses += 1
            return await run_in_threadpool(compute)
        found = self.get(key)
        if found is not None:
            self.hits += 1
            return found
        # Read before the query: a write committing meanwhile moves it, and put() then
        # refuses the page (it may predate the write).
        version = self.version.value
        flight_key = (key, version)
        flight = self._flights.get(flight_key)
        if flight is not None:
            body = await asyncio.shield(flight)
            if body is not None:
                self.hits += 1
                return body
            # The computing request failed; this one tries for itself (and gets its error).
            self.misses += 1
            return await run_in_threadpool(compute)
        self.misses += 1
        flight = asyncio.get_running_loop().create_future()
        self._flights[flight_key] = flight
        body = None
        try:
            body = await run_in_threadpool(compute)
            self.put(key, body, version)
            return body
        finally:
            del self._flights[flight_key]
            flight.set_result(body)
