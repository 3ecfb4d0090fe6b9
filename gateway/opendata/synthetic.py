"""A realistic synthetic extract: about 17,500 clients a year, plausible distributions.

For ``make run``, the demo, the tests (small sizes) and the benchmark (full size). The year's
population is drawn once from a seed; the extract of a month is that population as PLUS would
see it at the month's end (cases not yet started are left out, later closings are still open,
hours are worked so far). So the extracts of one year are consistent with each other, as real
ones are.

The shares are our assumptions, shaped after VPD's public yearly figures: supervision and
forced labour dominate, evaluations are many and short, public work (minors) and electronic
monitoring are rare; most clients are men aged 18 to 44.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta

from gateway.opendata.extract import FIELDS, MEDIATION, SUPERVISION, WORK, CaseRow

__all__ = ["SyntheticYear", "extract_csv", "extract_jsonl"]

#: (sub-type, share of clients, planned length in days (low, high)).
_SUBTYPES: tuple[tuple[str, float, tuple[int, int]], ...] = (
    ("conditional_sentence_supervision", 0.21, (365, 1460)),
    ("early_release_supervision", 0.08, (180, 1095)),
    ("liability_release_supervision", 0.06, (365, 1095)),
    ("probation_supervision_additional", 0.04, (365, 1095)),
    ("early_release_em_supervision", 0.015, (90, 365)),
    ("forced_labour", 0.18, (60, 300)),
    ("forced_labour_additional", 0.02, (60, 240)),
    ("public_work", 0.015, (30, 150)),
    ("mediation", 0.10, (20, 90)),
    ("evaluation_pre_trial", 0.15, (14, 45)),
    ("evaluation_early_release", 0.08, (14, 45)),
    ("evaluation_early_release_em", 0.015, (14, 45)),
    ("probation_programmes", 0.04, (60, 150)),
)
_ACTIVITY = (
    ("employed", 0.33),
    ("unemployed", 0.45),
    ("in_education", 0.08),
    ("pensioner_or_disabled", 0.06),
    ("unknown", 0.08),
)
#: Shares of ages 18+ by group (minors only in public work).
_AGES = ((18, 24, 0.20), (25, 34, 0.33), (35, 44, 0.25), (45, 54, 0.14), (55, 75, 0.08))


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


@dataclass(frozen=True)
class _Case:
    row: CaseRow
    closes_on: date | None  # the day it closes, if it closes this year
    hours_total: int


class SyntheticYear:
    """The cases of one year, drawn once; :meth:`extract` cuts a month's extract from them."""

    def __init__(self, year: int, clients: int = 17_500, seed: int = 2026) -> None:
        self.year = year
        rng = random.Random(f"{seed}:{year}:{clients}")
        first, last = date(year, 1, 1), date(year, 12, 31)
        cases: list[_Case] = []
        persons: list[tuple[str, str, int]] = []
        for n in range(clients):
            subtype, _share, (low, high) = rng.choices(
                _SUBTYPES, weights=[s[1] for s in _SUBTYPES]
            )[0]
            planned = rng.randint(low, high)
            # Active some day of the year: started up to its planned length before 1 January.
            start = first + timedelta(days=rng.randint(-planned, 364))
            if persons and rng.random() < 0.09 and subtype != "public_work":
                # One person, several cases (evaluation then supervision, two sentences).
                person_id, sex, birth_year = rng.choice(persons)
            else:
                person_id = f"P{rng.getrandbits(48):012x}"
                sex = "F" if rng.random() < 0.14 else "M"
                if subtype == "public_work":
                    birth_year = year - rng.randint(14, 17)
                else:
                    low_age, high_age, _ = rng.choices(_AGES, weights=[a[2] for a in _AGES])[0]
                    birth_year = year - rng.randint(low_age, high_age)
                persons.append((person_id, sex, birth_year))
            # Some close early (revoked, died, moved abroad); most run their term.
            actual = planned if rng.random() < 0.8 else rng.randint(max(1, planned // 4), planned)
            ends = start + timedelta(days=actual)
            if ends < first:
                # Closed early, before the year: in this year's population it closes in January.
                ends = first + timedelta(days=rng.randint(0, 30))
            closes_on = ends if ends <= last else None
            activity_start = _pick(rng, _ACTIVITY)
            activity_end = None
            if subtype in SUPERVISION:
                moves = {"unemployed": 0.25, "in_education": 0.3, "unknown": 0.2}
                activity_end = (
                    "employed" if rng.random() < moves.get(activity_start, 0.05) else activity_start
                )
            hours_total = 0
            if subtype in WORK:
                hours_total = (
                    rng.randint(40, 280) if subtype != "public_work" else rng.randint(10, 120)
                )
            row = CaseRow(
                person_id=person_id,
                case_id=f"C{year}-{n:06d}",
                function_subtype=subtype,
                start_date=start,
                end_date=start + timedelta(days=planned) if subtype in SUPERVISION else None,
                closing_date=None,
                sex=sex,
                birth_year=birth_year,
                violent_offence=rng.random() < 0.30,
                sexual_offence=rng.random() < 0.04,
                economic_activity_start=activity_start,
                economic_activity_end=activity_end,
                programme_participation=subtype in SUPERVISION and rng.random() < 0.22,
                mediation_outcome=(
                    rng.choices(["settled", "not_settled", "refused"], weights=[60, 25, 15])[0]
                    if subtype == MEDIATION
                    else None
                ),
                hours_worked=None,
                reoffended=(rng.random() < 0.12) if subtype in SUPERVISION else None,
            )
            cases.append(_Case(row, closes_on, hours_total))
        self._cases = cases

    def extract(self, month: int) -> Iterator[CaseRow]:
        """The extract of ``year-month``: the year's cases as known at the month's end."""
        after = date(self.year + 1, 1, 1) if month == 12 else date(self.year, month + 1, 1)
        last = after - timedelta(days=1)
        for case in self._cases:
            row = case.row
            if row.start_date > last:
                continue
            closed = case.closes_on is not None and case.closes_on <= last
            hours = None
            if row.function_subtype in WORK:
                end = case.closes_on or (row.start_date + timedelta(days=365))
                span = max(1, (end - row.start_date).days)
                done = min(span, (last - row.start_date).days)
                hours = case.hours_total if closed else int(case.hours_total * done / span)
            yield replace(
                row,
                closing_date=case.closes_on if closed else None,
                economic_activity_end=row.economic_activity_end if closed else None,
                mediation_outcome=row.mediation_outcome if closed else None,
                reoffended=row.reoffended if closed else None,
                hours_worked=hours,
            )


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def extract_csv(rows: Iterator[CaseRow]) -> Iterator[str]:
    """Rows as CSV text, header first, one chunk per row (for streaming uploads)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FIELDS)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        data = asdict(row)
        writer.writerow([_text(data[f]) for f in FIELDS])
        yield buffer.getvalue()


def extract_jsonl(rows: Iterator[CaseRow]) -> Iterator[str]:
    """Rows as JSON Lines."""
    for row in rows:
        yield json.dumps(asdict(row), default=str, separators=(",", ":")) + "\n"
