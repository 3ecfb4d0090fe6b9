"""One loaded contract per test session: loading mappings and XSDs takes a while."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.signing import Signer
from gateway.sim import SimContract
from tests.conftest import ROOT

from .helpers import signer


@pytest.fixture(scope="session")
def shared_contract() -> SimContract:
    """The universal contract, loaded once: it depends only on paths, not on ports or keys."""
    return SimContract(load_settings(ROOT / "config.yaml"))


@pytest.fixture
def contract(shared_contract: SimContract) -> SimContract:
    """The universal contract as the simulators load it."""
    return shared_contract


@pytest.fixture
def gateway_signer(keys_dir: Path) -> Signer:
    """The gateway's demo signer."""
    return signer(keys_dir)
