"""Delivery's circuit breaker per partner: while a partner is down, its messages wait.

One :class:`~gateway.registries.breaker.CircuitBreaker` per partner (an institution, or a
partner with its own outbox transport such as the calendar):

closed --``failure_threshold`` retryable failures in a row--> open
open --``reset_timeout`` (at most the retry cap ``retry.max_delay``) passes--> half_open
half_open --the trial message is delivered, or refused by the partner--> closed
half_open --the trial message fails again (retryable)--> open

A retryable failure (unreachable, timeout, HTTP 5xx, SOAP Server fault) that finds or leaves
the breaker open is the partner's, not the message's: the message waits with its attempts
unchanged. While open nothing of that partner is claimed; half-open lets exactly one message
through as the health probe (the oldest waiting one, whatever its backoff said). When the
breaker closes, every waiting message is pulled forward (due now). A refusal (SOAP Client
fault, HTTP 4xx, an invalid answer) proves the partner answers, so it closes the breaker too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gateway.config import BreakerSettings, RetrySettings
from gateway.registries.breaker import CLOSED, HALF_OPEN, OPEN, STATES, CircuitBreaker

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "STATES", "PartnerBreaker"]


class PartnerBreaker:
    """The breaker of one partner's deliveries (thread-safe)."""

    def __init__(
        self,
        partner: str,
        settings: BreakerSettings,
        retry: RetrySettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.partner = partner
        # A waiting message is never probed later than its own backoff would have retried it.
        self.reset_timeout = min(settings.reset_timeout, retry.max_delay)
        self._breaker = CircuitBreaker(
            f"delivery:{partner}",
            failure_threshold=settings.failure_threshold,
            reset_timeout=self.reset_timeout,
            clock=clock,
        )

    @property
    def state(self) -> str:
        """closed, open or half_open, now (open turns half-open once the pause is over)."""
        return self._breaker.state

    @property
    def transitions(self) -> int:
        """How many times the state changed."""
        return self._breaker.transitions

    def take_trial(self) -> bool:
        """In half-open, reserve the one trial message (True for exactly one caller)."""
        return self._breaker.state == HALF_OPEN and self._breaker.allow()

    def release_trial(self) -> None:
        """The reserved trial message was not sent (none waiting, or stopping)."""
        self._breaker.release()

    def succeeded(self) -> bool:
        """The partner answered. True when that closed the breaker (pull the waiting forward)."""
        before = self._breaker.state
        self._breaker.record_success()
        return before != CLOSED

    def failed(self) -> bool:
        """A retryable failure. True when the breaker is open after it: the partner is down, and
        the message that failed waits without spending an attempt."""
        self._breaker.record_failure()
        return self._breaker.state != CLOSED

    def retry_after(self) -> float:
        """Seconds until the next trial message may go (0 unless open)."""
        return self._breaker.retry_after()

    def snapshot(self) -> dict[str, Any]:
        """State, consecutive failures, threshold and probe interval (for /ready)."""
        snap = self._breaker.snapshot()
        snap["reset_timeout"] = self.reset_timeout
        return snap
