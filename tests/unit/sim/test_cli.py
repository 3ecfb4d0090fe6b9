"""``plus-gateway sim``: serve one simulator by name, or make an institution send."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main


def test_send_to_an_absent_gateway_exits_1(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["--config", str(config_file), "sim", "send", "tis", "court_ruling"])
    assert status == 1
    assert "PARTNER_UNAVAILABLE" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["sim", "send", "tis"],  # no message type
        ["sim", "send", "tis", "penal_order"],  # not a type TIS sends
        ["sim", "send", "tis", "court_ruling", "--sample", "/nonexistent.json"],
        ["sim", "tis"],  # an E-case institution lives in the platform simulator
        ["sim", "nobody"],
        ["sim", "ecase", "extra"],
    ],
)
def test_usage_and_configuration_errors_exit_2(config_file: Path, argv: list[str]) -> None:
    assert main(["--config", str(config_file), *argv]) == 2
