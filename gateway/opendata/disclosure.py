"""Disclosure control: primary and secondary suppression, checked by attacking the result.

The rule (VPD policy, docs/OPEN-DATA.md), with threshold T (``opendata.suppression_threshold``):

1. **Primary**: a count from 1 to T-1 is not published. Zeros are published (an empty cell
   identifies nobody), so everyone knows a suppressed cell is at least 1.
2. **Secondary**: after primary suppression, every additive relation between published cells
   (a total and its parts, the same quantity in two data sets, a year and its twelve months)
   is a linear equation an attacker can solve. For every small suppressed cell we compute, by
   linear programming over all those equations at once, the smallest and largest value it can
   have given everything published. The cell is protected when that interval reaches at least
   T and is at least T-1 wide: the published tables never prove that the cell is small, let
   alone which small value it holds. Until every small cell is protected, one more cell is
   suppressed: the smallest non-zero published cell in an equation of an unprotected cell.
3. Cells already published (the months, when the year is published) are *frozen*: their
   pattern cannot change, so the year's cells are suppressed instead where a month would
   otherwise be exposed.

If no cell can be added the period is refused (:class:`DisclosureError`), never published
unprotected. Averages are published only with their count.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.errors import PermanentError

__all__ = ["DisclosureError", "Interval", "attack", "protect"]

Equation = tuple[str, tuple[str, ...]]
_EPS = 1e-6


class DisclosureError(PermanentError):
    """The period cannot be published without exposing a small cell."""

    code = "DISCLOSURE_UNSAFE"


@dataclass(frozen=True)
class Interval:
    """What an attacker can tell about a suppressed cell: ``low <= value <= high``."""

    low: float
    high: float  # inf when unbounded

    def protects(self, threshold: int) -> bool:
        """Whether the interval hides a small value (see the module docstring)."""
        return self.high >= threshold - _EPS and self.high - self.low >= threshold - 1 - _EPS


def attack(
    values: Mapping[str, int],
    equations: Sequence[Equation],
    suppressed: Iterable[str],
    targets: Iterable[str],
    *,
    cache: dict[Any, Interval] | None = None,
) -> dict[str, Interval]:
    """Bound each target by LP from the published cells and the equations (an attacker).

    Suppressed cells are unknowns of at least 1 (zeros are always published); published
    cells are constants. Targets outside every equation are bounded by [1, inf). A component
    of one equation is solved in closed form; ``cache`` keeps answers of components that did
    not change between calls (secondary suppression attacks again after each round).
    """
    hidden = set(suppressed)
    # Equations with at least one unknown, as (coefficients by unknown, constant side).
    rows: list[tuple[dict[str, float], float]] = []
    for total, parts in equations:
        coefficients: dict[str, float] = defaultdict(float)
        constant = 0.0
        for key, sign in ((total, 1.0), *((p, -1.0) for p in parts)):
            if key in hidden:
                coefficients[key] += sign
            else:
                constant -= sign * values[key]
        coefficients = {k: c for k, c in coefficients.items() if c != 0}
        if coefficients:
            rows.append((coefficients, constant))
    # Connected components of unknowns linked by equations: one small LP each.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for coefficients, _ in rows:
        keys = list(coefficients)
        for other in keys[1:]:
            parent[find(other)] = find(keys[0])
    by_component: dict[str, list[int]] = defaultdict(list)
    for index, (coefficients, _) in enumerate(rows):
        by_component[find(next(iter(coefficients)))].append(index)
    out: dict[str, Interval] = {}
    solved: dict[str, tuple[list[str], Any, np.ndarray]] = {}
    signatures: dict[str, Any] = {}
    for target in targets:
        if target not in parent:
            out[target] = Interval(1.0, float("inf"))
            continue
        root = find(target)
        members = by_component[root]
        if root not in signatures:
            # What the attacker sees of the component: its equations, unknowns and constants.
            signatures[root] = tuple(
                sorted((tuple(sorted(rows[i][0].items())), rows[i][1]) for i in members)
            )
        signature = (target, signatures[root])
        if cache is not None and signature in cache:
            out[target] = cache[signature]
            continue
        if len(members) == 1:
            out[target] = _one_equation(rows[members[0]], target)
        else:
            out[target] = _solve(rows, members, target, solved, root)
        if cache is not None:
            cache[signature] = out[target]
    return out


def _one_equation(row: tuple[dict[str, float], float], target: str) -> Interval:
    """Bounds of ``target`` in sum(c * x) = b with every x >= 1, in closed form."""
    coefficients, constant = row
    own = coefficients[target]
    # target = constant/own + sum(a_i * x_i) over the other unknowns, a_i = -c_i/own.
    slopes = [-c / own for k, c in coefficients.items() if k != target]
    at_ones = constant / own + sum(slopes)
    high = float("inf") if any(a > 0 for a in slopes) else at_ones
    low = 1.0 if any(a < 0 for a in slopes) else max(1.0, at_ones)
    return Interval(low, high)


@dataclass(frozen=True, eq=False)
class _Csr:
    """A sparse matrix by rows."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray


