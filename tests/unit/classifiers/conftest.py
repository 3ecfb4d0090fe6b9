"""A temporary copy of the classifier-sync fixture contract, and remote versions of it."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.classifiers.remote import RemoteClassifier, RemoteCode
from gateway.mapping.spec import load_classifier
from gateway.sim.classifiers import remote_from_local
from gateway.store import Store, create_store_engine, migrate

FIXTURE = Path(__file__).resolve().parent / "fixture"


@dataclass(frozen=True)
class Tree:
    """Paths of one temporary copy of the fixture contract."""

    root: Path
    mappings: Path
    xsd: Path
    samples: Path

    def classifier_file(self, name: str) -> Path:
        return self.mappings / "classifiers" / f"{name}.yaml"

    def remote(self, name: str) -> RemoteClassifier:
        """The classifier as the service publishes it now (same as the local file)."""
        found = remote_from_local(load_classifier(self.classifier_file(name)))
        assert found is not None
        return found


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    root = tmp_path / "contract"
    shutil.copytree(FIXTURE, root)
    return Tree(root, root / "mappings", root / "xsd", root / "samples")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    engine = create_store_engine(f"sqlite:///{tmp_path}/gateway.db")
    migrate(engine)
    yield Store(engine)
    engine.dispose()


def published(
    remote: RemoteClassifier,
    version: str,
    *,
    add: tuple[RemoteCode, ...] = (),
    drop: tuple[str, ...] = (),
    relabel: dict[str, str] | None = None,
) -> RemoteClassifier:
    """A new version of ``remote``: codes added, dropped, English labels changed."""
    relabel = relabel or {}
    codes = tuple(
        dataclasses.replace(c, label_en=relabel.get(c.code, c.label_en))
        for c in remote.codes
        if c.code not in drop
    )
    return dataclasses.replace(remote, version=version, codes=codes + add)
