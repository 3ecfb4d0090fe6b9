from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.config import load_settings
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_repository_config_loads_with_paths_resolved() -> None:
    settings = load_settings(ROOT / "config.yaml")
    assert settings.ecase.wsdl == ROOT / "wsdl" / "ecase.wsdl"
    assert settings.institutions["tis"].trust.certificates[0].is_absolute()
    assert settings.store.url == f"sqlite:///{ROOT}/var/gateway.db"
    assert settings.api.host == "127.0.0.1"


def test_settings_are_frozen() -> None:
    settings = load_settings(ROOT / "config.yaml")
    with pytest.raises(Exception, match="frozen"):
        settings.api.port = 1  # type: ignore[misc]


def test_environment_overrides_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUSGW_API__PORT", "9123")
    monkeypatch.setenv("PLUSGW_INSTITUTIONS__EM__OPERATION_TIMEOUT", "2.5")
    settings = load_settings(ROOT / "config.yaml")
    assert settings.api.port == 9123
    assert settings.institutions["em"].operation_timeout == 2.5
    # the rest of the institution still comes from the file
    assert settings.institutions["em"].channel == "direct"
    assert settings.timeouts("em")[1] == 2.5


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_missing_key_is_named(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    del data["institutions"]["tis"]["member"]
    with pytest.raises(ConfigError, match=r"institutions\.tis\.member"):
        load_settings(_write(tmp_path, data))


def test_moving_an_institution_between_channels_is_configuration(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    data["institutions"]["tis"]["channel"] = "direct"
    with pytest.raises(ConfigError, match=r"institutions\.tis.*needs an endpoint"):
        load_settings(_write(tmp_path, data))
    data["institutions"]["tis"]["endpoint"] = "http://127.0.0.1:9/soap/tis"
    settings = load_settings(_write(tmp_path, data))
    assert settings.institutions["tis"].channel == "direct"
    assert settings.timeouts("tis") == (5.0, 30.0)  # its own, no longer the platform's


def test_an_institution_cannot_take_the_ecase_endpoint_name(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    data["institutions"]["ecase"] = data["institutions"]["tis"]
    with pytest.raises(ConfigError, match=r"institutions\.ecase"):
        load_settings(_write(tmp_path, data))


def test_unknown_key_is_named(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    data["api"]["prot"] = 1
    with pytest.raises(ConfigError, match=r"api\.prot"):
        load_settings(_write(tmp_path, data))


def test_bad_value_is_named(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    data["api"]["port"] = "not-a-port"
    with pytest.raises(ConfigError, match=r"api\.port"):
        load_settings(_write(tmp_path, data))


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings("/nonexistent/config.yaml")


def test_cli_exits_2_naming_the_key(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    del data["signing"]["key"]
    path = _write(tmp_path, data)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(path), "queue", "ls"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "signing.key" in result.stderr