class _Solver:
    """One HiGHS instance reused for every LP (a component's model, then one objective per
    bound: re-solving from the last basis takes a fraction of a millisecond)."""

    def __init__(self) -> None:
        import highspy

        # HiGHS prints its banner on stdout when an instance is made; stdout may be the
        # CLI's JSON output, so the banner goes to /dev/null (once per process).
        with _quiet_stdout():
            self._highs = highspy.Highs()
        self._highs.setOptionValue("output_flag", False)
        # Re-solves differ only in the objective: start from the last basis, no presolve.
        self._highs.setOptionValue("presolve", "off")
        self._inf = highspy.kHighsInf
        self._hs = highspy
        self._loaded: Any = None

    def bounds(self, names: list[str], matrix: Any, rhs: np.ndarray, target: str) -> Interval:
        h, hs = self._highs, self._hs
        if self._loaded is not matrix:
            lp = hs.HighsLp()
            lp.num_col_ = len(names)
            lp.num_row_ = len(rhs)
            lp.col_cost_ = np.zeros(len(names))
            lp.col_lower_ = np.ones(len(names))
            lp.col_upper_ = np.full(len(names), self._inf)
            lp.row_lower_ = rhs
            lp.row_upper_ = rhs
            lp.a_matrix_.format_ = hs.MatrixFormat.kRowwise
            lp.a_matrix_.start_ = matrix.indptr
            lp.a_matrix_.index_ = matrix.indices
            lp.a_matrix_.value_ = matrix.data
            h.passModel(lp)
            self._loaded = matrix
        position = names.index(target)
        found = []
        for sense in (1.0, -1.0):
            h.changeColsCost(
                len(names),
                np.arange(len(names), dtype=np.int32),
                np.where(np.arange(len(names)) == position, sense, 0.0),
            )
            h.run()
            status = h.getModelStatus()
            if status == hs.HighsModelStatus.kUnbounded:
                found.append(float("inf"))
            elif status != hs.HighsModelStatus.kOptimal:
                # Infeasible: the published data contradict each other, a bug in the tables;
                # treat the cell as exposed so that nothing is published.
                return Interval(1.0, 1.0)
            else:
                found.append(sense * h.getInfo().objective_function_value)
        return Interval(found[0], found[1])


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_SOLVERS = threading.local()


def _solver() -> _Solver:
    if not hasattr(_SOLVERS, "solver"):
        _SOLVERS.solver = _Solver()
    solver: _Solver = _SOLVERS.solver
    return solver


