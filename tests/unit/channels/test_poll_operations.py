"""A poll-only institution's operations are checked against the contract at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.runtime import Runtime
from tests.conftest import build_settings


@pytest.mark.parametrize("key", ["operation", "acknowledge"])
def test_an_unknown_poll_operation_stops_start_up_naming_the_key(
    tmp_path: Path, keys_dir: Path, key: str
) -> None:
    settings = build_settings(
        tmp_path,
        keys_dir,
        institutions={"ievp": {"delivery_mode": "poll", "poll": {key: "PollEverything"}}},
    )
    with pytest.raises(ConfigError, match=rf"institutions\.ievp\.poll\.{key}: 'PollEverything'"):
        Runtime(settings)


def test_the_contract_poll_operations_start(tmp_path: Path, keys_dir: Path) -> None:
    settings = build_settings(tmp_path, keys_dir, institutions={"ievp": {"delivery_mode": "poll"}})
    runtime = Runtime(settings)
    try:
        client = runtime.channels.client_for("ievp")
        assert client.has_operation("PollMessages")
        assert client.has_operation("AcknowledgePolledMessages")
        assert not client.has_operation("PollEverything")
    finally:
        runtime.close()
