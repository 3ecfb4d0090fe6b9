"""The public list's page cache: served while fresh, void after its time or after a write
(the list version), never keeps a page read across a write, one computation for concurrent
misses, bounded, and off at 0 seconds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from gateway.facade.cache import PageCache
from gateway.store.facade.changes import ListVersion


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """A page computation that counts its calls and returns ``page-<n>``."""

    def __init__(self, before: Callable[[], None] | None = None) -> None:
        self.calls = 0
        self.before = before

    def __call__(self) -> bytes:
        self.calls += 1
        if self.before is not None:
            self.before()
        return f"page-{self.calls}".encode()


def _cache(ttl: float = 2.0, **kw: object) -> tuple[PageCache, ListVersion, Clock]:
    version, clock = ListVersion(), Clock()
    return PageCache(ttl, version, clock=clock, **kw), version, clock  # type: ignore[arg-type]


def test_served_while_fresh_then_recomputed() -> None:
    cache, _version, clock = _cache()
    compute = Counting()

    async def scenario() -> list[bytes]:
        out = [await cache.page("k", compute), await cache.page("k", compute)]
        clock.now += 1.9
        out.append(await cache.page("k", compute))
        clock.now += 0.2  # 2.1 s after it was read
        out.append(await cache.page("k", compute))
        out.append(await cache.page("other", compute))
        return out

    assert asyncio.run(scenario()) == [b"page-1", b"page-1", b"page-1", b"page-2", b"page-3"]
    assert (cache.hits, cache.misses) == (2, 3)


def test_a_write_voids_every_page_at_once() -> None:
    cache, version, _clock = _cache(ttl=60)
    compute = Counting()

    async def scenario() -> list[bytes]:
        out = [await cache.page("a", compute), await cache.page("b", compute)]
        version.bump()  # e.g. a posting created by this instance
        out += [await cache.page("a", compute), await cache.page("b", compute)]
        out += [await cache.page("a", compute)]
        return out

    assert asyncio.run(scenario()) == [b"page-1", b"page-2", b"page-3", b"page-4", b"page-3"]


def test_a_page_read_while_a_write_commits_is_not_kept() -> None:
    cache, version, _clock = _cache(ttl=60)
    # The write commits while the page is being read: that page may predate it.
    compute = Counting(before=version.bump)

    async def scenario() -> list[bytes]:
        return [await cache.page("k", compute), await cache.page("k", compute)]

    assert asyncio.run(scenario()) == [b"page-1", b"page-2"]
    assert cache.get("k") is None


def test_concurrent_misses_compute_once() -> None:
    cache, _version, _clock = _cache()
    started, release = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(5)

    compute = Counting(before=slow)

    async def scenario() -> list[bytes]:
        readers = [asyncio.create_task(cache.page("k", compute)) for _ in range(20)]
        await asyncio.to_thread(started.wait, 5)
        release.set()
        return await asyncio.gather(*readers)

    assert asyncio.run(scenario()) == [b"page-1"] * 20
    assert compute.calls == 1
    assert (cache.hits, cache.misses) == (19, 1)


def test_a_failed_computation_is_not_shared_or_kept() -> None:
    cache, _version, _clock = _cache()
    started, release = threading.Event(), threading.Event()
    calls = []

    def compute() -> bytes:
        calls.append(1)
        if len(calls) == 1:
            started.set()
            release.wait(5)
            raise RuntimeError("store unavailable")
        return b"page"

    async def scenario() -> tuple[BaseException | bytes, bytes]:
        first = asyncio.create_task(cache.page("k", compute))
        await asyncio.to_thread(started.wait, 5)
        second = asyncio.create_task(cache.page("k", compute))
        await asyncio.sleep(0.01)
        release.set()
        failed = (await asyncio.gather(first, return_exceptions=True))[0]
        return failed, await second

    failed, second = asyncio.run(scenario())
    assert isinstance(failed, RuntimeError)
    assert second == b"page"  # the waiter computed for itself
    assert len(calls) == 2


def test_zero_seconds_is_off() -> None:
    cache, _version, _clock = _cache(ttl=0)
    compute = Counting()

    async def scenario() -> list[bytes]:
        return [await cache.page("k", compute) for _ in range(3)]

    assert asyncio.run(scenario()) == [b"page-1", b"page-2", b"page-3"]
    assert cache.get("k") is None


def test_bounded_least_recently_used_go_first() -> None:
    cache, version, _clock = _cache(max_entries=2)
    cache.put("a", b"A", version.value)
    cache.put("b", b"B", version.value)
    assert cache.get("a") == b"A"  # a is now the most recent
    cache.put("c", b"C", version.value)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"A", None, b"C")


def test_bounded_in_bytes_too() -> None:
    cache, version, _clock = _cache(max_bytes=10)
    cache.put("a", b"12345", version.value)
    cache.put("b", b"12345", version.value)
    cache.put("c", b"123", version.value)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, b"12345", b"123")
    cache.put("big", b"x" * 11, version.value)  # larger than the whole budget: not kept
    assert cache.get("big") is None and cache.get("b") == b"12345"
    cache.put("b", b"1", version.value)  # replacing an entry frees its old size
    cache.put("d", b"123456", version.value)
    assert (cache.get("b"), cache.get("c"), cache.get("d")) == (b"1", b"123", b"123456")


@pytest.mark.parametrize("bumps", [1, 3])
def test_put_refuses_a_stale_version(bumps: int) -> None:
    cache, version, _clock = _cache()
    read_at = version.value
    for _ in range(bumps):
        version.bump()
    cache.put("k", b"old", read_at)
    assert cache.get("k") is None
