"""The eight open data sets of DOMAIN.md ("The eight open data sets"), computed from an extract.

Every published count is a *cell* with a key; the same quantity published in two data sets is
one cell (the active clients of public work are in set 1 and in set 7), and every additive
relation between cells is an *equation* (a total equals the sum of its parts; a year's flow
equals the sum of its months). Disclosure control (gateway/opendata/disclosure.py) works on
cells and equations alone, so it sees every way one published number can be derived from
others: margins, related tables, months against the year.

Definitions (period P is a month or a calendar year, days in the jobs' time zone):

- a case is **active** in P when it started on or before P's last day and was not closed
  before P's first day;
- a case is **closed** in P when its closing date falls in P;
- **age** is P's year minus the birth year (the same for the months and the year, so a
  month's cell never exceeds the year's);
- **supervision** is the five supervision sub-types.

=====  =========================================================================================
set    what (file)
=====  =========================================================================================
1      active clients per function sub-type, by sex, age group, offence type (sexual, violent
       but not sexual, other) and economic activity at the start (``active_clients.csv``)
2      average planned supervision term, in months, of active supervision clients, over all
       supervision types (``supervision_term.csv``)
3      active supervision clients by participation in probation programmes
       (``programme_participation.csv``)
4      supervision cases closed in P: economic activity at the start against at the end,
       with margins (``economic_activity_change.csv``)
5      mediations closed in P by outcome; ``settled`` is the number of successful mediations
       (``mediations.csv``)
6      clients of supervision cases closed in P by whether they reoffended during the case
       (the cohort is the cases closed in P) (``closed_supervision_reoffending.csv``)
7      average hours worked so far by active clients of forced labour (both kinds) and of
       public work (``work_hours.csv``)
8      active persons and active clients: one person may be a client in several cases
       (``persons_and_clients.csv``)
=====  =========================================================================================
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from gateway.opendata.extract import MEDIATION, SUPERVISION, WORK, CaseRow, ExtractCodes

__all__ = [
    "AGE_GROUPS",
    "BREAKDOWNS",
    "DATASETS",
    "OFFENCE_TYPES",
    "Average",
    "Built",
    "Cell",
    "DataSetInfo",
    "PeriodSpan",
    "build_period",
    "flow_equations",
]

AGE_GROUPS = ("under_18", "18-24", "25-34", "35-44", "45-54", "55_and_over")
OFFENCE_TYPES = ("sexual", "violent", "other")
BREAKDOWNS = ("sex", "age_group", "offence", "economic_activity")
REOFFENDING = ("not_reoffended", "reoffended", "unknown")
WORK_TYPES = ("forced_labour", "public_work")
#: Sets whose cells are flows (events in P): a year's cell is the sum of its months' cells.
FLOW_SETS = frozenset({4, 5, 6})


@dataclass(frozen=True)
class DataSetInfo:
    """What one data set is: number, stable slug, file, title and description."""

    number: int
    slug: str
    file: str
    title_lv: str
    title_en: str
    description: str


DATASETS: dict[int, DataSetInfo] = {
    1: DataSetInfo(
        1,
        "ds1-active-clients",
        "active_clients.csv",
        "Aktīvie klienti pa funkciju apakšveidiem",
        "Active clients by function sub-type",
        "Active clients of each of the 13 function sub-types by sex, age group, "
        "violent and sexual offence type and economic activity at the start.",
    ),
    2: DataSetInfo(
        2,
        "ds2-supervision-term",
        "supervision_term.csv",
        "Uzraudzībā esošo klientu vidējais uzraudzības termiņš",
        "Average supervision term of supervised clients",
        "Average planned supervision term in months of active supervision clients, "
        "over all supervision types.",
    ),
    3: DataSetInfo(
        3,
        "ds3-programme-participation",
        "programme_participation.csv",
        "Uzraudzības klientu dalība probācijas programmās",
        "Supervised clients' participation in probation programmes",
        "Active supervision clients by participation in probation programmes.",
    ),
    4: DataSetInfo(
        4,
        "ds4-economic-activity-change",
        "economic_activity_change.csv",
        "Uzraudzības klientu ekonomiskās aktivitātes izmaiņas",
        "Change in supervised clients' economic activity",
        "Supervision cases closed in the period: economic activity at the start "
        "of supervision against at its end, with margins.",
    ),
    5: DataSetInfo(
        5,
        "ds5-mediations",
        "mediations.csv",
        "Izlīgumi",
        "Mediations by outcome",
        "Mediations closed in the period by outcome; 'settled' counts the "
        "successful mediations (the parties settled).",
    ),
    6: DataSetInfo(
        6,
        "ds6-reoffending",
        "closed_supervision_reoffending.csv",
        "Slēgto uzraudzības lietu klienti bez recidīva",
        "Clients of closed supervision cases who did not reoffend",
        "Clients of supervision cases closed in the period, by whether they "
        "committed a new offence during supervision.",
    ),
    7: DataSetInfo(
        7,
        "ds7-work-hours",
        "work_hours.csv",
        "Piespiedu darba un sabiedriskā darba vidējais stundu skaits",
        "Average hours of forced labour and public work",
        "Average hours worked so far by active clients of forced labour (both "
        "kinds) and of public work.",
    ),
    8: DataSetInfo(
        8,
        "ds8-persons-and-clients",
        "persons_and_clients.csv",
        "Aktīvo personu un klientu skaits",
        "Active persons and clients",
        "Total active persons and active clients; one person may be a client in several cases.",
    ),
}


@dataclass(frozen=True)
class Cell:
    """A published count, by key (``2026-10|active|mediation``)."""

    key: str


@dataclass(frozen=True)
class Average:
    """A published average over the clients counted by cell ``n``; suppressed with it."""

    value: float | None
    n: str
    digits: int = 1


@dataclass(frozen=True)
class PeriodSpan:
    """A month (``2026-10``) or a year (``2026``) with its first and last day."""

    key: str
    first_day: date
    last_day: date

    @property
    def year(self) -> int:
        """The calendar year the period is in."""
        return self.first_day.year

    @property
    def yearly(self) -> bool:
        """Whether this is a whole year."""
        return len(self.key) == 4

    @classmethod
    def of(cls, key: str) -> PeriodSpan:
        """``2026`` or ``2026-10``."""
        if len(key) == 4:
            year = int(key)
            return cls(key, date(year, 1, 1), date(year, 12, 31))
        year, month = int(key[:4]), int(key[5:7])
        after = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return cls(key, date(year, month, 1), date.fromordinal(after.toordinal() - 1))


@dataclass
class Built:
    """The cells, equations and table rows of one or more periods."""

    values: dict[str, int] = field(default_factory=dict)
    #: ``(total, parts)``: the total cell equals the sum of the part cells.
    equations: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    #: (period, set number) -> rows; a row maps column -> value, Cell or Average.
    tables: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)

    def merge(self, other: Built) -> None:
        """Add another period's cells, equations and tables."""
        self.values.update(other.values)
        self.equations.extend(other.equations)
        self.tables.update(other.tables)

    def keys_of(self, sets: Iterable[int]) -> set[str]:
        """The cell keys the tables of ``sets`` publish."""
        wanted = set(sets)
        keys: set[str] = set()
        for (_, number), rows in self.tables.items():
            if number not in wanted:
                continue
            for row in rows:
                for value in row.values():
                    if isinstance(value, Cell):
                        keys.add(value.key)
                    elif isinstance(value, Average):
                        keys.add(value.n)
        return keys


