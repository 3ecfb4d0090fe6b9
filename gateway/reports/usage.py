"""The e-service usage report (KPI-01): uses by month, e-service, recipient type and outcome.

:func:`parse_months` checks a ``from``/``to`` range of ``YYYY-MM`` months (errors name the
field); :func:`usage_report` reads the counters into JSON-able data with totals;
:func:`usage_csv` writes the same rows as CSV (one header row, one row per counter). The local
API (``GET /v1/reports/eservices``), the CLI and the monthly report to VRAA all use these.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from gateway.store import Store
from gateway.store.schema import utcnow
from gateway.store.usage import ESERVICES, OUTCOMES, RECIPIENT_TYPES, SERVED

__all__ = [
    "CSV_COLUMNS",
    "MAX_MONTHS",
    "MonthRange",
    "MonthRangeError",
    "parse_months",
    "usage_csv",
    "usage_report",
]

#: A report covers at most ten years (bounded work and answer size).
MAX_MONTHS = 120
CSV_COLUMNS = ("month", "eservice", "recipient_type", "outcome", "uses")
_MONTH = re.compile(r"(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])\Z")


class MonthRangeError(ValueError):
    """A bad range; ``details`` are ``{path, message}`` for the API's error body."""

    def __init__(self, details: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{d['path']}: {d['message']}" for d in details))
        self.details = details


@dataclass(frozen=True)
class MonthRange:
    """Months ``first`` to ``last`` inclusive, ``YYYY-MM``."""

    first: str
    last: str

    @property
    def months(self) -> list[str]:
        """Every month of the range, in order."""
        year, month = int(self.first[:4]), int(self.first[5:])
        out = []
        while True:
            key = f"{year:04d}-{month:02d}"
            out.append(key)
            if key == self.last:
                return out
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _count(first: str, last: str) -> int:
    return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:]) - int(first[5:]) + 1


def parse_months(first: str | None, last: str | None, *, where: str = "query") -> MonthRange:
    """Check ``from`` and ``to`` (both ``YYYY-MM``; ``to`` defaults to ``from``).

    Raises MonthRangeError naming ``{where}.from`` / ``{where}.to``: missing, malformed, ``to``
    before ``from``, or more than MAX_MONTHS months.
    """
    details = []
    if first is None or first == "":
        details.append({"path": f"{where}.from", "message": "required: a month YYYY-MM"})
    elif not _MONTH.match(first):
        details.append({"path": f"{where}.from", "message": "must be a month YYYY-MM"})
    if last is not None and last != "" and not _MONTH.match(last):
        details.append({"path": f"{where}.to", "message": "must be a month YYYY-MM"})
    if details:
        raise MonthRangeError(details)
    assert first is not None
    last = last or first
    if last < first:
        raise MonthRangeError([{"path": f"{where}.to", "message": "must not be before from"}])
    if _count(first, last) > MAX_MONTHS:
        raise MonthRangeError(
            [{"path": f"{where}.to", "message": f"a report covers at most {MAX_MONTHS} months"}]
        )
    return MonthRange(first, last)


def usage_report(store: Store, months: MonthRange) -> dict[str, Any]:
    """The counters of ``months`` with totals by e-service, recipient type, outcome and month.

    ``distinct_clients``: different clients an e-service served in the range (keyed
    pseudonyms; never who).
    """
    rows = store.usage.rows(months.first, months.last)
    by_eservice: Counter[str] = Counter({e: 0 for e in ESERVICES})
    by_recipient: Counter[str] = Counter({r: 0 for r in RECIPIENT_TYPES})
    by_outcome: Counter[str] = Counter({o: 0 for o in OUTCOMES})
    by_month: Counter[str] = Counter({m: 0 for m in months.months})
    for r in rows:
        by_eservice[r.eservice] += r.uses
        by_recipient[r.recipient_type] += r.uses
        by_outcome[r.outcome] += r.uses
        by_month[r.month] += r.uses
    return {
        "from": months.first,
        "to": months.last,
        "generated_at": utcnow().isoformat(),
        "rows": [
            {
                "month": r.month,
                "eservice": r.eservice,
                "recipient_type": r.recipient_type,
                "outcome": r.outcome,
                "uses": r.uses,
            }
            for r in rows
        ],
        "totals": {
            "uses": sum(by_outcome.values()),
            "served": sum(by_outcome[o] for o in SERVED),
            "by_eservice": dict(by_eservice),
            "by_recipient_type": dict(by_recipient),
            "by_outcome": dict(by_outcome),
            "by_month": dict(by_month),
        },
        "distinct_clients": store.usage.distinct_clients(months.first, months.last),
    }


def usage_csv(report: dict[str, Any]) -> str:
    """The report's rows as CSV (``CSV_COLUMNS``, CRLF line ends as RFC 4180 has them)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in report["rows"]:
        writer.writerow([row[c] for c in CSV_COLUMNS])
    return out.getvalue()
