"""What ``make run`` does for open data: ``serve --with-simulators`` stores synthetic extracts
and the open data jobs publish last month and last year to the CKAN simulator it started."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import httpx
import pytest
from ckanapi import RemoteCKAN

from gateway.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """The test settings with serve's job ticker on (the shared default is off)."""
    return make_settings(jobs={"enabled": True})


def test_serve_with_simulators_publishes_the_synthetic_data_to_ckan(
    config_file: Path, settings: Settings, tmp_path: Path
) -> None:
    today = date.today()
    month = f"{today.year}-{today.month - 1:02d}" if today.month > 1 else f"{today.year - 1}-12"
    year = str(today.year - 1)
    ckan_url = settings.opendata.ckan.url
    log = tmp_path / "serve.log"
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
        ckan = RemoteCKAN(ckan_url)
        names = [f"vpd-ds{n}" for n in settings.opendata.datasets]
        deadline = time.monotonic() + 180
        published: dict[str, list[str]] = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                published = {
                    name: [r["name"] for r in ckan.action.package_show(id=name)["resources"]]
                    for name in ckan.action.package_list()
                }
            except Exception:  # the simulator or the data sets are not there yet
                published = {}
            if len(published) == len(names) and all(
                {month, year} <= set(r) for r in published.values()
            ):
                break
            time.sleep(1)
        assert len(published) == len(names), (published, log.read_text()[-3000:])
        assert all(name.startswith(tuple(names)) for name in published)
        assert all({month, year} <= set(r) for r in published.values()), published
        # The runs are visible to operators, and nothing failed.
        base = f"http://127.0.0.1:{settings.api.port}"
        jobs = {j["name"]: j for j in httpx.get(f"{base}/v1/admin/jobs").json()["items"]}
        assert jobs["opendata-monthly"]["latest"]["status"] == "succeeded"
        assert jobs["opendata-yearly"]["latest"]["period"] == year
        ready = httpx.get(f"{base}/ready").json()
        assert ready["checks"]["jobs"]["opendata-monthly"]["status"] == "succeeded"
        files = list((Path(settings.opendata.output) / month).glob("*/datapackage.json"))
        assert len(files) == len(names)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
