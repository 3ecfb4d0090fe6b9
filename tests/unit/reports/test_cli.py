"""``plus-gateway reports synthesize|indicators|usage`` as an operator runs them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from gateway.cli import main


def test_synthesize_then_indicators_and_usage(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = ["--config", str(config_file)]
    args = ["reports", "synthesize", "--year", "2027", "--uses", "800", "--clients", "500"]
    assert main([*cfg, *args]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["uses"] == 800 and written["active_clients"] == 500

    # A second run on the same year is refused unless --add.
    assert main([*cfg, *args]) == 2
    assert "has uses already" in capsys.readouterr().err

    assert main([*cfg, "reports", "indicators", "--year", "2027", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    got = {i["id"]: i for i in report["indicators"]}
    assert got["eservice_uses"]["value"] == written["served"]
    assert got["clients_using_eservices"]["numerator"] == written["distinct_clients"]
    assert got["clients_using_eservices"]["denominator"] == 500

    assert main([*cfg, "reports", "indicators", "--year", "2027"]) == 0
    text = capsys.readouterr().out
    assert "Result indicators 2027" in text and f"{written['served']:,}" in text

    assert (
        main([*cfg, "reports", "usage", "--from", "2027-01", "--to", "2027-12", "--format", "csv"])
        == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sum(int(r["uses"]) for r in rows) == 800

    assert main([*cfg, "reports", "usage", "--from", "2027-06"]) == 0
    june = json.loads(capsys.readouterr().out)
    assert june["from"] == june["to"] == "2027-06"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["usage", "--from", "2027-13"], "--from"),
        (["usage", "--from", "2027-05", "--to", "2027-01"], "--to"),
        (["indicators", "--year", "27"], "--year"),
        (["synthesize", "--year", "2027", "--clients", "0"], "--clients"),
    ],
)
def test_bad_options_exit_2(
    config_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["--config", str(config_file), "reports", *args]) == 2
    assert message in capsys.readouterr().err
