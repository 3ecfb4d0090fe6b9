"""Job runners over real stores (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.jobs.periods import zone
from gateway.jobs.runner import JobRunner
from gateway.jobs.spec import JobSpec, load_schedules
from gateway.store import Store
from tests.unit.store.conftest import store  # noqa: F401  (the fixture, on both backends)

__all__ = ["make_specs"]


def make_specs(directory: Path, functions: frozenset[str], **files: str) -> dict[str, JobSpec]:
    """Write ``name: yaml`` job files to ``directory`` and load them."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
    return load_schedules(directory, zone("Europe/Riga"), functions)


@pytest.fixture
def runner_factory(
    settings: Settings,
    store: Store,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> Callable[..., JobRunner]:
    """``factory(functions, owner=..., **job_files)``: a runner over the test store."""
    quick = settings.model_copy(
        update={"jobs": settings.jobs.model_copy(update={"lease_seconds": 0.6})}
    )

    def factory(functions: dict[str, Any], owner: str = "a", **files: str) -> JobRunner:
        specs = make_specs(tmp_path / "schedules", frozenset(functions), **files)
        return JobRunner(quick, store, specs=specs, functions=functions, owner=owner)

    return factory
