"""The partner kit's command: what it writes, and its refusals (exit 2, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from tests.conftest import ROOT

CONFIG = str(ROOT / "config.yaml")


def test_kit_holds_the_contract_samples_profile_keys_and_a_relative_config(
    tmp_path: Path,
) -> None:
    out = tmp_path / "kit"
    assert (
        main(["--config", CONFIG, "harness", "kit", "--institution", "tis", "--out", str(out)]) == 0
    )
    for part in (
        "README.md",
        "SIGNATURE-PROFILE.md",
        "contract/wsdl/ecase.wsdl",
        "contract/xsd/ecase/messages.xsd",
        "contract/mappings/messages/court_ruling.yaml",
        "samples/court_ruling/valid.xml",
        "samples/invalid.yaml",
        "keys/gateway-key.pem",
        "keys/tis-sim-cert.pem",
    ):
        assert (out / part).is_file(), part
    # Only the kit's own institution's pair: no one else's private key.
    assert sorted(p.name for p in (out / "keys").iterdir()) == [
        "gateway-cert.pem",
        "gateway-key.pem",
        "tis-sim-cert.pem",
        "tis-sim-key.pem",
    ]
    config = yaml.safe_load((out / "config.yaml").read_text("utf-8"))
    text = (out / "config.yaml").read_text("utf-8")
    assert "var/keys" not in text and str(ROOT) not in text  # relocatable
    assert config["paths"]["wsdl"] == "contract/wsdl"
    readme = (out / "README.md").read_text("utf-8")
    assert "--institution tis" in readme and "court_ruling" in readme


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--institution", "nobody"], "nobody"),
        ([], "exactly one --institution"),
    ],
)
def test_kit_refusals_are_configuration_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status = main(["--config", CONFIG, "harness", "kit", *argv, "--out", str(tmp_path / "k")])
    err = capsys.readouterr().err
    assert status == 2 and message in err and "Traceback" not in err


def test_kit_refuses_a_directory_that_is_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "something").write_text("x")
    status = main(
        ["--config", CONFIG, "harness", "kit", "--institution", "tis", "--out", str(tmp_path)]
    )
    assert status == 2 and "is not empty" in capsys.readouterr().err


def test_harness_without_a_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", CONFIG, "harness", "--no-progress"]) == 2
    assert "--url" in capsys.readouterr().err
