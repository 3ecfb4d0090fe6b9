"""``/v1/admin/jobs`` and ``plus-gateway jobs ls|run|history``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from gateway.cli import main
from gateway.config import Settings

PROBE = "name: probe\nrun: noop\ncron: '0 3 * * *'\nperiod: day\nlag: 1\n"


@pytest.fixture
def job_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / "probe.yaml").write_text(PROBE, encoding="utf-8")
    return make_settings(jobs={"schedules": str(schedules)})


def test_admin_routes(job_settings: Settings) -> None:
    from gateway.api.app import create_app
    from gateway.runtime import Runtime

    runtime = Runtime(job_settings)
    try:
        client = TestClient(create_app(runtime))
        (job,) = client.get("/v1/admin/jobs").json()["items"]
        assert job["name"] == "probe" and job["schedule"] == "cron 0 3 * * *"
        started = client.post("/v1/admin/jobs/probe/run", json={"actor": "anna"})
        assert started.status_code == 202, started.text
        period = started.json()["period"]
        deadline = time.monotonic() + 5
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            runs = client.get("/v1/admin/jobs/probe/runs").json()["items"]
            if runs and runs[0]["status"] == "succeeded":
                break
            time.sleep(0.05)
        assert runs[0]["period"] == period and runs[0]["status"] == "succeeded"
        again = client.post("/v1/admin/jobs/probe/run", json={"actor": "anna"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "JOB_PERIOD_TAKEN"
        no_reason = client.post("/v1/admin/jobs/probe/run", json={"actor": "anna", "force": True})
        assert no_reason.status_code == 422
        bad = client.post("/v1/admin/jobs/probe/run", json={"actor": "a", "period": "2026-13-01"})
        assert bad.status_code == 422
        assert client.post("/v1/admin/jobs/nope/run", json={"actor": "a"}).status_code == 404
        ready = client.get("/ready").json()
        assert "jobs" not in ready["checks"] or ready["checks"]["jobs"]["probe"]
        metrics = client.get("/metrics").text
        assert 'plusgw_job_runs_total{job="probe",outcome="succeeded"}' in metrics
    finally:
        runtime.close()


def test_cli_ls_run_history(
    job_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    data = job_settings.model_dump(mode="json", exclude_none=True)
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert main(["--config", str(config), "jobs", "ls"]) == 0
    assert "probe" in capsys.readouterr().out
    assert main(["--config", str(config), "jobs", "run", "probe"]) == 0
    assert "succeeded" in capsys.readouterr().out
    assert main(["--config", str(config), "jobs", "run", "probe"]) == 1
    assert "already ran" in capsys.readouterr().err
    assert main(["--config", str(config), "jobs", "run", "probe", "--period", "2026-01-01"]) == 2
    assert "needs a reason" in capsys.readouterr().err
    assert (
        main(
            [
                "--config",
                str(config),
                "jobs",
                "run",
                "probe",
                "--period",
                "2026-01-01",
                "--reason",
                "backfill",
                "--actor",
                "anna",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["--config", str(config), "jobs", "history", "probe"]) == 0
    out = capsys.readouterr().out
    assert "2026-01-01" in out and "by anna (backfill)" in out
    assert main(["--config", str(config), "jobs", "history", "nope"]) == 2
