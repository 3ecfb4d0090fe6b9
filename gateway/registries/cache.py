"""An optional in-memory TTL cache of registry answers (personal data: off unless configured)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Keeps each value ``ttl`` seconds, at most ``max_entries`` (oldest evicted first).

    A ``ttl`` of 0 disables it: nothing is stored, so no personal data stays in memory.
    """

    def __init__(
        self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """True when values are kept at all."""
        return self.ttl > 0

    def get(self, key: K) -> V | None:
        """The live value under ``key``, or None (expired entries are dropped)."""
        if not self.enabled:
            return None
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            expires, value = item
            if self._clock() >= expires:
                del self._data[key]
                return None
            return value

    def put(self, key: K, value: V) -> None:
        """Store ``value`` for ``ttl`` seconds (no-op when disabled)."""
        if not self.enabled:
            return
        with self._lock:
            self._data.pop(key, None)
            self._data[key] = (self._clock() + self.ttl, value)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
