"""The indicator report on a year of synthetic usage: its figures are the generator's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from gateway.errors import ConfigError
from gateway.opendata.extract import dump_rows
from gateway.opendata.synthetic import SyntheticYear
from gateway.reports.indicators import (
    active_clients_from_extract,
    default_indicator_specs,
    indicator_report,
    load_indicator_specs,
)
from gateway.reports.render import bar, render_indicators
from gateway.reports.synthetic import SyntheticTotals, synthesize_year
from gateway.reports.usage import parse_months, usage_report
from gateway.store import Store, create_store_engine, migrate
from gateway.store.audit import AuditEntry
from gateway.store.statistics import Extracts

KEY = b"k" * 32
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, SyntheticTotals]]:
    """A store holding a synthetic 2027 (and a little of 2026 and 2028 that must not count)."""
    engine = create_store_engine(f"sqlite:///{tmp_path_factory.mktemp('ind')}/store.db")
    migrate(engine)
    store = Store(engine)
    totals = synthesize_year(store, 2027, key=KEY, uses=6_000, active_clients=4_000, seed=7)
    synthesize_year(store, 2026, key=KEY, uses=300, active_clients=500, seed=8)
    synthesize_year(store, 2028, key=KEY, uses=300, active_clients=500, seed=9)
    yield store, totals
    engine.dispose()


def _journal(
    store: Store,
    n: int,
    *,
    direction: str,
    status: str,
    message_type: str,
    at: datetime,
    ids: list[str] | None = None,
) -> list[str]:
    ids = ids or [uuid.uuid4().hex for _ in range(n)]
    for message_id in ids:
        store.journal.append(
            at=at,
            direction=direction,
            partner="tis",
            status=status,
            message_type=message_type,
            message_id=message_id,
        )
    return ids


def _by_id(report: dict) -> dict[str, dict]:
    return {i["id"]: i for i in report["indicators"]}


def test_generator_writes_what_it_says(year: tuple[Store, SyntheticTotals]) -> None:
    store, totals = year
    report = usage_report(store, parse_months("2027-01", "2027-12"))
    assert report["totals"]["uses"] == totals.uses == 6_000
    assert report["totals"]["by_outcome"] == {
        o: totals.by_outcome[o] for o in ("answered", "accepted", "refused", "failed")
    }
    assert report["totals"]["by_month"] == dict(totals.by_month)
    assert report["totals"]["by_eservice"] == dict(totals.by_eservice)
    assert report["totals"]["by_recipient_type"] == dict(totals.by_recipient_type)
    assert report["distinct_clients"] == totals.distinct_clients
    # Realistic shape: most uses served, a client minority among many active clients.
    assert 0.9 < totals.served / totals.uses < 0.97
    assert 0 < totals.distinct_clients < totals.active_clients


def test_indicator_report_matches_the_generator(year: tuple[Store, SyntheticTotals]) -> None:
    store, totals = year
    in_2027 = datetime(2027, 5, 5, tzinfo=UTC)
    # Rulings: 70 received electronically (one journaled twice, one refused, one in 2026).
    rulings = _journal(
        store, 69, direction="in", status="accepted", message_type="court_ruling", at=in_2027
    )
    _journal(store, 1, direction="in", status="accepted", message_type="penal_order", at=in_2027)
    _journal(
        store,
        1,
        direction="in",
        status="accepted",
        message_type="court_ruling",
        at=in_2027,
        ids=rulings[:1],
    )
    _journal(store, 1, direction="in", status="rejected", message_type="court_ruling", at=in_2027)
    _journal(
        store,
        1,
        direction="in",
        status="accepted",
        message_type="court_ruling",
        at=datetime(2026, 12, 31, 12, tzinfo=UTC),
    )
    # Execution notifications: 45 delivered (a replay delivers one again), 3 still pending.
    sent = _journal(
        store,
        45,
        direction="out",
        status="delivered",
        message_type="execution_notification",
        at=in_2027,
    )
    _journal(
        store,
        1,
        direction="out",
        status="delivered",
        message_type="execution_notification",
        at=in_2027,
        ids=sent[:1],
    )
    _journal(
        store,
        3,
        direction="out",
        status="pending",
        message_type="execution_notification",
        at=in_2027,
    )
    # Registry requests through the gateway: 12 in the year.
    store.audit.record(
        [
            AuditEntry(
                registry="vid",
                officer_id="o1",
                purpose="supervision",
                case_id="c1",
                personal_code="010190-12345",
                query_id=f"q{i}",
                status="answered",
                at=in_2027,
            )
            for i in range(12)
        ]
    )
    store.indicators.put_totals(
        "2027", {"active_clients": totals.active_clients, "rulings_received": 100}, actor="test"
    )
    for month in range(1, 13):
        store.indicators.put_totals(f"2027-{month:02d}", {"execution_data_sent": 5}, actor="test")

    report = indicator_report(store, 2027)
    got = _by_id(report)
    uses = got["eservice_uses"]
    assert uses["value"] == totals.served == uses["numerator"]
    assert [t["value"] for t in uses["targets"]] == [10_000, 18_000]
    assert [t["met"] for t in uses["targets"]] == [False, False]

    clients = got["clients_using_eservices"]
    assert clients["numerator"] == totals.distinct_clients
    assert clients["denominator"] == totals.active_clients
    assert clients["value"] == round(100 * totals.distinct_clients / totals.active_clients, 1)
    assert clients["source"] == "PLUS, year 2027"
    assert clients["targets"][0]["met"] is (clients["value"] >= 35)

    rulings_share = got["rulings_received_electronically"]
    assert (rulings_share["numerator"], rulings_share["denominator"]) == (70, 100)
    assert rulings_share["value"] == 70.0
    assert [t["met"] for t in rulings_share["targets"]] == [True, False]

    execution = got["execution_data_sent_electronically"]
    assert (execution["numerator"], execution["denominator"]) == (45, 60)
    assert execution["value"] == 75.0
    assert execution["source"] == "PLUS, sum of 12 month(s)"

    registry = got["registry_requests_electronic"]
    assert registry["numerator"] == 12
    assert registry["value"] is None and registry["denominator"] is None
    assert registry["notes"] and not registry["targets"][0]["met"]
    store.indicators.put_totals("2027", {"registry_requests": 12}, actor="test")
    registry = _by_id(indicator_report(store, 2027))["registry_requests_electronic"]
    assert registry["value"] == 100.0 and registry["targets"][0]["met"]

    # The terminal rendering shows the figures and a bar per indicator.
    console = Console(record=True, width=220, color_system=None)
    render_indicators(indicator_report(store, 2027), console)
    text = console.export_text()
    assert f"{totals.served:,}" in text and "70.0 %" in text and "75.0 %" in text
    assert "KPI-02" in text and "10,000" in text and "18,000" in text
    assert text.count("┃") >= 6


def test_total_below_the_electronic_count_is_noted(year: tuple[Store, SyntheticTotals]) -> None:
    store, _ = year
    _journal(
        store,
        3,
        direction="in",
        status="accepted",
        message_type="prison_release",
        at=datetime(2028, 2, 1, tzinfo=UTC),
    )
    store.indicators.put_totals("2028", {"rulings_received": 2}, actor="test")
    rulings = _by_id(indicator_report(store, 2028))["rulings_received_electronically"]
    assert rulings["value"] == 150.0
    assert "more than PLUS's total" in rulings["notes"][0]


def test_active_clients_from_the_statistics_extract(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path}/store.db")
    migrate(engine)
    store = Store(engine)
    assert active_clients_from_extract(store, 2027) is None
    rows = list(SyntheticYear(2027, clients=400, seed=3).extract(9))
    persons = {r.person_id for r in rows}
    assert len(persons) < len(rows)  # some persons have several cases: persons are counted
    Extracts(store.db, store.journal).record(
        period="2027-09",
        fmt="jsonl",
        rows=len(rows),
        size=1,
        sha256="0" * 64,
        content=dump_rows(iter(rows)),
        errors=[],
        error_count=0,
        actor=None,
    )
    assert active_clients_from_extract(store, 2027) == (len(persons), "2027-09")
    synthesize_year(store, 2027, key=KEY, uses=200, active_clients=300, seed=1)
    # A monthly count of active clients is not the year's: the extract is used instead.
    store.indicators.put_totals("2027-09", {"active_clients": 999}, actor="test")
    clients = _by_id(indicator_report(store, 2027))["clients_using_eservices"]
    assert clients["denominator"] == len(persons)
    assert clients["source"] == "statistics extract 2027-09"
    engine.dispose()


def test_bar_marks_targets() -> None:
    targets = [{"value": 50.0, "met": True}, {"value": 100.0, "met": False}]
    assert bar(75.0, targets, width=10).plain == "████┃███░┃"  # 7.5 cells round to 8
    assert bar(None, targets, width=10).plain.strip() == "no data"


def test_indicator_definitions_are_checked(tmp_path: Path) -> None:
    assert default_indicator_specs()[0].id == "eservice_uses"
    text = (ROOT / "mappings/eservices/indicators.yaml").read_text(encoding="utf-8")
    for old, new, message in [
        ("kind: uses", "kind: counts", "key 'kind'"),
        ("outcomes: [answered, accepted]", "outcomes: [answered, ok]", "key 'outcomes'"),
        ("value: 35,", "value: 135,", "percentage"),
        ("total: rulings_received", "total: paper", "key 'total'"),
        ("direction: out", "direction: sideways", "key 'direction'"),
        ("id: registry_requests_electronic", "id: eservice_uses", "duplicate id"),
    ]:
        assert old in text, old
        path = tmp_path / "indicators.yaml"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_indicator_specs(path)
        assert message in str(info.value)
