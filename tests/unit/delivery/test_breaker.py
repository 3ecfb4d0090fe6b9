"""Delivery's breaker per partner, on an injected clock: open, trial, close, capped pause."""

from __future__ import annotations

from gateway.config import BreakerSettings, RetrySettings
from gateway.delivery.breaker import CLOSED, HALF_OPEN, OPEN, PartnerBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breaker(
    clock: Clock, threshold: int = 3, reset: float = 30, max_delay: float = 300
) -> PartnerBreaker:
    return PartnerBreaker(
        "tis",
        BreakerSettings(failure_threshold=threshold, reset_timeout=reset),
        RetrySettings(max_delay=max_delay),
        clock=clock,
    )


def test_opens_after_threshold_and_only_then_failures_are_the_partners() -> None:
    clock = Clock()
    b = breaker(clock)
    assert [b.failed(), b.failed()] == [False, False]  # counted against the messages
    assert b.failed() is True  # the third opens it: this one and later ones are not counted
    assert b.state == OPEN
    assert b.failed() is True
    assert b.retry_after() == 30


def test_a_success_resets_the_count_so_a_poison_message_never_opens_it() -> None:
    b = breaker(Clock())
    for _ in range(10):
        assert b.failed() is False
        assert b.failed() is False
        assert b.succeeded() is False  # closed already: nothing to pull forward
    assert b.state == CLOSED


def test_one_trial_at_a_time_then_close_or_reopen() -> None:
    clock = Clock()
    b = breaker(clock, threshold=1, reset=10)
    b.failed()
    assert b.take_trial() is False  # open: nothing goes out
    clock.now = 10
    assert b.state == HALF_OPEN
    assert b.take_trial() is True
    assert b.take_trial() is False  # exactly one probe
    assert b.failed() is True  # the probe failed: open again, a fresh pause
    assert b.state == OPEN and b.retry_after() == 10
    clock.now = 20
    assert b.take_trial() is True
    b.release_trial()  # nothing was waiting: the slot is free again
    assert b.take_trial() is True
    assert b.succeeded() is True  # closed by the probe: pull the waiting forward
    assert b.state == CLOSED and b.take_trial() is False


def test_the_pause_never_exceeds_the_retry_cap() -> None:
    clock = Clock()
    b = breaker(clock, threshold=1, reset=30, max_delay=0.2)
    assert b.reset_timeout == 0.2
    b.failed()
    clock.now = 0.2
    assert b.state == HALF_OPEN
    assert b.snapshot()["reset_timeout"] == 0.2
