"""`plus-gateway serve --with-simulators` (what `make run` starts): Radicale, and the calendar's
scheduled jobs publishing a change (the calendar-poll job finds it in the store)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.calendar.radicale import CALENDAR_SIDE
from gateway.config import Settings

pytestmark = pytest.mark.integration


def _config_with_calendar_jobs(settings: Settings, tmp_path: Path) -> Path:
    """The test settings with the job ticker on and only the calendar's two jobs, quick."""
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    root = Path(__file__).resolve().parents[3] / "schedules"
    for name, every in (("calendar-poll", 2), ("calendar-publish", 30)):
        spec = yaml.safe_load((root / f"{name}.yaml").read_text(encoding="utf-8"))
        spec["interval"] = every
        (schedules / f"{name}.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    data = settings.model_dump(mode="json", exclude_none=True)
    data["jobs"] = {**data["jobs"], "enabled": True, "schedules": str(schedules)}
    path = tmp_path / "config-jobs.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_serve_starts_radicale_and_the_calendar_jobs_publish(
    settings: Settings, tmp_path: Path
) -> None:
    config_file = _config_with_calendar_jobs(settings, tmp_path)
    log = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{settings.api.port}"
    caldav = settings.calendar.url
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "--config",
                str(config_file),
                "serve",
                "--with-simulators",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            with httpx.Client(timeout=10) as http:
                declared = http.put(
                    f"{base}/v1/calendar/resources/room-serve",
                    json={
                        "kind": "room",
                        "label": "Room S",
                        "working_hours": [{"weekday": 0, "opens": "09:00", "closes": "17:00"}],
                    },
                )
                assert declared.status_code == 200, declared.text
            # The calendar-poll job (every 2 s here) finds the change in the store and
            # publishes it: the resource's calendar appears on Radicale.
            found = None
            with httpx.Client(timeout=10, auth=CALENDAR_SIDE) as side:
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    found = side.request(
                        "PROPFIND",
                        f"{caldav}{settings.calendar.home}room-serve/",
                        headers={"Depth": "1"},
                    )
                    if found.status_code == 207 and b"hours-0.ics" in found.content:
                        break
                    time.sleep(0.2)
            assert found is not None and b"hours-0.ics" in found.content, log.read_text()[-3000:]
            assert "calendar (CalDAV, Radicale)" in log.read_text()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    # Radicale stopped with the gateway: nothing listens on its port any more.
    with pytest.raises(httpx.HTTPError):
        httpx.get(caldav, timeout=1)
