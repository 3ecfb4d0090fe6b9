"""The periodic work that used to loop in ``serve``, and the polls of poll-only institutions,
as jobs (gateway/jobs/periodic.py, schedules/*.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.config import Settings
from gateway.jobs.context import JobContext
from gateway.jobs.periodic import due_institutions
from gateway.jobs.periods import period_at, zone
from gateway.jobs.runner import load_jobs

RIGA = zone("Europe/Riga")


def test_the_former_loops_are_slot_jobs_that_run_once_per_slot(settings: Settings) -> None:
    specs = load_jobs(settings)
    for name, run, every in (
        ("calendar-publish", "calendar.publish", 300),
        ("calendar-poll", "calendar.poll", 60),
        ("facade-archive", "facade.archive", 60),
        ("institutions-poll", "institutions.poll", 60),
    ):
        spec = specs[name]
        assert (spec.run, spec.period, spec.catch_up, spec.enabled) == (run, "slot", "latest", True)
        assert spec.trigger.interval == timedelta(seconds=every)
    assert specs["store-analyze"].period == "day"


def _ctx(settings: Settings, fire: datetime, **kw: Any) -> JobContext:
    spec = load_jobs(settings)["institutions-poll"]
    return JobContext(
        settings=settings,
        # The store is not reached: nothing is polled here.
        store=None,  # type: ignore[arg-type]
        spec=spec,
        period=period_at("slot", fire, RIGA),
        params=dict(kw.pop("params", {})),
        **kw,
    )


def test_an_institution_is_polled_on_the_slots_of_its_interval(make_settings: Any) -> None:
    settings = make_settings(
        institutions={"ievp": {"delivery_mode": "poll", "poll": {"interval": 300}}}
    )
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    slots = [start + timedelta(minutes=m) for m in range(20)]
    due = [bool(due_institutions(_ctx(settings, s))) for s in slots]
    # Every fifth one-minute slot, the same slots on every instance (a fixed grid).
    assert due.count(True) == 4
    assert [s.minute % 5 for s, d in zip(slots, due, strict=True) if d] == [0, 0, 0, 0]
    # An operator's run polls whatever the slot; push institutions are never polled.
    assert due_institutions(_ctx(settings, slots[1], actor="ops")) == ["ievp"]
    assert due_institutions(_ctx(settings, start, params={"institutions": []})) == []


def test_nothing_is_polled_while_no_institution_is_poll_only(settings: Settings) -> None:
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert due_institutions(_ctx(settings, start)) == []


def test_old_runs_of_interval_jobs_are_pruned_but_the_newest_stays(runner_factory: Any) -> None:
    def work(ctx: JobContext) -> dict[str, Any]:
        return {}

    every = "name: every\nrun: work\ninterval: 60\n"
    monthly = "name: monthly\nrun: work\ncron: '0 4 3 * *'\nperiod: month\n"
    runner = runner_factory({"work": work}, every=every, monthly=monthly)
    start = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)
    for minute in range(6):
        outcome = runner.tick("every", start + timedelta(minutes=minute))
        assert outcome is not None and outcome.status == "succeeded"
    runner.tick("monthly", datetime(2026, 11, 3, 4, 0, 1, tzinfo=UTC))
    assert len(runner.runs.history("every", limit=100)) == 6
    removed = runner.runs.prune(["every"], datetime.now(UTC) + timedelta(days=1), batch=2)
    assert removed == 5
    left = runner.runs.history("every", limit=100)
    assert [r["period"] for r in left] == ["2026-11-23T12:05:00Z"]  # the newest stays
    assert len(runner.runs.history("monthly", limit=100)) == 1  # not named: untouched
    # Nothing ends before the cut-off: nothing goes.
    assert runner.runs.prune(["every"], datetime(2000, 1, 1, tzinfo=UTC)) == 0


def test_the_retention_job_prunes_the_runs_of_interval_jobs(runner_factory: Any) -> None:
    from gateway.jobs.retention import retention_job

    nightly = "name: nightly\nrun: retention.apply\ncron: '30 2 * * *'\nperiod: day\n"
    nightly += "params: {slot_runs_days: 1}\n"
    runner = runner_factory({"retention.apply": retention_job}, nightly=nightly)
    outcome = runner.tick("nightly", datetime(2026, 11, 23, 2, 30, 1, tzinfo=RIGA))
    assert outcome is not None and outcome.status == "succeeded", outcome
    assert outcome.result["purged"]["job_runs"] == 0  # the project's interval jobs, none old
