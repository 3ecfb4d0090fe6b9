"""The runs table decides: once per period across runners, retries, takeover, catch-up."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from gateway.errors import ConfigError, PartnerUnavailableError, PermanentError
from gateway.jobs.context import JobContext
from gateway.jobs.runner import JobRunner, backoff_delay
from gateway.store import Store
from gateway.store.jobs import job_runs
from gateway.store.schema import utcnow

MONTHLY = "name: monthly\nrun: work\ncron: '0 4 3 * *'\nperiod: month\nlag: 1\n"
EVERY_SECOND = "name: often\nrun: work\ninterval: 1\n"
Factory = Callable[..., JobRunner]
#: Most behaviour is the runner's, not the database's: PostgreSQL runs only the tests where
#: the backend decides (concurrent claims, takeover, journaled operator runs).
SQLITE_ONLY = pytest.mark.parametrize("store", ["sqlite"], indirect=True)


def recorder() -> tuple[dict[str, Any], Counter[str]]:
    calls: Counter[str] = Counter()

    def work(ctx: JobContext) -> dict[str, Any]:
        calls[ctx.period.key] += 1
        return {"period": ctx.period.key}

    return {"work": work}, calls


def test_two_runners_ticking_together_run_a_period_once(runner_factory: Factory) -> None:
    functions, calls = recorder()
    a = runner_factory(functions, owner="a", monthly=MONTHLY)
    b = runner_factory(functions, owner="b", monthly=MONTHLY)
    fire = datetime(2026, 11, 3, 4, 0, 1, tzinfo=UTC)
    outcomes: list[Any] = []
    threads = [
        threading.Thread(target=lambda r=r: outcomes.append(r.tick("monthly", fire)))
        for r in (a, b, a, b)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == {"2026-10": 1}
    assert [o.status for o in outcomes if o is not None] == ["succeeded"]
    run = a.runs.get("monthly", "2026-10")
    assert run is not None and run["status"] == "succeeded" and run["attempts"] == 1


@SQLITE_ONLY
def test_a_clock_jumping_back_does_not_run_a_period_again(runner_factory: Factory) -> None:
    functions, calls = recorder()
    a = runner_factory(functions, monthly=MONTHLY)
    a.tick("monthly", datetime(2026, 11, 3, 4, 0, 5, tzinfo=UTC))
    # The clock is set back an hour and the same fire time comes round again.
    a.tick("monthly", datetime(2026, 11, 3, 3, 0, 5, tzinfo=UTC) + timedelta(hours=1))
    a.catch_up(datetime(2026, 11, 10, tzinfo=UTC))
    assert calls == {"2026-10": 1}


@SQLITE_ONLY
def test_a_week_outage_catches_the_month_up_once(runner_factory: Factory) -> None:
    functions, calls = recorder()
    a = runner_factory(functions, monthly=MONTHLY)
    # Last run: October's fire (for September). Down from 30 October to 6 November.
    a.tick("monthly", datetime(2026, 10, 3, 4, 0, 1, tzinfo=UTC))
    restart = datetime(2026, 11, 6, 12, tzinfo=UTC)
    first = a.catch_up(restart)
    second = a.catch_up(restart + timedelta(minutes=1))
    assert [o.period for o in first] == ["2026-10"]
    assert second == []
    assert calls == {"2026-09": 1, "2026-10": 1}


@SQLITE_ONLY
def test_catch_up_all_runs_each_missed_period_once_in_order(runner_factory: Factory) -> None:
    functions, calls = recorder()
    text = MONTHLY.replace("lag: 1\n", "lag: 1\ncatch_up: all\ncatch_up_limit: 3\n")
    a = runner_factory(functions, monthly=text)
    a.tick("monthly", datetime(2026, 3, 3, 4, 0, 1, tzinfo=UTC))
    outcomes = a.catch_up(datetime(2026, 9, 20, tzinfo=UTC))
    # Six months down: the three latest missed periods, oldest first, once each.
    assert [o.period for o in outcomes] == ["2026-06", "2026-07", "2026-08"]
    assert a.catch_up(datetime(2026, 9, 20, 0, 1, tzinfo=UTC)) == []
    assert sum(calls.values()) == 4


@SQLITE_ONLY
def test_a_new_installation_runs_only_the_latest_period(runner_factory: Factory) -> None:
    functions, calls = recorder()
    a = runner_factory(functions, monthly=MONTHLY)
    a.catch_up(datetime(2026, 11, 20, tzinfo=UTC))
    assert calls == {"2026-10": 1}


@SQLITE_ONLY
def test_failures_retry_with_backoff_then_succeed(runner_factory: Factory) -> None:
    attempts: list[int] = []

    def flaky(ctx: JobContext) -> dict[str, Any]:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise PartnerUnavailableError("CKAN down", partner="ckan")
        return {}

    text = EVERY_SECOND + "retry: {max_attempts: 5, base_delay: 0.05, max_delay: 0.1}\n"
    a = runner_factory({"work": flaky}, often=text)
    first = a.tick("often")
    assert (
        first is not None and first.status == "retry" and first.error_code == "PARTNER_UNAVAILABLE"
    )
    row = a.runs.get("often", first.period)
    assert (
        row is not None and row["status"] == "retry" and row["next_attempt_at"] > row["started_at"]
    )
    deadline = time.monotonic() + 5
    while (
        time.monotonic() < deadline
        and (a.runs.get("often", first.period) or {})["status"] != "succeeded"
    ):
        a.sweep()
        time.sleep(0.02)
    assert attempts == [1, 2, 3]
    assert a.runs.get("often", first.period)["status"] == "succeeded"  # type: ignore[index]


@SQLITE_ONLY
def test_retries_are_bounded_and_the_failure_journaled(
    runner_factory: Factory, store: Store
) -> None:
    def broken(ctx: JobContext) -> dict[str, Any]:
        raise RuntimeError("half-way crash")

    text = EVERY_SECOND + "retry: {max_attempts: 2, base_delay: 0.01, max_delay: 0.01}\n"
    a = runner_factory({"work": broken}, often=text)
    first = a.tick("often")
    assert first is not None and first.status == "retry" and first.error_code == "JOB_CRASHED"
    time.sleep(0.05)
    (second,) = a.sweep()
    assert second.status == "failed" and second.attempt == 2
    entries = _journal(store, "job:often")
    assert [e["status"] for e in entries] == ["job_failed"]
    assert "half-way crash" in entries[0]["detail"]


@SQLITE_ONLY
def test_a_permanent_error_fails_at_once(runner_factory: Factory) -> None:
    def refused(ctx: JobContext) -> dict[str, Any]:
        raise PermanentError("the period cannot be protected")

    a = runner_factory({"work": refused}, often=EVERY_SECOND)
    outcome = a.tick("often")
    assert outcome is not None and outcome.status == "failed" and outcome.attempt == 1


def test_a_dead_instances_run_is_taken_over_after_its_lease(
    runner_factory: Factory, store: Store
) -> None:
    functions, calls = recorder()
    a = runner_factory(functions, owner="a", often=EVERY_SECOND)
    b = runner_factory(functions, owner="b", often=EVERY_SECOND)
    # Instance a claimed a period and died before running it. The lease is long, and its end
    # is moved to now by hand, so that a slow machine cannot end it before the first sweep.
    claim = a.runs.claim("often", "2026-10-05T14:05:07Z", owner="a", lease=timedelta(minutes=10))
    assert claim is not None
    assert b.sweep() == []  # the lease still holds
    with store.db.transaction() as conn:
        conn.execute(update(job_runs).values(lease_until=utcnow() - timedelta(seconds=1)))
    (outcome,) = b.sweep()
    assert outcome.status == "succeeded" and outcome.attempt == 2
    assert calls == {"2026-10-05T14:05:07Z": 1}
    # The dead owner's late result is not recorded over the takeover.
    assert not a.runs.succeed(claim, {"late": True})


@SQLITE_ONLY
def test_a_slow_run_keeps_its_lease_and_nobody_takes_it(runner_factory: Factory) -> None:
    started = threading.Event()

    def slow(ctx: JobContext) -> dict[str, Any]:
        started.set()
        for _ in range(15):
            ctx.progress(0, 1, "working")
            time.sleep(0.1)
        return {}

    a = runner_factory({"work": slow}, owner="a", often=EVERY_SECOND)
    b = runner_factory({"work": slow}, owner="b", often=EVERY_SECOND)
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(a.tick("often")))
    worker.start()
    started.wait(5)
    taken = []
    for _ in range(12):  # 1.2 s: twice the lease of 0.6 s, renewed every 0.2 s
        taken += b.sweep()
        time.sleep(0.1)
    worker.join()
    assert taken == []
    assert result[0].status == "succeeded"


@SQLITE_ONLY
def test_stopping_gives_runs_back_for_any_instance(runner_factory: Factory) -> None:
    started = threading.Event()

    def long(ctx: JobContext) -> dict[str, Any]:
        started.set()
        while True:
            ctx.progress(0, 1, "working")
            time.sleep(0.02)

    a = runner_factory({"work": long}, owner="a", often=EVERY_SECOND)
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(a.tick("often")))
    worker.start()
    started.wait(5)
    a.stop(2.0)
    worker.join(5)
    assert result[0].status == "lost"
    row = a.runs.get("often", result[0].period)
    assert (
        row is not None
        and row["status"] == "retry"
        and row["last_error_code"] == "INSTANCE_STOPPED"
    )


def test_operator_runs_forced_and_past_periods_are_journaled(
    runner_factory: Factory, store: Store
) -> None:
    functions, calls = recorder()
    a = runner_factory(functions, monthly=MONTHLY)
    current = a.current_period(a.spec("monthly")).key
    first = a.run_now("monthly", actor="anna")
    assert first.status == "succeeded" and first.period == current
    again = a.run_now("monthly", actor="anna")
    assert again.status == "skipped" and "--force" in (again.error or "")
    with pytest.raises(ConfigError, match="reason"):
        a.run_now("monthly", force=True, actor="anna")
    forced = a.run_now("monthly", force=True, actor="anna", reason="CKAN lost the files")
    assert forced.status == "succeeded" and forced.attempt == 2
    with pytest.raises(ConfigError, match="reason"):
        a.run_now("monthly", period="2025-04", actor="anna")
    past = a.run_now("monthly", period="2025-04", actor="anna", reason="backfill")
    assert past.status == "succeeded"
    assert calls == {current: 2, "2025-04": 1}
    entries = _journal(store, "job:monthly")
    assert [(e["status"], e["actor"]) for e in entries] == [
        ("job_forced", "anna"),
        ("job_past_period", "anna"),
    ]
    assert "CKAN lost the files" in entries[0]["detail"]
    history = a.runs.history("monthly")
    assert {r["period"] for r in history} == {current, "2025-04"}
    assert all(r["forced"] for r in history if r["period"] == "2025-04")


def test_backoff_grows_and_stays_under_the_cap() -> None:
    delays = [backoff_delay(n, 10, 100) for n in range(1, 8)]
    assert 5 <= delays[0] <= 10
    assert all(d <= 100 for d in delays)
    assert min(delays[4:]) >= 50


@SQLITE_ONLY
def test_metrics_and_health(runner_factory: Factory) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    functions, _ = recorder()
    a = runner_factory(functions, monthly=MONTHLY)
    b = JobRunner(
        a.settings, a.store, specs=a.specs, functions=functions, metrics_registry=registry
    )
    b.tick("monthly", datetime(2026, 11, 3, 4, 0, 1, tzinfo=UTC))
    text = generate_latest(registry).decode()
    assert 'plusgw_job_runs_total{job="monthly",outcome="succeeded"} 1.0' in text
    assert 'plusgw_job_last_success_timestamp_seconds{job="monthly"}' in text
    assert b.health()["monthly"]["status"] == "succeeded"


def _journal(store: Store, operation: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from gateway.store.schema import journal

    with store.db.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                select(journal).where(journal.c.operation == operation).order_by(journal.c.id)
            )
        ]


@SQLITE_ONLY
def test_the_chain_verifies_after_job_entries(runner_factory: Factory, store: Store) -> None:
    functions, _ = recorder()
    a = runner_factory(functions, monthly=MONTHLY)
    a.run_now("monthly", period="2025-01", actor="anna", reason="backfill")
    with store.db.transaction() as conn:
        conn.execute(update(job_runs).values(lease_until=utcnow()))
    assert store.journal.verify().ok


@SQLITE_ONLY
def test_a_long_outage_of_a_fine_grained_job_catches_up_the_latest_only_and_fast(
    runner_factory: Factory,
) -> None:
    functions, calls = recorder()
    a = runner_factory(functions, often=EVERY_SECOND)
    now = datetime(2026, 11, 20, 12, 0, 0, 500000, tzinfo=UTC)
    a.tick("often", now - timedelta(days=30))  # a month of one-second slots missed
    started = time.monotonic()
    (outcome,) = a.catch_up(now)
    assert time.monotonic() - started < 2
    assert outcome.period == "2026-11-20T12:00:00Z"
    assert len(calls) == 2
