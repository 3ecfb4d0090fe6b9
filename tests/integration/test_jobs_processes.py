"""Scheduled jobs in real ``python -m gateway serve`` processes.

- two instances on one PostgreSQL database run every period of a job exactly once;
- a run whose instance is killed (SIGKILL) is taken over by the other once its lease ends;
- periods missed while the only instance was down run once each after restart.

The probe job is ``noop`` with ``record``: each completed run appends "job period attempt
owner" to a file, so executions are counted, not only rows.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.store import create_store_engine
from gateway.store.jobs import job_runs
from tests.conftest import free_port, postgres_schema
from tests.integration.procs import Proc, gateway_proc, write_config

pytestmark = pytest.mark.integration
#: Seconds a gateway process may take to answer /health (a busy two-core machine is slow).
START = 90


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema(migrated=True) as url:  # migrated once, before two instances start
        yield url


def schedules(tmp: Path, job: str) -> Path:
    directory = tmp / f"schedules-{uuid.uuid4().hex[:4]}"
    directory.mkdir()
    (directory / "probe.yaml").write_text(job, encoding="utf-8")
    return directory


def gateway(tmp: Path, keys: Path, url: str, jobs: dict[str, Any], name: str) -> Proc:
    config = write_config(tmp, keys, url, sim_port=free_port(), jobs=jobs)
    return gateway_proc(config, tmp, name)


def runs(url: str) -> list[dict[str, Any]]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    select(job_runs).where(job_runs.c.job == "probe").order_by(job_runs.c.period)
                )
            ]
    finally:
        engine.dispose()


def executions(record: Path) -> list[tuple[str, int, str]]:
    if not record.exists():
        return []
    out = []
    for line in record.read_text("utf-8").splitlines():
        _job, period, attempt, owner = line.split(" ", 3)
        out.append((period, int(attempt), owner))
    return out


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.postgres
def test_two_instances_run_every_period_exactly_once(
    tmp_path: Path, keys_dir: Path, pg_url: str
) -> None:
    record = tmp_path / "record.txt"
    job = (
        f"name: probe\nrun: noop\ninterval: 1\ncatch_up: latest\n"
        f"params: {{seconds: 0.2, record: '{record}'}}\n"
    )
    jobs = {"schedules": str(schedules(tmp_path, job)), "lease_seconds": 3, "poll_interval": 0.5}
    procs = [gateway(tmp_path, keys_dir, pg_url, jobs, f"gw{i}") for i in range(2)]
    try:
        for p in procs:
            p.start(START)
        time.sleep(8)
    finally:
        for p in procs:
            p.stop()
    rows = runs(pg_url)
    done = executions(record)
    per_period = Counter(period for period, _, _ in done)
    assert len(rows) >= 6, rows
    # A run in progress when the instances stopped was given back for any instance to finish.
    unfinished = [r for r in rows if r["status"] != "succeeded"]
    assert all(r["last_error_code"] == "INSTANCE_STOPPED" for r in unfinished), unfinished
    assert len(unfinished) <= 2
    assert {r["period"] for r in rows if r["status"] == "succeeded"} == set(per_period)
    assert max(per_period.values()) == 1, per_period.most_common(3)
    # Both instances ticked for every second; the runs table let one of them run each.
    owners = Counter(owner.split(":")[2] for _, _, owner in done)
    assert len(owners) == 2, owners


@pytest.mark.postgres
def test_a_killed_instances_run_is_taken_over_once(
    tmp_path: Path, keys_dir: Path, pg_url: str
) -> None:
    record = tmp_path / "record.txt"
    job = (
        f"name: probe\nrun: noop\ninterval: 3600\ncatch_up: latest\n"
        f"params: {{seconds: 4, record: '{record}'}}\n"
    )
    jobs = {"schedules": str(schedules(tmp_path, job)), "lease_seconds": 1.5, "poll_interval": 0.3}
    first = gateway(tmp_path, keys_dir, pg_url, jobs, "gw0")
    second = gateway(tmp_path, keys_dir, pg_url, jobs, "gw1")
    try:
        first.start(START)
        # The catch-up at start claims this hour's slot and starts the four-second run.
        running = wait_for(
            lambda: [r for r in runs(pg_url) if r["status"] == "running"],
            10,
            "the first instance to start the run",
        )
        first.kill()
        second.start(START)
        period = running[0]["period"]
        wait_for(
            lambda: [
                r for r in runs(pg_url) if r["period"] == period and r["status"] == "succeeded"
            ],
            20,
            "the second instance to finish the run",
        )
    finally:
        first.kill()
        second.stop()
    ((done_period, attempt, _owner),) = executions(record)
    assert done_period == period and attempt == 2
    (row,) = runs(pg_url)
    assert row["attempts"] == 2 and row["status"] == "succeeded"


def test_periods_missed_while_down_run_once_after_restart(tmp_path: Path, keys_dir: Path) -> None:
    record = tmp_path / "record.txt"
    url = f"sqlite:///{tmp_path}/gateway.db"
    job = (
        f"name: probe\nrun: noop\ninterval: 2\ncatch_up: all\ncatch_up_limit: 20\n"
        f"params: {{record: '{record}'}}\n"
    )
    jobs = {"schedules": str(schedules(tmp_path, job)), "poll_interval": 0.5}
    proc = gateway(tmp_path, keys_dir, url, jobs, "gw")
    try:
        proc.start(START)
        wait_for(lambda: len(runs(url)) >= 2, 10, "two runs before the outage")
    finally:
        proc.stop()
    time.sleep(7)  # three or four fire times pass with no instance up
    try:
        proc.start(START)
        before = len(runs(url))
        wait_for(lambda: len(runs(url)) >= before + 4, 10, "the missed periods to run")
    finally:
        proc.stop()
    rows = runs(url)
    slots = sorted(datetime.fromisoformat(r["period"].replace("Z", "+00:00")) for r in rows)
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(slots)}
    assert gaps == {2.0}, sorted(r["period"] for r in rows)  # no missed period left out
    assert max(Counter(p for p, _, _ in executions(record)).values()) == 1  # none twice
    assert all(r["status"] == "succeeded" for r in rows)