def _solve(
    rows: list[tuple[dict[str, float], float]],
    members: list[int],
    target: str,
    solved: dict[str, tuple[list[str], Any, np.ndarray]],
    root: str,
) -> Interval:
    """Bounds of ``target`` by two LPs over the equations ``members``."""
    if root not in solved:
        names = sorted({k for i in members for k in rows[i][0]})
        index = {k: n for n, k in enumerate(names)}
        # Row-wise sparse form (CSR) as HiGHS takes it: starts, column indices, values.
        starts, columns, data = [0], [], []
        rhs = np.zeros(len(members))
        for r, i in enumerate(members):
            coefficients, constant = rows[i]
            for k, c in coefficients.items():
                columns.append(index[k])
                data.append(c)
            starts.append(len(columns))
            rhs[r] = constant
        matrix = _Csr(
            np.array(starts, dtype=np.int32),
            np.array(columns, dtype=np.int32),
            np.array(data, dtype=np.float64),
        )
        solved[root] = (names, matrix, rhs)
    names, matrix, rhs = solved[root]
    return _solver().bounds(names, matrix, rhs, target)


def protect(
    values: Mapping[str, int],
    equations: Sequence[Equation],
    threshold: int,
    *,
    frozen: Mapping[str, bool] | None = None,
    max_rounds: int = 500,
) -> set[str]:
    """The cells to suppress so that every small cell is protected (module docstring).

    ``frozen`` maps already published cells to whether they were suppressed; those keep
    their state. Raises DisclosureError when a small cell cannot be protected.
    """
    frozen = dict(frozen or {})
    small = {k for k, v in values.items() if 0 < v < threshold}
    for key in small:
        if key in frozen and not frozen[key]:
            raise DisclosureError(f"cell {key} was published earlier although small")
    suppressed = {k for k in values if (k in small and k not in frozen) or frozen.get(k)}
    members: dict[str, list[int]] = defaultdict(list)
    for index, (total, parts) in enumerate(equations):
        for key in (total, *parts):
            members[key].append(index)
    cache: dict[Any, Interval] = {}
    for _ in range(max_rounds):
        intervals = attack(values, equations, suppressed, sorted(small), cache=cache)
        exposed = sorted(k for k, i in intervals.items() if not i.protects(threshold))
        if not exposed:
            return suppressed
        added: set[str] = set()
        for key in exposed:
            # A cell added this round may already protect this one: look again next round
            # rather than hide a second cell for it.
            if any(other in added for i in members.get(key, ()) for other in _cells(equations[i])):
                continue
            choice = _partner(key, values, equations, members, suppressed, frozen)
            if choice is not None and choice not in suppressed:
                suppressed.add(choice)
                added.add(choice)
        if not added:
            raise DisclosureError(
                f"{len(exposed)} small cell(s) cannot be protected (first: {exposed[0]})"
            )
    raise DisclosureError("secondary suppression did not converge")


def _cells(equation: Equation) -> tuple[str, ...]:
    return (equation[0], *equation[1])


def _partner(
    key: str,
    values: Mapping[str, int],
    equations: Sequence[Equation],
    members: Mapping[str, list[int]],
    suppressed: set[str],
    frozen: Mapping[str, bool],
) -> str | None:
    """The cell to suppress next for ``key``: smallest non-zero free cell near it.

    First in the equations of ``key`` itself, then in those of the suppressed cells linked to
    it (breadth first), so protection spreads only as far as it must.
    """
    seen_cells = {key}
    frontier = [key]
    seen_equations: set[int] = set()
    while frontier:
        candidates: list[tuple[int, int, str]] = []
        next_frontier: list[str] = []
        for cell in frontier:
            for index in members.get(cell, ()):
                if index in seen_equations:
                    continue
                seen_equations.add(index)
                total, parts = equations[index]
                for position, other in enumerate((total, *parts)):
                    if other in suppressed:
                        if other not in seen_cells:
                            seen_cells.add(other)
                            next_frontier.append(other)
                        continue
                    if other in frozen or values[other] <= 0:
                        continue
                    # Parts before totals: a total hidden costs more than a part.
                    candidates.append((values[other], 1 if position == 0 else 0, other))
        if candidates:
            return min(candidates)[2]
        frontier = next_frontier
    return None
