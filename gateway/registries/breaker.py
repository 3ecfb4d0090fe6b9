"""A circuit breaker per registry, with an injectable clock for tests.

closed --N consecutive failures--> open --reset_timeout passes--> half_open
half_open --the one trial query succeeds--> closed;  --it fails--> open (cool-down again)

While open, queries fail at once (REGISTRY_CIRCUIT_OPEN) without touching the network; in
half-open exactly one trial query at a time is let through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "STATES", "CircuitBreaker"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATES = (CLOSED, OPEN, HALF_OPEN)


class CircuitBreaker:
    """Thread-safe breaker of one registry."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        reset_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_timeout <= 0:
            raise ValueError("failure_threshold >= 1 and reset_timeout > 0 are required")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.transitions = 0

    def _current(self) -> str:
        # Open turns half-open lazily, when someone looks after the cool-down.
        if self._state == OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            self._set(HALF_OPEN)
        return self._state

    def _set(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.transitions += 1
        if state == OPEN:
            self._opened_at = self._clock()
        if state != HALF_OPEN:
            self._trial_in_flight = False

    @property
    def state(self) -> str:
        """closed, open or half_open, now."""
        with self._lock:
            return self._current()

    def allow(self) -> bool:
        """May a query go out now? In half-open, True for exactly one caller at a time."""
        with self._lock:
            state = self._current()
            if state == CLOSED:
                return True
            if state == OPEN or self._trial_in_flight:
                return False
            self._trial_in_flight = True
            return True

    def record_success(self) -> None:
        """The registry answered (found, not found, or refused our request): close."""
        with self._lock:
            self._failures = 0
            self._set(CLOSED)

    def record_failure(self) -> None:
        """Unreachable, timed out, faulted or answered garbage: count, maybe open."""
        with self._lock:
            state = self._current()
            if state == HALF_OPEN:
                self._set(OPEN)
                return
            self._failures += 1
            if state == CLOSED and self._failures >= self.failure_threshold:
                self._set(OPEN)

    def release(self) -> None:
        """A let-through query ended without reaching the registry: free the trial slot."""
        with self._lock:
            self._trial_in_flight = False

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a trial query through (0 when not open)."""
        with self._lock:
            if self._current() != OPEN:
                return 0.0
            return max(0.0, self.reset_timeout - (self._clock() - self._opened_at))

    def snapshot(self) -> dict[str, Any]:
        """State for /ready and /metrics."""
        with self._lock:
            return {
                "state": self._current(),
                "consecutive_failures": self._failures,
                "failure_threshold": self.failure_threshold,
            }
