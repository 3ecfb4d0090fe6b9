"""Disclosure control, and an attacker who tries to recover every suppressed small cell.

The attacker works from the published CSV files only (and the public rule: zeros are shown,
suppressed cells are at least 1). They write down every relation a reader can see: a
sub-type's breakdowns add up to its total, set 8's clients are the sum of set 1's totals, set
3's total is the supervision totals, set 7's counts are set 1's, sets 4 and 6 share their
cohort, set 4's margins, and a year's flows (sets 4, 5, 6) are the sum of its twelve months.
Then they bound each suppressed cell by linear programming (their own code, not the
gateway's). Every small cell must stay unproven small (upper bound >= T) and vague (the
interval at least T-1 wide). The same attacker must succeed against primary suppression
alone, or the test would prove nothing.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from scipy.optimize import linprog

from gateway.config import Settings
from gateway.opendata.build import Release, build_release
from gateway.opendata.datasets import PeriodSpan, build_period
from gateway.opendata.disclosure import DisclosureError, attack, protect
from gateway.opendata.extract import ExtractCodes
from gateway.opendata.synthetic import SyntheticYear

T = 5
SUPERVISION = (
    "conditional_sentence_supervision",
    "early_release_supervision",
    "liability_release_supervision",
    "probation_supervision_additional",
    "early_release_em_supervision",
)


def test_a_row_needs_a_second_suppressed_cell() -> None:
    values = {"a": 2, "b": 10, "c": 7, "total": 19}
    hidden = protect(values, [("total", ("a", "b", "c"))], T)
    assert hidden == {"a", "c"}  # the smallest partner, not the total
    (interval,) = attack(values, [("total", ("a", "b", "c"))], hidden, ["a"]).values()
    assert interval.low == 1 and interval.high == 8


def test_two_small_cells_summing_to_little_are_not_enough() -> None:
    # a + b = 3 with both at least 1 pins each to 1..2: a third cell must go.
    values = {"a": 1, "b": 2, "c": 9, "total": 12}
    hidden = protect(values, [("total", ("a", "b", "c"))], T)
    assert hidden == {"a", "b", "c"}


def test_frozen_months_push_suppression_into_the_year() -> None:
    # Published months: m1 suppressed (1), m2 = 6. A year of 7 would expose m1.
    values = {"m1": 1, "m2": 6, "year": 7, "y_other": 20, "y_total": 27}
    equations = [("year", ("m1", "m2")), ("y_total", ("year", "y_other"))]
    hidden = protect(values, equations, T, frozen={"m1": True, "m2": False})
    assert "year" in hidden and "y_other" in hidden


def test_a_small_cell_published_earlier_is_refused() -> None:
    with pytest.raises(DisclosureError):
        protect({"a": 2, "t": 2}, [("t", ("a",))], T, frozen={"a": False})


# -- the attack on a whole published year ------------------------------------------------


def _parse(csv_bytes: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(csv_bytes.decode("utf-8"))))


class Attacker:
    """Reads published files, writes equations, bounds every suppressed cell by LP."""

    def __init__(self) -> None:
        self.known: dict[str, int] = {}
        self.unknown: set[str] = set()
        self.equations: list[tuple[str, list[str]]] = []

    def cell(self, key: str, value: str, flag: str) -> str:
        if flag == "c":
            self.unknown.add(key)
        else:
            self.known[key] = int(value)
        return key

    def read(self, release: Release) -> None:
        p = release.period
        files = {f.info.number: _parse(f.csv) for f in release.files}
        totals: dict[str, str] = {}
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for r in files[1]:
            key = self.cell(
                f"{p}|1|{r['function_subtype']}|{r['breakdown']}|{r['category']}",
                r["active_clients"],
                r["active_clients_flag"],
            )
            if r["breakdown"] == "total":
                totals[r["function_subtype"]] = key
            else:
                groups[(r["function_subtype"], r["breakdown"])].append(key)
        for (subtype, _), parts in groups.items():
            self.equations.append((totals[subtype], parts))
        r8 = {
            r["measure"]: self.cell(f"{p}|8|{r['measure']}", r["count"], r["count_flag"])
            for r in files[8]
        }
        self.equations.append((r8["clients"], list(totals.values())))
        r3 = {
            r["participation"]: self.cell(
                f"{p}|3|{r['participation']}",
                r["supervision_clients"],
                r["supervision_clients_flag"],
            )
            for r in files[3]
        }
        self.equations.append((r3["total"], [r3["participating"], r3["not_participating"]]))
        self.equations.append((r3["total"], [totals[s] for s in SUPERVISION]))
        r2 = files[2][0]
        self.equations.append(
            (
                self.cell(f"{p}|2|n", r2["supervision_clients"], r2["supervision_clients_flag"]),
                [r3["total"]],
            )
        )
        for r in files[7]:
            n = self.cell(f"{p}|7|{r['work_type']}", r["active_clients"], r["active_clients_flag"])
            kinds = (
                ["forced_labour", "forced_labour_additional"]
                if r["work_type"] == "forced_labour"
                else ["public_work"]
            )
            self.equations.append((n, [totals[k] for k in kinds]))
        matrix: dict[tuple[str, str], str] = {}
        for r in files[4]:
            matrix[(r["activity_at_start"], r["activity_at_end"])] = self.cell(
                f"{p}|4|{r['activity_at_start']}|{r['activity_at_end']}",
                r["clients"],
                r["clients_flag"],
            )
        starts = sorted({s for s, _ in matrix if s != "total"})
        ends = sorted({e for _, e in matrix if e != "total"})
        for s in starts:
            self.equations.append((matrix[(s, "total")], [matrix[(s, e)] for e in ends]))
        for e in ends:
            self.equations.append((matrix[("total", e)], [matrix[(s, e)] for s in starts]))
        self.equations.append((matrix[("total", "total")], [matrix[(s, "total")] for s in starts]))
        r6 = {
            r["reoffending"]: self.cell(
                f"{p}|6|{r['reoffending']}", r["clients"], r["clients_flag"]
            )
            for r in files[6]
        }
        self.equations.append((r6["total"], [v for k, v in r6.items() if k != "total"]))
        self.equations.append((r6["total"], [matrix[("total", "total")]]))
        r5 = {
            r["outcome"]: self.cell(f"{p}|5|{r['outcome']}", r["mediations"], r["mediations_flag"])
            for r in files[5]
        }
        self.equations.append((r5["total"], [v for k, v in r5.items() if k != "total"]))

    def year_sums(self, year: str) -> None:
        """A year's flow cells (sets 4, 5, 6) are the sums of its months' cells."""
        for key in list(self.known) + list(self.unknown):
            if key.startswith(f"{year}|") and key.split("|")[1] in ("4", "5", "6"):
                rest = key[len(year) :]
                self.equations.append((key, [f"{year}-{m:02d}{rest}" for m in range(1, 13)]))

    def _system(self) -> None:
        """Equations over the unknowns, split into independent groups (one LP each)."""
        rows: list[tuple[dict[str, float], float]] = []
        for total, parts in self.equations:
            coefficients: dict[str, float] = defaultdict(float)
            constant = 0.0
            for key, sign in [(total, 1.0)] + [(p, -1.0) for p in parts]:
                if key in self.unknown:
                    coefficients[key] += sign
                else:
                    constant -= sign * self.known[key]
            coefficients = {k: c for k, c in coefficients.items() if c}
            if coefficients:
                rows.append((coefficients, constant))
        group = {k: k for k in self.unknown}

        def root(k: str) -> str:
            while group[k] != k:
                k = group[k]
            return k

        for coefficients, _ in rows:
            first, *others = coefficients
            for other in others:
                group[root(other)] = root(first)
        self._matrices: dict[str, Any] = {}
        self._groups: dict[str, list[tuple[dict[str, float], float]]] = defaultdict(list)
        for row in rows:
            self._groups[root(next(iter(row[0])))].append(row)
        self._root = root

    def bounds(self, target: str) -> tuple[float, float]:
        if not hasattr(self, "_groups"):
            self._system()
        root = self._root(target)
        rows = self._groups.get(root, [])
        if not rows:
            return 1.0, float("inf")
        if root not in self._matrices:
            names = sorted({k for coefficients, _ in rows for k in coefficients})
            index = {n: i for i, n in enumerate(names)}
            matrix = np.zeros((len(rows), len(names)))
            for r, (coefficients, _) in enumerate(rows):
                for k, c in coefficients.items():
                    matrix[r, index[k]] = c
            self._matrices[root] = (names, index, matrix, np.array([c for _, c in rows]))
        names, index, matrix, rhs = self._matrices[root]
        result = []
        for sense in (1.0, -1.0):
            objective = np.zeros(len(names))
            objective[index[target]] = sense
            solved = linprog(objective, A_eq=matrix, b_eq=rhs, bounds=(1, None), method="highs")
            result.append(float("inf") if solved.status == 3 else sense * solved.fun)
        return result[0], result[1]


def _true_values(rows: Any, period: str, codes: ExtractCodes) -> dict[str, int]:
    """The attacker's keys mapped to the true counts (what the test knows, they do not)."""
    built = build_period(rows, PeriodSpan.of(period), codes)
    out: dict[str, int] = {}
    for (p, number), table in built.tables.items():
        for r in table:
            for column, value in r.items():
                if not hasattr(value, "key"):
                    continue
                label = "|".join(
                    str(v)
                    for k, v in r.items()
                    if k not in ("period", "function_subtype_lv")
                    and not hasattr(v, "key")
                    and not hasattr(v, "n")
                )
                out[f"{p}|{number}|{label}" if number not in (2,) else f"{p}|2|n"] = built.values[
                    value.key
                ]
                del column
    return out


