"""Statistics in cuts (VOL-31) and the small-cell suppression of what is published.

Cuts: ``policy`` (every organisation; for policy analysts, and as CSV), ``organisation`` (one
organisation's own data, for its users) and ``volunteer`` (one's own hours). Dimensions:
``municipality`` (``digital`` for online postings), ``kind``, ``field`` (the organisation's
field of activity), ``month`` and ``year`` (of the day worked; of creation for postings), and
``organisation`` (volunteer cut only).

Measures per cell: distinct volunteers with approved hours, distinct organisations, postings,
approved hours. Erased volunteers still count: their hours stay, anonymised.

Suppression (:func:`suppress`) applies to the policy cut, the one published beyond an
organisation, by the same rule and code as the open data sets
(:func:`gateway.opendata.disclosure.protect`, docs/OPEN-DATA.md): a cell with fewer than
``facade.min_cell`` volunteers (but more than none) has its volunteers and hours withheld
(primary); then, as long as an attacker solving the table's additive relation could pin a
withheld cell to a small value, the smallest other non-empty cell is withheld too
(secondary). Organisation and posting counts are about organisations, not people, and stay.

The relation given to the attacker is "the cells add up to their sum". It is exact for hours
(withheld in the same cells) and for volunteers when each volunteer falls in one cell. Where a
volunteer counts in several cells (two municipalities), the published total of distinct
volunteers only bounds the sum from below, which tells less; and a published total is never
small (a small one is withheld), so a withheld cell can still be anything up to it.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from gateway.opendata.disclosure import DisclosureError, protect

__all__ = ["DIMENSIONS", "build_cut", "suppress", "to_csv"]

#: Dimensions a cut may be made by.
DIMENSIONS = ("municipality", "kind", "field", "month", "year", "organisation")


def _key(row: dict[str, Any], by: str, when: Any) -> str:
    if by == "municipality":
        return (
            "digital"
            if row.get("digital") and not row.get("municipality")
            else (row.get("municipality") or "unknown")
        )
    if by == "month":
        return f"{when.year:04d}-{when.month:02d}"
    if by == "year":
        return f"{when.year:04d}"
    if by == "organisation":
        return str(row.get("organisation_name") or row["organisation_id"])
    return str(row[by])


def build_cut(
    hours_rows: Iterable[dict[str, Any]], postings: Iterable[dict[str, Any]], by: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Fold the store's rows into cells by ``by``, and the total over all of them."""
    volunteers: dict[str, set[int]] = defaultdict(set)
    organisations: dict[str, set[str]] = defaultdict(set)
    minutes: dict[str, int] = defaultdict(int)
    opportunities: dict[str, int] = defaultdict(int)
    all_volunteers: set[int] = set()
    all_orgs: set[str] = set()
    total_minutes = 0
    for row in hours_rows:
        key = _key(row, by, row["work_date"])
        volunteers[key].add(row["volunteer_id"])
        organisations[key].add(row["organisation_id"])
        minutes[key] += int(row["minutes"])
        all_volunteers.add(row["volunteer_id"])
        all_orgs.add(row["organisation_id"])
        total_minutes += int(row["minutes"])
    count = 0
    for posting in postings:
        key = _key(posting, by, posting["created_at"])
        opportunities[key] += 1
        organisations[key].add(posting["organisation_id"])
        all_orgs.add(posting["organisation_id"])
        count += 1
    keys = sorted(set(volunteers) | set(opportunities) | set(organisations))
    cells = [
        {
            "key": key,
            "volunteers": len(volunteers[key]),
            "organisations": len(organisations[key]),
            "opportunities": opportunities[key],
            "approved_hours": round(minutes[key] / 60, 2),
            "suppressed": False,
        }
        for key in keys
    ]
    total = {
        "key": "total",
        "volunteers": len(all_volunteers),
        "organisations": len(all_orgs),
        "opportunities": count,
        "approved_hours": round(total_minutes / 60, 2),
        "suppressed": False,
    }
    return cells, total


def _withhold(cell: dict[str, Any]) -> None:
    cell["volunteers"] = None
    cell["approved_hours"] = None
    cell["suppressed"] = True


def suppress(
    cells: list[dict[str, Any]], total: dict[str, Any], min_cell: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Primary and secondary small-cell suppression of volunteers and hours (see above)."""
    cells = [dict(c) for c in cells]
    total = dict(total)
    # Keys of their own: a municipality could be called "total".
    values = {f"cell:{c['key']}": int(c["volunteers"]) for c in cells}
    values["sum"] = sum(values.values())
    equations = [("sum", tuple(k for k in values if k != "sum"))]
    try:
        hidden = protect(values, equations, min_cell)
    except DisclosureError:
        # Cannot happen with one table (hiding the sum always protects), but never publish
        # a table the rule could not protect: withhold every count of people.
        hidden = set(values)
    for cell in cells:
        if f"cell:{cell['key']}" in hidden:
            _withhold(cell)
    if "sum" in hidden or 0 < total["volunteers"] < min_cell:
        _withhold(total)
    return cells, total


def to_csv(by: str, cells: list[dict[str, Any]], total: dict[str, Any]) -> str:
    """A cut as CSV (withheld values are empty, with ``suppressed`` true)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [by, "volunteers", "organisations", "opportunities", "approved_hours", "suppressed"]
    )
    for cell in [*cells, total]:
        writer.writerow(
            [
                cell["key"],
                "" if cell["volunteers"] is None else cell["volunteers"],
                cell["organisations"],
                cell["opportunities"],
                "" if cell["approved_hours"] is None else cell["approved_hours"],
                "true" if cell["suppressed"] else "false",
            ]
        )
    return out.getvalue()
