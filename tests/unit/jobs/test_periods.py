from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.jobs.periods import fire_times, period_at, period_named, zone
from gateway.jobs.registry import FUNCTIONS
from gateway.jobs.runner import load_jobs
from gateway.jobs.spec import load_schedules
from tests.conftest import ROOT

RIGA = zone("Europe/Riga")


def test_month_with_lag_is_the_month_before_in_riga() -> None:
    # 1 November 00:30 in Riga is still 31 October in UTC: the period follows Riga.
    at = datetime(2026, 10, 31, 22, 30, tzinfo=UTC)
    assert period_at("month", at, RIGA).key == "2026-11"
    assert period_at("month", at, RIGA, lag=1).key == "2026-10"
    assert period_at("month", datetime(2026, 1, 3, tzinfo=RIGA), RIGA, lag=1).key == "2025-12"
    assert period_at("year", datetime(2027, 1, 15, 5, tzinfo=RIGA), RIGA, lag=1).key == "2026"
    assert period_at("day", datetime(2026, 3, 1, 1, tzinfo=RIGA), RIGA, lag=1).key == "2026-02-28"


def test_named_periods_cover_their_days() -> None:
    october = period_named("month", "2026-10", RIGA)
    assert (october.first_day.isoformat(), october.last_day.isoformat()) == (
        "2026-10-01",
        "2026-10-31",
    )
    assert period_named("year", "2024", RIGA).last_day.isoformat() == "2024-12-31"
    slot = period_named("slot", "2026-10-05T14:05:07Z", RIGA)
    assert slot.start == datetime(2026, 10, 5, 14, 5, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "key"), [("month", "2026-13"), ("month", "2026"), ("day", "2026-02-30"), ("year", "x")]
)
def test_bad_period_names_are_refused(kind: str, key: str) -> None:
    with pytest.raises(ConfigError, match="period"):
        period_named(kind, key, RIGA)  # type: ignore[arg-type]


def test_fire_times_of_a_monthly_cron_over_a_week_outage(tmp_path: Path) -> None:
    specs = load_schedules(ROOT / "schedules", RIGA, frozenset(FUNCTIONS))
    monthly = specs["opendata-monthly"]
    down = datetime(2026, 10, 30, tzinfo=RIGA)
    up = down + timedelta(days=7)
    fires = fire_times(monthly.trigger, down, up)
    assert [f.isoformat() for f in fires] == ["2026-11-03T04:00:00+02:00"]


def test_the_project_schedules_load(settings) -> None:  # type: ignore[no-untyped-def]
    specs = load_jobs(settings)
    assert {"opendata-monthly", "opendata-yearly", "retention", "classifier-sync"} <= set(specs)
    assert specs["opendata-yearly"].period == "year"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: bad\nrun: noop\n", "exactly one of cron or interval"),
        ("name: bad\nrun: nothing\ninterval: 5\n", "unknown job function"),
        ("name: bad\nrun: noop\ncron: '61 * * * *'\n", "cron"),
        ("name: other\nrun: noop\ninterval: 5\n", "must match the file name"),
        ("name: bad\nrun: noop\ninterval: 5\nperiod: month\n", "interval job's period is slot"),
        ("name: bad\nrun: noop\ninterval: 5\nsurprise: 1\n", "surprise"),
    ],
)
def test_bad_job_files_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_schedules(tmp_path, RIGA, frozenset(FUNCTIONS))
    assert "bad.yaml" in caught.value.message
