"""Retry schedule: exponential backoff with full jitter, bounded by attempts and age."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from gateway.config import RetrySettings
from gateway.errors import GatewayError

__all__ = ["backoff_delay", "next_attempt"]


def backoff_delay(attempt: int, policy: RetrySettings, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Full jitter (uniform between 0 and the capped exponential) spreads retries of many
    messages so a recovering partner is not hit by a synchronized wave.
    """
    ceiling = min(policy.max_delay, policy.base_delay * (2 ** max(attempt - 1, 0)))
    return (rng or random).uniform(0, ceiling)


def next_attempt(
    error: GatewayError,
    *,
    attempts_done: int,
    created_at: datetime,
    now: datetime,
    policy: RetrySettings,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try again after ``error``, or None for dead letter.

    Permanent errors dead-letter at once; retryable ones until ``max_attempts`` or ``max_age``.
    """
    if not error.retryable or attempts_done >= policy.max_attempts:
        return None
    when = now + timedelta(seconds=backoff_delay(attempts_done, policy, rng))
    if (when - created_at).total_seconds() > policy.max_age:
        return None
    return when
