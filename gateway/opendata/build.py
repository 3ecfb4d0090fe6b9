"""Build one period's release: every staged data set, suppressed, as publishable packages.

A month is built from its own extract. A year is built from December's extract together with
its twelve months, which are protected first exactly as a monthly run protects them; their
cells are then *frozen* (already published), and the year's flow cells (sets 4, 5 and 6, which
add up over the months) are suppressed where a month would otherwise be exposed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.opendata.datasets import (
    DATASETS,
    FLOW_SETS,
    Built,
    PeriodSpan,
    build_period,
    flow_equations,
)
from gateway.opendata.disclosure import protect
from gateway.opendata.extract import CaseRow, ExtractCodes
from gateway.opendata.package import DataFile, render

__all__ = ["Release", "build_release"]


@dataclass(frozen=True)
class Release:
    """Every staged set of one period, ready to write and publish."""

    period: str
    files: tuple[DataFile, ...]

    @property
    def suppressed(self) -> int:
        """Cells suppressed over all sets."""
        return sum(f.suppressed for f in self.files)

    @property
    def sha256(self) -> str:
        """One hash over every data file (what a run published)."""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f.info.slug.encode() + b"\0" + f.sha256.encode())
        return digest.hexdigest()

    def write(self, directory: Path) -> list[Path]:
        """Write every package; their directories."""
        return [f.write(directory) for f in self.files]

    def summary(self) -> dict[str, Any]:
        """Per set: rows and suppressed cells (a job's result, the CLI's output)."""
        return {
            "period": self.period,
            "sha256": self.sha256,
            "sets": {
                f.info.slug: {"rows": f.rows, "suppressed": f.suppressed, "sha256": f.sha256}
                for f in self.files
            },
        }


def _published(built: Built, sets: Sequence[int]) -> tuple[dict[str, int], list[Any]]:
    keys = built.keys_of(sets)
    values = {k: v for k, v in built.values.items() if k in keys}
    equations = [
        (total, parts)
        for total, parts in built.equations
        if total in keys and all(p in keys for p in parts)
    ]
    return values, equations


def _protect_month(built: Built, sets: Sequence[int], threshold: int) -> set[str]:
    values, equations = _published(built, sets)
    return protect(values, equations, threshold)


def build_release(
    rows: Sequence[CaseRow],
    period: str,
    codes: ExtractCodes,
    options: Any,
) -> Release:
    """Build the staged sets (``options.datasets``) of ``period`` (``2026-10`` or ``2026``).

    ``options`` is OpendataSettings (threshold, URIs, publisher, contact, licence).
    Raises DisclosureError when a small cell cannot be protected.
    """
    sets = tuple(options.datasets)
    threshold = int(options.suppression_threshold)
    span = PeriodSpan.of(period)
    if not span.yearly:
        built = build_period(rows, span, codes)
        suppressed = _protect_month(built, sets, threshold)
    else:
        built = Built()
        frozen: dict[str, bool] = {}
        flow_sets = [n for n in sets if n in FLOW_SETS]
        for month in range(1, 13):
            month_built = build_period(rows, PeriodSpan.of(f"{period}-{month:02d}"), codes)
            month_hidden = _protect_month(month_built, sets, threshold)
            # Only the months' flow cells relate to the year's; stocks do not add up.
            flow_keys = month_built.keys_of(flow_sets)
            frozen.update({k: k in month_hidden for k in flow_keys})
            values, equations = _published(month_built, flow_sets)
            built.values.update(values)
            built.equations.extend(equations)
        year_built = build_period(rows, span, codes)
        year_values, year_equations = _published(year_built, sets)
        built.values.update(year_values)
        built.equations.extend(year_equations)
        built.equations.extend(
            (total, parts) for total, parts in flow_equations(built, period) if total in year_values
        )
        built.tables.update(year_built.tables)
        suppressed = protect(built.values, built.equations, threshold, frozen=frozen)
        built.values.update(year_built.values)
    files = tuple(
        render(
            DATASETS[n],
            span,
            built.tables[(period, n)],
            built.values,
            suppressed,
            codes,
            base_uri=options.base_uri,
            publisher=options.publisher,
            publisher_uri=options.publisher_uri,
            contact_email=options.contact_email,
            licence=options.licence,
        )
        for n in sets
    )
    return Release(period, files)
