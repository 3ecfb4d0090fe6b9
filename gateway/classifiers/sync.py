"""One sync run: fetch, diff, plan, check for breaks; then apply all of it or nothing.

:func:`prepare` changes nothing; it returns a :class:`SyncReport` saying, per local classifier
with a ``source``, what the service has, what would change and what would break. :func:`apply`
then writes the out-of-date classifiers, each file atomically with its journal entry, and only
when no classifier has a break or an error (``force`` overrides breaks, and says so in the
journal; errors, such as a list the service does not publish, are never overridden).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from gateway.classifiers.apply import PlannedChange, apply_change, plan
from gateway.classifiers.breaks import Break, XsdEnumerations, check_breaks
from gateway.classifiers.diff import ClassifierDiff, diff_classifier
from gateway.classifiers.remote import RemoteClassifier, RemoteVersion
from gateway.errors import ConfigError
from gateway.mapping import MappingRegistry
from gateway.mapping.registry import CLASSIFIERS_DIR
from gateway.mapping.spec import Classifier, load_classifier
from gateway.store import Store

__all__ = [
    "ClassifierReport",
    "ClassifierSource",
    "SyncReport",
    "apply",
    "local_classifiers",
    "prepare",
]


class ClassifierSource(Protocol):
    """What a sync reads code lists from: the HTTP client, or a stand-in in tests."""

    def versions(self) -> list[RemoteVersion]:
        """Every published list and its version."""
        ...

    def get(self, source: str) -> RemoteClassifier:
        """The current version of one list."""
        ...


@dataclass
class ClassifierReport:
    """One local classifier in a sync run."""

    name: str
    source: str
    path: Path
    version: str
    diff: ClassifierDiff | None = None
    change: PlannedChange | None = None
    breaks: tuple[Break, ...] = ()
    #: Why the classifier could not be compared at all (not published by the service).
    error: str | None = None
    applied: bool = False
    forced: bool = False

    @property
    def in_sync(self) -> bool:
        """Nothing to do for this classifier."""
        return self.error is None and self.diff is not None and self.diff.in_sync

    def to_json(self) -> dict[str, Any]:
        """The classifier's part of ``classifiers sync --json``."""
        out: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "file": str(self.path),
            "local_version": self.version,
            "in_sync": self.in_sync,
        }
        if self.diff is not None:
            out.update(self.diff.to_json())
        out["breaks"] = [b.to_json() for b in self.breaks]
        out["error"] = self.error
        out["applied"] = self.applied
        out["forced"] = self.forced
        return out


@dataclass
class SyncReport:
    """Everything one run found, and (after :func:`apply`) what it applied."""

    classifiers: list[ClassifierReport]
    #: Lists the service publishes that no local classifier names as its source.
    remote_only: list[RemoteVersion] = field(default_factory=list)

    @property
    def breaks(self) -> list[Break]:
        """Every break of every classifier."""
        return [b for c in self.classifiers for b in c.breaks]

    @property
    def errors(self) -> list[ClassifierReport]:
        """Classifiers that could not be compared."""
        return [c for c in self.classifiers if c.error is not None]

    @property
    def pending(self) -> list[ClassifierReport]:
        """Classifiers with something to apply (and not applied yet)."""
        return [
            c
            for c in self.classifiers
            if c.error is None and c.change is not None and not c.in_sync and not c.applied
        ]

    def to_json(self) -> dict[str, Any]:
        """The run as ``classifiers sync --json`` prints it."""
        return {
            "classifiers": [c.to_json() for c in self.classifiers],
            "remote_only": [dataclasses.asdict(r) for r in self.remote_only],
            "breaks": len(self.breaks),
            "errors": len(self.errors),
            "applied": [c.name for c in self.classifiers if c.applied],
        }


def local_classifiers(mappings: Path) -> list[tuple[Path, Classifier]]:
    """Every classifier file under ``mappings/classifiers/``, loaded, sorted by name."""
    found = [
        (path, load_classifier(path))
        for path in sorted((Path(mappings) / CLASSIFIERS_DIR).glob("*.yaml"))
    ]
    return sorted(found, key=lambda item: item[1].name)


def prepare(
    client: ClassifierSource,
    *,
    mappings: Path,
    xsd: Path,
    samples: Path,
    names: list[str] | None = None,
    day: date | None = None,
) -> SyncReport:
    """Compare local classifiers with the service and check what a sync would break.

    ``names`` limits the run to those classifiers (ConfigError if one is unknown or has no
    source). Transport failures propagate as the client raised them.
    """
    day = day or date.today()
    local = local_classifiers(mappings)
    by_name = {c.name: (p, c) for p, c in local}
    if names:
        for name in names:
            if name not in by_name:
                raise ConfigError(f"--name: no classifier {name!r} under {mappings}")
            if by_name[name][1].source is None:
                raise ConfigError(f"--name: classifier {name!r} has no source to sync from")
    chosen = [(p, c) for p, c in local if c.source is not None and (not names or c.name in names)]
    registry = MappingRegistry.load(mappings)
    enumerations = XsdEnumerations(xsd)
    published = {v.source: v for v in client.versions()}
    reports: list[ClassifierReport] = []
    for path, classifier in chosen:
        assert classifier.source is not None  # filtered above
        report = ClassifierReport(classifier.name, classifier.source, path, classifier.version)
        reports.append(report)
        if classifier.source not in published:
            report.error = f"the service does not publish {classifier.source!r}"
            continue
        report.diff = diff_classifier(classifier, client.get(classifier.source), day=day)
        if report.diff.in_sync:
            continue
        change = plan(path, report.diff)
        report.breaks = tuple(
            check_breaks(
                classifier,
                change.new,
                classifier_file=path,
                registry=registry,
                xsd=enumerations,
                samples=Path(samples),
            )
        )
        report.change = dataclasses.replace(change, breaks=report.breaks)
    sources = {c.source for _, c in local if c.source is not None}
    remote_only = [v for s, v in sorted(published.items()) if s not in sources]
    return SyncReport(reports, remote_only if not names else [])


def apply(report: SyncReport, store: Store, *, actor: str, force: bool = False) -> list[str]:
    """Apply every pending change of ``report``; the names applied.

    Nothing is applied when a classifier has an error, or a break and ``force`` is off. Each
    file is replaced atomically together with its journal entry; should one fail, the ones
    before it stay applied (each complete and journaled) and the error propagates.
    """
    if report.errors:
        return []
    if report.breaks and not force:
        return []
    applied: list[str] = []
    for item in report.pending:
        assert item.change is not None  # pending implies a planned change
        forced = bool(item.breaks)
        apply_change(item.change, store, actor=actor, forced=forced)
        item.applied, item.forced = True, forced
        applied.append(item.name)
    return applied
