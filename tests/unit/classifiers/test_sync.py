"""One sync run over several classifiers: all of it is applied, or none of it."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.classifiers.remote import RemoteClassifier, RemoteCode, RemoteVersion
from gateway.classifiers.sync import SyncReport, apply, prepare
from gateway.errors import ConfigError
from gateway.mapping.spec import load_classifier
from gateway.store import Store

from .conftest import Tree, published

NEW = RemoteCode("PROBACIJAS_PROGRAMMAS", "Programmas", "Probation programmes")


class FakeService:
    """Stands in for ClassifierClient: serves what the test says."""

    def __init__(self, *lists: RemoteClassifier) -> None:
        self.lists = {r.source: r for r in lists}

    def versions(self) -> list[RemoteVersion]:
        return [RemoteVersion(s, r.version) for s, r in self.lists.items()]

    def get(self, source: str) -> RemoteClassifier:
        return self.lists[source]


def run(tree: Tree, service: FakeService, names: list[str] | None = None) -> SyncReport:
    return prepare(
        service,
        mappings=tree.mappings,
        xsd=tree.xsd,
        samples=tree.samples,
        names=names,
        day=date(2026, 6, 1),
    )


def versions(tree: Tree) -> tuple[str, str]:
    return (
        load_classifier(tree.classifier_file("evaluation_purpose")).version,
        load_classifier(tree.classifier_file("function_subtype")).version,
    )


def test_one_break_holds_back_every_classifier(tree: Tree, store: Store) -> None:
    service = FakeService(
        published(tree.remote("evaluation_purpose"), "2026.2", relabel={"PIRMSTIESAS": "Pre"}),
        published(tree.remote("function_subtype"), "2027.1", add=(NEW,)),
    )
    report = run(tree, service)
    assert [c.name for c in report.pending] == ["evaluation_purpose", "function_subtype"]
    assert [b.kind for b in report.breaks] == ["xsd_missing_code"]
    assert apply(report, store, actor="ops") == []
    assert versions(tree) == ("2026.1", "2026.1")

    assert apply(report, store, actor="ops", force=True) == [
        "evaluation_purpose",
        "function_subtype",
    ]
    assert versions(tree) == ("2026.2", "2027.1")
    assert [(c.name, c.forced) for c in report.classifiers] == [
        ("evaluation_purpose", False),
        ("function_subtype", True),
    ]


def test_a_list_the_service_lacks_holds_back_everything_even_forced(
    tree: Tree, store: Store
) -> None:
    service = FakeService(published(tree.remote("evaluation_purpose"), "2026.2"))
    report = run(tree, service)
    assert [(c.name, c.error) for c in report.errors] == [
        ("function_subtype", "the service does not publish 'VPD.FUNCTION_SUBTYPE'")
    ]
    assert apply(report, store, actor="ops", force=True) == []
    assert versions(tree) == ("2026.1", "2026.1")


def test_names_limit_the_run_and_remote_only_lists_are_reported(tree: Tree) -> None:
    extra = RemoteClassifier("VPD.CLIENT_CATEGORY", "1", "Clients", (NEW,))
    service = FakeService(tree.remote("evaluation_purpose"), tree.remote("function_subtype"), extra)
    full = run(tree, service)
    assert [c.name for c in full.classifiers] == ["evaluation_purpose", "function_subtype"]
    assert all(c.in_sync for c in full.classifiers)
    assert [r.source for r in full.remote_only] == ["VPD.CLIENT_CATEGORY"]
    assert [c.name for c in run(tree, service, ["function_subtype"]).classifiers] == [
        "function_subtype"
    ]
    with pytest.raises(ConfigError, match="no source"):
        run(tree, service, ["risk_level"])
    with pytest.raises(ConfigError, match="no classifier 'nope'"):
        run(tree, service, ["nope"])
