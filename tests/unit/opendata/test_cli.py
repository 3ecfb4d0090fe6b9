"""``plus-gateway opendata generate|load|build|publish``."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.cli import main
from gateway.config import Settings
from gateway.opendata.ckansim import CkanSimulator, create_ckan_app
from gateway.server import start_app_thread, stop_app_threads


def test_generate_load_build_publish(
    config_file: Path, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = ["--config", str(config_file)]
    extract = tmp_path / "extract.csv"
    assert (
        main(
            [
                *cfg,
                "opendata",
                "generate",
                "--period",
                "2026-10",
                "--clients",
                "400",
                "--out",
                str(extract),
            ]
        )
        == 0
    )
    assert extract.read_text("utf-8").startswith("person_id,case_id,function_subtype,")
    assert main([*cfg, "opendata", "load", "--period", "2026-10", str(extract)]) == 0
    assert "rows accepted" in capsys.readouterr().out

    bad = tmp_path / "bad.csv"
    bad.write_text(extract.read_text("utf-8").replace("forced_labour,", "juggling,", 1), "utf-8")
    assert main([*cfg, "opendata", "load", "--period", "2026-10", str(bad)]) == 1
    assert "function_subtype: unknown function sub-type code" in capsys.readouterr().err

    out = tmp_path / "out"
    assert main([*cfg, "opendata", "build", "--period", "2026-10", "--out", str(out)]) == 0
    staged = sorted(p.name for p in (out / "2026-10").iterdir())
    assert staged == [
        "ds1-active-clients",
        "ds2-supervision-term",
        "ds3-programme-participation",
        "ds8-persons-and-clients",
    ]
    every = tmp_path / "every"
    assert (
        main(
            [
                *cfg,
                "opendata",
                "build",
                "--period",
                "2026-10",
                "--out",
                str(every),
                "--extract",
                str(extract),
                "--all-sets",
            ]
        )
        == 0
    )
    assert len(list((every / "2026-10").iterdir())) == 8
    capsys.readouterr()

    url = urlsplit(settings.opendata.ckan.url)
    assert url.hostname and url.port
    sim = CkanSimulator(organizations=(settings.opendata.ckan.organization,))
    server = start_app_thread(create_ckan_app(sim), url.hostname, url.port, "ckan-cli")
    try:
        assert (
            main([*cfg, "opendata", "publish", "--period", "2026-10", "--reason", "backfill"]) == 0
        )
        printed = capsys.readouterr().out
        assert "opendata-monthly 2026-10: succeeded" in printed
        assert json.loads(printed[printed.index("{") :])["published"]["sets"]
        assert sorted(p["name"] for p in sim.packages.values()) == [
            "vpd-ds1-active-clients",
            "vpd-ds2-supervision-term",
            "vpd-ds3-programme-participation",
            "vpd-ds8-persons-and-clients",
        ]
        # The same period again: refused without --force (it ran), idempotent with it.
        assert main([*cfg, "opendata", "publish", "--period", "2026-10"]) == 1
        assert (
            main(
                [*cfg, "opendata", "publish", "--period", "2026-10", "--force", "--reason", "check"]
            )
            == 0
        )
    finally:
        stop_app_threads(server)
