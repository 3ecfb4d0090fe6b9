"""Property tests of the retry schedule (full jitter, cap, attempts and age limits)."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.config import RetrySettings
from gateway.delivery.backoff import backoff_delay, next_attempt
from gateway.errors import PartnerRejectedError, PartnerUnavailableError
from gateway.store.schema import utcnow

policies = st.builds(
    RetrySettings,
    base_delay=st.floats(0.001, 100),
    max_delay=st.floats(0.01, 3600),
    max_attempts=st.integers(1, 50),
    max_age=st.floats(1, 30 * 86400),
)


def ceiling(attempt: int, policy: RetrySettings) -> float:
    return min(policy.max_delay, policy.base_delay * 2 ** max(attempt - 1, 0))


@given(policies, st.integers(1, 200), st.integers(0, 2**32))
def test_delay_within_zero_and_cap(policy: RetrySettings, attempt: int, seed: int) -> None:
    delay = backoff_delay(attempt, policy, random.Random(seed))
    assert 0 <= delay <= ceiling(attempt, policy) <= policy.max_delay


@given(policies, st.integers(1, 200))
def test_ceiling_is_monotone(policy: RetrySettings, attempt: int) -> None:
    assert ceiling(attempt, policy) <= ceiling(attempt + 1, policy)

    # the jitter upper bound really is the ceiling: rng returning its max gives it
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert backoff_delay(attempt, policy, Top()) == ceiling(attempt, policy)


@given(policies, st.integers(0, 100), st.integers(0, 2**32))
def test_dead_letter_after_max_attempts(policy: RetrySettings, done: int, seed: int) -> None:
    now = utcnow()
    when = next_attempt(
        PartnerUnavailableError("down"),
        attempts_done=done,
        created_at=now,
        now=now,
        policy=policy,
        rng=random.Random(seed),
    )
    if done >= policy.max_attempts:
        assert when is None
    elif when is not None:
        assert now <= when <= now + timedelta(seconds=policy.max_delay)


@given(policies, st.floats(0, 60 * 86400))
def test_dead_letter_after_max_age(policy: RetrySettings, age: float) -> None:
    now = utcnow()
    created = now - timedelta(seconds=age)
    when = next_attempt(
        PartnerUnavailableError("down"),
        attempts_done=0,
        created_at=created,
        now=now,
        policy=policy,
    )
    if age > policy.max_age:
        assert when is None
    if when is not None:
        assert (when - created).total_seconds() <= policy.max_age


@given(policies)
def test_permanent_errors_dead_letter_at_once(policy: RetrySettings) -> None:
    now = utcnow()
    error = PartnerRejectedError("no")
    assert next_attempt(error, attempts_done=0, created_at=now, now=now, policy=policy) is None


def test_per_operation_override() -> None:
    from gateway.config import InstitutionSettings, OperationSettings, TrustSettings

    fast = RetrySettings(base_delay=0.1, max_delay=1, max_attempts=3, max_age=60)
    p = InstitutionSettings(
        title="Courts",
        member="LV/GOV/1/TIS",
        trust=TrustSettings(certificates=("c.pem",)),  # type: ignore[arg-type]
        operations={"SubmitCourtRuling": OperationSettings(retry=fast, ordered=False)},
    )
    assert p.retry_for("SubmitCourtRuling") is fast
    assert p.retry_for("Other") is p.retry
    assert p.ordered_for("Other") and not p.ordered_for("SubmitCourtRuling")
