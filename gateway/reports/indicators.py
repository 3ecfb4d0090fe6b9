"""The indicator report: the project's result indicators for a year, against their targets.

What each indicator counts and its targets are data (``mappings/eservices/indicators.yaml``,
read and checked once by :func:`load_indicator_specs`); :func:`indicator_report` computes a
year from the store: the usage counters (e-service uses, distinct clients), PLUS's totals
(active clients, rulings and execution data including paper, registry requests), the journal
(what the gateway received and delivered electronically) and, when PLUS sent no yearly count of
active clients, the persons of the year's latest statistics extract.

An indicator whose denominator is missing is reported with ``value`` None and a note saying
what is missing; nothing is guessed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from gateway.errors import ConfigError
from gateway.store import Store
from gateway.store.indicators import MEASURES
from gateway.store.schema import utcnow
from gateway.store.usage import OUTCOMES

__all__ = [
    "IndicatorSpec",
    "Target",
    "active_clients_from_extract",
    "default_indicator_specs",
    "indicator_report",
    "load_indicator_specs",
    "year_bounds",
]

INDICATORS_FILE = Path("eservices") / "indicators.yaml"
_DEFAULT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
_RIGA = ZoneInfo("Europe/Riga")
_KINDS = ("uses", "client_share", "electronic_share", "registry_share")


@dataclass(frozen=True)
class Target:
    """A target value (uses, or a percentage) and what it stands for."""

    value: float
    label: str


@dataclass(frozen=True)
class IndicatorSpec:
    """One indicator: what it counts (``kind`` and its keys) and its targets."""

    id: str
    kpi: str
    title: str
    kind: str
    targets: tuple[Target, ...]
    outcomes: tuple[str, ...] = ()
    total: str | None = None
    direction: str | None = None
    status: str | None = None
    message_types: tuple[str, ...] = ()

    @property
    def unit(self) -> str:
        """``uses`` for a count, ``%`` for a share."""
        return "uses" if self.kind == "uses" else "%"


def _spec(where: str, raw: Any) -> IndicatorSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping")
    allowed = {
        "id",
        "kpi",
        "title",
        "kind",
        "targets",
        "outcomes",
        "total",
        "direction",
        "status",
        "message_types",
    }
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    for key in ("id", "kpi", "title", "kind"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{where}: key {key!r} must be a non-empty string")
    kind = raw["kind"]
    if kind not in _KINDS:
        raise ConfigError(f"{where}: key 'kind' must be one of {', '.join(_KINDS)}")
    targets_raw = raw.get("targets")
    if not isinstance(targets_raw, list) or not targets_raw:
        raise ConfigError(f"{where}: key 'targets' must be a non-empty list")
    targets = []
    for i, t in enumerate(targets_raw):
        value = t.get("value") if isinstance(t, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{where}: key 'targets[{i}].value' must be a positive number")
        if kind != "uses" and value > 100:
            raise ConfigError(f"{where}: key 'targets[{i}].value' is a percentage (0..100)")
        targets.append(Target(float(value), str(t.get("label") or "target")))
    outcomes = tuple(raw.get("outcomes") or ())
    if kind == "uses" and (not outcomes or any(o not in OUTCOMES for o in outcomes)):
        raise ConfigError(f"{where}: key 'outcomes' must list outcomes of {OUTCOMES}")
    total = raw.get("total")
    if kind != "uses" and total not in MEASURES:
        raise ConfigError(f"{where}: key 'total' must be one of {', '.join(MEASURES)}")
    types: tuple[str, ...] = ()
    if kind == "electronic_share":
        if raw.get("direction") not in ("in", "out"):
            raise ConfigError(f"{where}: key 'direction' must be in or out")
        if not isinstance(raw.get("status"), str):
            raise ConfigError(f"{where}: key 'status' must be a journal status")
        types = tuple(raw.get("message_types") or ())
        if not types or not all(isinstance(t, str) for t in types):
            raise ConfigError(f"{where}: key 'message_types' must list message types")
    return IndicatorSpec(
        id=raw["id"],
        kpi=raw["kpi"],
        title=raw["title"],
        kind=kind,
        targets=tuple(targets),
        outcomes=outcomes,
        total=total,
        direction=raw.get("direction"),
        status=raw.get("status"),
        message_types=types,
    )


def load_indicator_specs(path: Path) -> tuple[IndicatorSpec, ...]:
    """Read and check the indicator definitions at ``path``; ConfigError naming file and key."""
    try:
        with Path(path).open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the indicators: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("indicators"), list):
        raise ConfigError(f"{path}: key 'indicators' must be a list")
    specs = tuple(
        _spec(f"{path}: key 'indicators[{i}]'", raw) for i, raw in enumerate(data["indicators"])
    )
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: key 'indicators': duplicate id")
    return specs


@functools.cache
def default_indicator_specs(mappings: Path = _DEFAULT_MAPPINGS) -> tuple[IndicatorSpec, ...]:
    """The definitions under ``mappings`` (the repository's by default), loaded once."""
    return load_indicator_specs(Path(mappings) / INDICATORS_FILE)


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The year's start and the next year's start, in Riga time."""
    return datetime(year, 1, 1, tzinfo=_RIGA), datetime(year + 1, 1, 1, tzinfo=_RIGA)


def active_clients_from_extract(store: Store, year: int) -> tuple[int, str] | None:
    """Distinct persons in the year's latest accepted statistics extract, and its period.

    An extract of month M covers every case active on at least one day from 1 January to
    M's end, so the latest one of the year counts the year's active clients (persons).
    """
    from gateway.opendata.extract import load_rows
    from gateway.store.statistics import Extracts

    extracts = Extracts(store.db, store.journal)
    for month in range(12, 0, -1):
        period = f"{year}-{month:02d}"
        found = extracts.latest(period)
        if found is not None and found.get("content"):
            persons = {row.person_id for row in load_rows(found["content"])}
            return len(persons), period
    return None


def _plus_total(store: Store, year: int, measure: str) -> tuple[int | None, str]:
    """PLUS's yearly total, else the sum of the months it sent (and where it came from)."""
    months = [f"{year}-{m:02d}" for m in range(1, 13)]
    totals = store.indicators.totals([str(year), *months])
    if measure in totals.get(str(year), {}):
        return totals[str(year)][measure], f"PLUS, year {year}"
    have = [m for m in months if measure in totals.get(m, {})]
    if not have:
        return None, "no total from PLUS"
    if measure == "active_clients":
        # Monthly counts of active clients do not add up to the year's (one client spans
        # months); only a yearly count or an extract will do.
        return None, "no yearly total from PLUS"
    value = sum(totals[m][measure] for m in have)
    return value, f"PLUS, sum of {len(have)} month(s)"


def _share(numerator: int, denominator: int | None) -> float | None:
    if not denominator:
        return None
    return round(100.0 * numerator / denominator, 1)


def _one(store: Store, spec: IndicatorSpec, year: int) -> dict[str, Any]:
    since, until = year_bounds(year)
    first, last = f"{year}-01", f"{year}-12"
    notes: list[str] = []
    numerator: int
    denominator: int | None = None
    source: str
    if spec.kind == "uses":
        numerator = sum(r.uses for r in store.usage.rows(first, last) if r.outcome in spec.outcomes)
        value: float | None = float(numerator)
        source = f"usage counters ({', '.join(spec.outcomes)})"
    else:
        assert spec.total is not None  # checked at load
        if spec.kind == "client_share":
            numerator = store.usage.distinct_clients(first, last)
            denominator, source = _plus_total(store, year, spec.total)
            if denominator is None:
                from_extract = active_clients_from_extract(store, year)
                if from_extract is not None:
                    denominator, period = from_extract
                    source = f"statistics extract {period}"
        elif spec.kind == "electronic_share":
            assert spec.direction is not None and spec.status is not None
            numerator = store.indicators.electronic_messages(
                direction=spec.direction,
                status=spec.status,
                message_types=spec.message_types,
                since=since,
                until=until,
            )
            denominator, source = _plus_total(store, year, spec.total)
        else:
            numerator = store.indicators.registry_requests(since=since, until=until)
            denominator, source = _plus_total(store, year, spec.total)
        value = _share(numerator, denominator)
        if denominator is None:
            notes.append(f"no denominator ({spec.total}): {source}")
        elif numerator > denominator:
            notes.append(
                f"the gateway counted {numerator}, more than PLUS's total {denominator}: "
                "the total is too low or incomplete"
            )
    return {
        "id": spec.id,
        "kpi": spec.kpi,
        "title": spec.title,
        "unit": spec.unit,
        "value": value,
        "numerator": numerator,
        "denominator": denominator,
        "source": source,
        "targets": [
            {"value": t.value, "label": t.label, "met": value is not None and value >= t.value}
            for t in spec.targets
        ],
        "notes": notes,
    }


def indicator_report(
    store: Store, year: int, specs: tuple[IndicatorSpec, ...] | None = None
) -> dict[str, Any]:
    """Every indicator of ``year`` against its targets, as JSON-able data."""
    specs = specs if specs is not None else default_indicator_specs()
    return {
        "year": year,
        "generated_at": utcnow().isoformat(),
        "indicators": [_one(store, spec, year) for spec in specs],
    }
