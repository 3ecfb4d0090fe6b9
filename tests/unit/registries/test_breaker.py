import pytest

from gateway.registries.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from gateway.registries.cache import TTLCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("viis", failure_threshold=3, reset_timeout=10, clock=clock)


def test_opens_after_consecutive_failures_only(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state == OPEN
    assert not breaker.allow()


def test_half_open_after_cool_down_lets_one_trial(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 9.9
    assert breaker.state == OPEN
    assert breaker.retry_after() == pytest.approx(0.1)
    clock.now += 0.1
    assert breaker.state == HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # one trial at a time
    breaker.record_success()
    assert breaker.state == CLOSED
    assert breaker.allow() and breaker.allow()


def test_failed_trial_opens_again_for_a_full_cool_down(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == OPEN
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.state == HALF_OPEN


def test_released_trial_frees_the_slot(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.release()
    assert breaker.state == HALF_OPEN
    assert breaker.allow()


def test_snapshot(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    assert breaker.snapshot() == {
        "state": CLOSED,
        "consecutive_failures": 1,
        "failure_threshold": 3,
    }


def test_cache_is_off_by_default_and_expires(clock: FakeClock) -> None:
    off: TTLCache[str, int] = TTLCache(0, clock=clock)
    off.put("a", 1)
    assert off.get("a") is None and len(off) == 0
    cache: TTLCache[str, int] = TTLCache(5, max_entries=2, clock=clock)
    cache.put("a", 1)
    assert cache.get("a") == 1
    clock.now += 5
    assert cache.get("a") is None
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert cache.get("a") is None and cache.get("c") == 3