def _age_group(age: int) -> str:
    if age < 18:
        return "under_18"
    for low, high, name in (
        (18, 24, "18-24"),
        (25, 34, "25-34"),
        (35, 44, "35-44"),
        (45, 54, "45-54"),
    ):
        if low <= age <= high:
            return name
    return "55_and_over"


def _offence(row: CaseRow) -> str:
    if row.sexual_offence:
        return "sexual"
    return "violent" if row.violent_offence else "other"


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def build_period(rows: Sequence[CaseRow], period: PeriodSpan, codes: ExtractCodes) -> Built:
    """Every cell, equation and row of the eight sets for one period."""
    p = period.key
    built = Built()
    values = built.values
    eq = built.equations

    def cell(key: str, value: int) -> Cell:
        values[f"{p}|{key}"] = value
        return Cell(f"{p}|{key}")

    active = [
        r
        for r in rows
        if r.start_date <= period.last_day
        and (r.closing_date is None or r.closing_date >= period.first_day)
    ]
    closed = [
        r
        for r in rows
        if r.closing_date is not None and period.first_day <= r.closing_date <= period.last_day
    ]
    subtypes = codes.function_subtype.canonical_codes
    activities = codes.economic_activity.canonical_codes
    labels = codes.function_subtype.labels

    # Set 1, and the per-sub-type totals other sets relate to.
    by_subtype: dict[str, list[CaseRow]] = defaultdict(list)
    for r in active:
        by_subtype[r.function_subtype].append(r)
    rows1: list[dict[str, Any]] = []
    for subtype in subtypes:
        members = by_subtype.get(subtype, [])
        total = cell(f"active|{subtype}", len(members))
        label = labels.get(subtype, {}).get("label_lv", subtype)
        rows1.append(
            {
                "period": p,
                "function_subtype": subtype,
                "function_subtype_lv": label,
                "breakdown": "total",
                "category": "total",
                "active_clients": total,
            }
        )
        for breakdown, categories, of in (
            ("sex", ("M", "F"), lambda r: r.sex),
            ("age_group", AGE_GROUPS, lambda r: _age_group(period.year - r.birth_year)),
            ("offence", OFFENCE_TYPES, _offence),
            ("economic_activity", activities, lambda r: r.economic_activity_start),
        ):
            counts = Counter(of(r) for r in members)
            parts = []
            for category in categories:
                c = cell(f"ds1|{subtype}|{breakdown}|{category}", counts.get(category, 0))
                parts.append(c.key)
                rows1.append(
                    {
                        "period": p,
                        "function_subtype": subtype,
                        "function_subtype_lv": label,
                        "breakdown": breakdown,
                        "category": category,
                        "active_clients": c,
                    }
                )
            eq.append((total.key, tuple(parts)))
    built.tables[(p, 1)] = rows1

    # Sets 2 and 3: active supervision clients.
    supervised = [r for r in active if r.function_subtype in SUPERVISION]
    sup = cell("sup_active", len(supervised))
    eq.append((sup.key, tuple(f"{p}|active|{s}" for s in subtypes if s in SUPERVISION)))
    terms = [((r.end_date or r.start_date) - r.start_date).days / 30.4375 for r in supervised]
    built.tables[(p, 2)] = [
        {
            "period": p,
            "supervision_clients": sup,
            "average_term_months": Average(_mean(terms), sup.key),
        }
    ]
    joined = cell("ds3|participating", sum(r.programme_participation for r in supervised))
    not_joined = cell(
        "ds3|not_participating", sum(not r.programme_participation for r in supervised)
    )
    eq.append((sup.key, (joined.key, not_joined.key)))
    built.tables[(p, 3)] = [
        {"period": p, "participation": "participating", "supervision_clients": joined},
        {"period": p, "participation": "not_participating", "supervision_clients": not_joined},
        {"period": p, "participation": "total", "supervision_clients": sup},
    ]

    # Sets 4 and 6: supervision cases closed in the period (one cohort, one grand total).
    cohort = [r for r in closed if r.function_subtype in SUPERVISION]
    grand = cell("sup_closed", len(cohort))
    matrix = Counter(
        (r.economic_activity_start, r.economic_activity_end or "unknown") for r in cohort
    )
    rows4: list[dict[str, Any]] = []
    row_totals, col_totals = [], []
    for start in activities:
        parts = []
        for end in activities:
            c = cell(f"ds4|{start}|{end}", matrix.get((start, end), 0))
            parts.append(c.key)
            rows4.append(
                {"period": p, "activity_at_start": start, "activity_at_end": end, "clients": c}
            )
        t = cell(f"ds4|{start}|total", sum(matrix.get((start, e), 0) for e in activities))
        rows4.append(
            {"period": p, "activity_at_start": start, "activity_at_end": "total", "clients": t}
        )
        eq.append((t.key, tuple(parts)))
        row_totals.append(t.key)
    for end in activities:
        t = cell(f"ds4|total|{end}", sum(matrix.get((s, end), 0) for s in activities))
        rows4.append(
            {"period": p, "activity_at_start": "total", "activity_at_end": end, "clients": t}
        )
        eq.append((t.key, tuple(f"{p}|ds4|{s}|{end}" for s in activities)))
        col_totals.append(t.key)
    rows4.append(
        {"period": p, "activity_at_start": "total", "activity_at_end": "total", "clients": grand}
    )
    eq.append((grand.key, tuple(row_totals)))
    eq.append((grand.key, tuple(col_totals)))
    built.tables[(p, 4)] = rows4
    outcomes = Counter(
        "unknown" if r.reoffended is None else ("reoffended" if r.reoffended else "not_reoffended")
        for r in cohort
    )
    reoffending = {k: cell(f"ds6|{k}", outcomes.get(k, 0)) for k in REOFFENDING}
    rows6: list[dict[str, Any]] = [
        {"period": p, "reoffending": k, "clients": c} for k, c in reoffending.items()
    ]
    eq.append((grand.key, tuple(c.key for c in reoffending.values())))
    rows6.append({"period": p, "reoffending": "total", "clients": grand})
    built.tables[(p, 6)] = rows6

    # Set 5: mediations closed in the period by outcome.
    mediations = Counter(
        r.mediation_outcome or "unknown" for r in closed if r.function_subtype == MEDIATION
    )
    outcome_codes = (*codes.mediation_outcome.canonical_codes, "unknown")
    by_outcome = {o: cell(f"ds5|{o}", mediations.get(o, 0)) for o in outcome_codes}
    rows5: list[dict[str, Any]] = [
        {"period": p, "outcome": o, "mediations": c} for o, c in by_outcome.items()
    ]
    total5 = cell("ds5|total", sum(mediations.values()))
    eq.append((total5.key, tuple(c.key for c in by_outcome.values())))
    rows5.append({"period": p, "outcome": "total", "mediations": total5})
    built.tables[(p, 5)] = rows5

    # Set 7: hours worked by active forced labour and public work clients.
    rows7 = []
    for work in WORK_TYPES:
        members = [r for r in active if WORK.get(r.function_subtype) == work]
        kinds = tuple(s for s in subtypes if WORK.get(s) == work)
        if len(kinds) == 1:
            n = Cell(f"{p}|active|{kinds[0]}")  # the same quantity as set 1's total
        else:
            n = cell(f"ds7|{work}", len(members))
            eq.append((n.key, tuple(f"{p}|active|{k}" for k in kinds)))
        rows7.append(
            {
                "period": p,
                "work_type": work,
                "active_clients": n,
                "average_hours": Average(_mean([r.hours_worked or 0 for r in members]), n.key),
            }
        )
    built.tables[(p, 7)] = rows7

    # Set 8: persons and clients.
    clients = cell("clients", len(active))
    eq.append((clients.key, tuple(f"{p}|active|{s}" for s in subtypes)))
    persons = cell("persons", len({r.person_id for r in active}))
    built.tables[(p, 8)] = [
        {"period": p, "measure": "persons", "count": persons},
        {"period": p, "measure": "clients", "count": clients},
    ]
    return built


def flow_equations(built: Built, year: str) -> list[tuple[str, tuple[str, ...]]]:
    """A year's flow cells (sets 4, 5, 6) as sums of its months' cells, where both exist."""
    out = []
    prefix = f"{year}|"
    for key in built.values:
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if not (name.startswith(("ds4|", "ds5|", "ds6|")) or name == "sup_closed"):
            continue
        months = tuple(f"{year}-{m:02d}|{name}" for m in range(1, 13))
        if all(m in built.values for m in months):
            out.append((key, months))
    return out
