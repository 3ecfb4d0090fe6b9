"""Every set's package: CSV and codes, a valid Frictionless Data Package, DCAT-AP 3 that
conforms to the shipped SHACL shapes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from frictionless import Package

from gateway.config import Settings
from gateway.opendata.build import Release, build_release
from gateway.opendata.extract import ExtractCodes
from gateway.opendata.package import validate_dcat
from gateway.opendata.synthetic import SyntheticYear


@pytest.fixture(scope="module")
def release(codes: ExtractCodes, tmp_path_factory: pytest.TempPathFactory) -> tuple[Release, Path]:
    from gateway.config import load_settings
    from tests.conftest import ROOT

    settings: Settings = load_settings(
        ROOT / "config.yaml", signing={"key": "k", "certificate": "c"}
    )
    options = settings.opendata.model_copy(update={"datasets": tuple(range(1, 9))})
    rows = list(SyntheticYear(2026, clients=2000, seed=3).extract(10))
    built = build_release(rows, "2026-10", codes, options)
    out = tmp_path_factory.mktemp("opendata")
    built.write(out)
    return built, out


def test_all_eight_sets_are_written(release: tuple[Release, Path]) -> None:
    built, out = release
    slugs = sorted(p.name for p in (out / "2026-10").iterdir())
    assert len(slugs) == 8 and slugs[0] == "ds1-active-clients"
    for f in built.files:
        folder = out / "2026-10" / f.info.slug
        assert {p.name for p in folder.iterdir()} == {
            f.info.file,
            "codes.csv",
            "datapackage.json",
            "dcat.ttl",
        }
        rows = list(csv.DictReader(io.StringIO((folder / f.info.file).read_text("utf-8"))))
        assert rows and all(r["period"] == "2026-10" for r in rows)
        # A suppressed count is empty and flagged; a published one is never small.
        for r in rows:
            for column, value in r.items():
                if column.endswith("_flag"):
                    count = r[column[:-5]]
                    assert (value == "c") == (count == "")
                    if count and "." not in count:
                        assert int(count) == 0 or int(count) >= 5


def test_the_codes_are_explained(release: tuple[Release, Path]) -> None:
    _, out = release
    codes = list(
        csv.DictReader(
            io.StringIO((out / "2026-10" / "ds1-active-clients" / "codes.csv").read_text("utf-8"))
        )
    )
    by = {(c["field"], c["code"]): c for c in codes}
    assert by[("function_subtype", "public_work")]["label_en"].startswith("Public work")
    assert by[("category", "under_18")]["label_lv"]
    assert len([c for c in codes if c["field"] == "function_subtype"]) == 13


def test_frictionless_validates_every_package(release: tuple[Release, Path]) -> None:
    built, out = release
    for f in built.files:
        descriptor = out / "2026-10" / f.info.slug / "datapackage.json"
        report = Package(str(descriptor)).validate()
        assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:5]
        data = json.loads(descriptor.read_text("utf-8"))
        assert data["licenses"][0]["path"].startswith("https://creativecommons.org/")
        assert data["contributors"][0]["email"]
        assert data["temporal"] == {"start": "2026-10-01", "end": "2026-10-31"}


def test_dcat_ap_conforms_to_the_shacl_shapes(release: tuple[Release, Path]) -> None:
    built, _ = release
    for f in built.files[:2]:  # pyshacl takes about a second a graph
        conforms, report = validate_dcat(f.dcat)
        assert conforms, report
    text = built.files[0].dcat
    for expected in (
        "dcat:contactPoint",
        "dct:publisher",
        "dct:license",
        "dct:accrualPeriodicity",
        "frequency/MONTHLY",
        "dct:temporal",
        "dct:conformsTo",
        "foaf:page",
        "https://data.vpd.gov.lv/opendata/ds1-active-clients",
    ):
        assert expected in text


def test_shacl_catches_broken_metadata(release: tuple[Release, Path]) -> None:
    built, _ = release
    broken = "\n".join(
        line for line in built.files[0].dcat.splitlines() if "dcat:accessURL" not in line
    )
    conforms, report = validate_dcat(broken)
    assert not conforms and "accessURL" in report
