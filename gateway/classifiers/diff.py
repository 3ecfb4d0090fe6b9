"""What changes between a local classifier and the service's current version of it.

The wire column ``ecase`` of a local classifier holds the service's codes; canonical codes are
PLUS's own and never come from the service. A code the service added therefore has no canonical
code yet: :func:`propose_canonical` derives one from its English label, and the diff says that
it is a proposal.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.classifiers.remote import RemoteClassifier, RemoteCode
from gateway.mapping.spec import Classifier

__all__ = [
    "WIRE_COLUMN",
    "AddedCode",
    "ClassifierDiff",
    "Relabel",
    "RemovedCode",
    "diff_classifier",
    "propose_canonical",
]

#: The classifier column holding E-case shared-classifier codes.
WIRE_COLUMN = "ecase"
LABEL_KEYS = ("label_lv", "label_en")
_MAX_CANONICAL = 60


@dataclass(frozen=True)
class AddedCode:
    """A code the service has and the local file has not; ``canonical`` is only proposed."""

    code: str
    canonical: str
    label_lv: str
    label_en: str


@dataclass(frozen=True)
class RemovedCode:
    """A local code the service no longer lists (or no longer lists as in force).

    ``code`` is None for a local entry that had no E-case code at all.
    """

    code: str | None
    canonical: str


@dataclass(frozen=True)
class Relabel:
    """A code whose label in one language changed."""

    code: str
    canonical: str
    key: str
    old: str | None
    new: str


@dataclass(frozen=True)
class ClassifierDiff:
    """One classifier, local against remote, on one day."""

    name: str
    source: str
    old_version: str
    new_version: str
    added: tuple[AddedCode, ...]
    removed: tuple[RemovedCode, ...]
    relabelled: tuple[Relabel, ...]
    remote: RemoteClassifier
    day: date

    @property
    def codes_changed(self) -> bool:
        """Whether codes or labels differ (the version alone may also differ)."""
        return bool(self.added or self.removed or self.relabelled)

    @property
    def in_sync(self) -> bool:
        """Same version, same codes, same labels: nothing to apply."""
        return self.old_version == self.new_version and not self.codes_changed

    def current_codes(self) -> tuple[RemoteCode, ...]:
        """The remote codes in force on the diff's day, in the service's order."""
        return self.remote.current(self.day)

    def proposed(self) -> dict[str, str]:
        """Remote code -> proposed canonical code, for the added codes."""
        return {a.code: a.canonical for a in self.added}

    def summary(self) -> str:
        """One line for humans and the journal: versions and counts."""
        relabelled = len({r.code for r in self.relabelled})
        return (
            f"{self.name} ({self.source}) {self.old_version} -> {self.new_version}: "
            f"{len(self.added)} added, {len(self.removed)} removed, {relabelled} relabelled"
        )

    def to_json(self) -> dict[str, Any]:
        """The diff as ``classifiers sync --json`` prints it."""
        return {
            "name": self.name,
            "source": self.source,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "in_sync": self.in_sync,
            "added": [
                {
                    "code": a.code,
                    "canonical": a.canonical,
                    "canonical_proposed": True,
                    "label_lv": a.label_lv,
                    "label_en": a.label_en,
                }
                for a in self.added
            ],
            "removed": [{"code": r.code, "canonical": r.canonical} for r in self.removed],
            "relabelled": [
                {"code": r.code, "canonical": r.canonical, "key": r.key, "old": r.old, "new": r.new}
                for r in self.relabelled
            ],
        }


def propose_canonical(label_en: str, taken: set[str], *, fallback: str = "code") -> str:
    """A snake_case canonical code from an English label, unique among ``taken``.

    Accents are dropped (NFKD), anything else that is not a letter or digit becomes ``_``; a
    code must start with a letter, as the mapping format requires of canonical codes.
    """
    ascii_text = (
        unicodedata.normalize("NFKD", label_en).encode("ascii", "ignore").decode("ascii").lower()
    )
    base = re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_")
    if len(base) > _MAX_CANONICAL:
        # Cut at a word boundary: a proposal is read by a person before it is kept.
        cut = base[: _MAX_CANONICAL + 1]
        base = cut.rsplit("_", 1)[0] if "_" in cut else base[:_MAX_CANONICAL]
    if not base:
        base = re.sub(r"[^a-z0-9]+", "_", fallback.lower()).strip("_") or "code"
    if not base[0].isalpha():
        base = f"code_{base}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def diff_classifier(local: Classifier, remote: RemoteClassifier, *, day: date) -> ClassifierDiff:
    """Compare ``local`` with the codes of ``remote`` in force on ``day``.

    A code whose validity has ended (or not begun) on ``day`` counts as absent: a withdrawn
    code the service still lists for history is removed here.
    """
    if local.source is None:
        raise ValueError(f"classifier {local.name!r} has no source to compare with")
    wire = local.to_wire.get(WIRE_COLUMN, {})
    canonical_of = {code: canonical for canonical, code in wire.items()}
    current = remote.current(day)
    remote_codes = {c.code for c in current}
    # An entry with no E-case code is not the service's: a sync replaces it too, so say so.
    removed = tuple(
        RemovedCode(code=wire.get(canonical), canonical=canonical)
        for canonical in local.canonical_codes
        if wire.get(canonical) not in remote_codes
    )
    # A removed code frees its canonical code, but proposing it for a different remote code
    # would silently re-point every stored message that uses it; keep it taken.
    taken = set(local.canonical_codes)
    added: list[AddedCode] = []
    relabelled: list[Relabel] = []
    for c in current:
        canonical = canonical_of.get(c.code)
        if canonical is None:
            proposal = propose_canonical(c.label_en, taken, fallback=c.code)
            taken.add(proposal)
            added.append(AddedCode(c.code, proposal, c.label_lv, c.label_en))
            continue
        labels = local.labels.get(canonical, {})
        for key in LABEL_KEYS:
            new = getattr(c, key)
            if labels.get(key) != new:
                relabelled.append(Relabel(c.code, canonical, key, labels.get(key), new))
    return ClassifierDiff(
        name=local.name,
        source=local.source,
        old_version=local.version,
        new_version=remote.version,
        added=tuple(added),
        removed=removed,
        relabelled=tuple(relabelled),
        remote=remote,
        day=day,
    )
