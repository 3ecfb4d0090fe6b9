"""`plus-gateway serve --with-simulators` (what `make run` starts): Radicale and the sync loop."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.calendar.radicale import CALENDAR_SIDE
from gateway.config import Settings

pytestmark = pytest.mark.integration


def test_serve_starts_radicale_and_the_loop_publishes(
    config_file: Path, settings: Settings, tmp_path: Path
) -> None:
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
            # The loop was woken by the change: the resource's calendar appears on Radicale.
            found = None
            with httpx.Client(timeout=10, auth=CALENDAR_SIDE) as side:
                deadline = time.monotonic() + 30
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