@pytest.fixture(scope="module")
def year_releases(
    codes: ExtractCodes, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[Release], dict[str, int]]:
    """Twelve months and the year of a small synthetic population, all eight sets."""
    from gateway.config import load_settings
    from tests.conftest import ROOT

    settings: Settings = load_settings(
        ROOT / "config.yaml", signing={"key": "k", "certificate": "c"}
    )
    options = settings.opendata.model_copy(
        update={"datasets": tuple(range(1, 9)), "suppression_threshold": T}
    )
    population = SyntheticYear(2026, clients=1500, seed=7)
    releases, truth = [], {}
    for month in range(1, 13):
        rows = list(population.extract(month))
        releases.append(build_release(rows, f"2026-{month:02d}", codes, options))
        truth.update(_true_values(rows, f"2026-{month:02d}", codes))
    december = list(population.extract(12))
    releases.append(build_release(december, "2026", codes, options))
    truth.update(_true_values(december, "2026", codes))
    return releases, truth


def test_no_suppressed_small_cell_can_be_recovered(
    year_releases: tuple[list[Release], dict[str, int]],
) -> None:
    releases, truth = year_releases
    attacker = Attacker()
    for release in releases:
        attacker.read(release)
    attacker.year_sums("2026")
    small = sorted(k for k in attacker.unknown if 0 < truth[k] < T)
    assert len(small) > 20, "the population should have small cells to protect"
    assert any(k.startswith("2026|") for k in small) or any(
        k.startswith("2026|") for k in attacker.unknown
    )
    exposed = []
    for key in small:
        low, high = attacker.bounds(key)
        assert low - 1e-6 <= truth[key] <= high + 1e-6  # the attacker's model is right
        if high < T - 1e-6 or high - low < T - 1 - 1e-6:
            exposed.append((key, truth[key], low, high))
    assert exposed == []
    # Nothing published is small, and zeros are published.
    assert all(v == 0 or v >= T for v in attacker.known.values())


def test_the_attacker_breaks_primary_suppression_alone(
    year_releases: tuple[list[Release], dict[str, int]],
) -> None:
    releases, truth = year_releases
    attacker = Attacker()
    for release in releases:
        attacker.read(release)
    attacker.year_sums("2026")
    # Undo secondary suppression: publish every suppressed cell that is not small.
    for key in list(attacker.unknown):
        if not 0 < truth[key] < T:
            attacker.unknown.discard(key)
            attacker.known[key] = truth[key]
    recovered = next((k for k in sorted(attacker.unknown) if attacker.bounds(k)[1] < T), None)
    assert recovered, "primary suppression alone must be breakable, or the attack is toothless"
