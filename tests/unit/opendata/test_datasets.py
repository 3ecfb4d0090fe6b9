"""The eight sets on a hand-checked extract (tests/unit/opendata/conftest.py), before suppression.

October 2026: active are c1, c2 (conditional sentence), c3 (early release, closed 15 Oct),
c4 (forced labour), c5 (public work), c6 (mediation, settled 5 Oct); c7 closed in September,
c8 in March, c9 in June. Persons p1 (c1, c4), p2, p3, p4, p5: five persons, six clients.
The year 2026: all nine cases, eight persons.
"""

from __future__ import annotations

from typing import Any

from gateway.opendata.datasets import Average, Built, Cell, PeriodSpan, build_period
from gateway.opendata.extract import ExtractCodes
from tests.unit.opendata.conftest import hand_checked


def table(built: Built, period: str, number: int) -> list[dict[str, Any]]:
    """Rows with cells replaced by their values and averages by rounded numbers."""
    out = []
    for row in built.tables[(period, number)]:
        plain: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, Cell):
                plain[key] = built.values[value.key]
            elif isinstance(value, Average):
                plain[key] = None if value.value is None else round(value.value, 1)
            else:
                plain[key] = value
        out.append(plain)
    return out


def pick(rows: list[dict[str, Any]], **where: str) -> Any:
    (found,) = [r for r in rows if all(r[k] == v for k, v in where.items())]
    return found


def test_set1_active_clients_by_subtype_and_breakdown(codes: ExtractCodes) -> None:
    built = build_period(hand_checked(), PeriodSpan.of("2026-10"), codes)
    rows = table(built, "2026-10", 1)
    totals = {r["function_subtype"]: r["active_clients"] for r in rows if r["breakdown"] == "total"}
    assert len(totals) == 13
    assert {k: v for k, v in totals.items() if v} == {
        "conditional_sentence_supervision": 2,
        "early_release_supervision": 1,
        "forced_labour": 1,
        "public_work": 1,
        "mediation": 1,
    }
    cs = [r for r in rows if r["function_subtype"] == "conditional_sentence_supervision"]
    got = {(r["breakdown"], r["category"]): r["active_clients"] for r in cs if r["active_clients"]}
    assert got == {
        ("total", "total"): 2,
        ("sex", "M"): 1,
        ("sex", "F"): 1,
        ("age_group", "35-44"): 1,  # born 1990: 36
        ("age_group", "25-34"): 1,  # born 2001: 25
        ("offence", "violent"): 1,
        ("offence", "other"): 1,
        ("economic_activity", "unemployed"): 1,
        ("economic_activity", "employed"): 1,
    }
    assert (
        pick(
            rows,
            function_subtype="early_release_supervision",
            breakdown="offence",
            category="sexual",
        )["active_clients"]
        == 1
    )
    assert (
        pick(rows, function_subtype="public_work", breakdown="age_group", category="under_18")[
            "active_clients"
        ]
        == 1
    )
    assert pick(rows, function_subtype="public_work", breakdown="total")[
        "function_subtype_lv"
    ].startswith("Sabiedriskais darbs")


def test_sets_2_3_supervision_term_and_programmes(codes: ExtractCodes) -> None:
    built = build_period(hand_checked(), PeriodSpan.of("2026-10"), codes)
    # c1 730 days, c2 365, c3 1018: 2113 / 3 / 30.4375 = 23.1 months.
    assert table(built, "2026-10", 2) == [
        {"period": "2026-10", "supervision_clients": 3, "average_term_months": 23.1}
    ]
    rows3 = {r["participation"]: r["supervision_clients"] for r in table(built, "2026-10", 3)}
    assert rows3 == {"participating": 1, "not_participating": 2, "total": 3}
    year = build_period(hand_checked(), PeriodSpan.of("2026"), codes)
    # The year adds c9 (365 days): 2478 / 4 / 30.4375 = 20.4.
    assert table(year, "2026", 2)[0]["average_term_months"] == 20.4
    assert table(year, "2026", 2)[0]["supervision_clients"] == 4


def test_sets_4_and_6_the_cohort_of_closed_supervision_cases(codes: ExtractCodes) -> None:
    october = build_period(hand_checked(), PeriodSpan.of("2026-10"), codes)
    rows4 = table(october, "2026-10", 4)
    nonzero = {
        (r["activity_at_start"], r["activity_at_end"]): r["clients"] for r in rows4 if r["clients"]
    }
    assert nonzero == {
        ("unemployed", "employed"): 1,
        ("unemployed", "total"): 1,
        ("total", "employed"): 1,
        ("total", "total"): 1,
    }
    assert {r["reoffending"]: r["clients"] for r in table(october, "2026-10", 6)} == {
        "not_reoffended": 1,
        "reoffended": 0,
        "unknown": 0,
        "total": 1,
    }
    year = build_period(hand_checked(), PeriodSpan.of("2026"), codes)
    assert {r["reoffending"]: r["clients"] for r in table(year, "2026", 6)} == {
        "not_reoffended": 1,
        "reoffended": 1,
        "unknown": 0,
        "total": 2,
    }
    assert (
        pick(table(year, "2026", 4), activity_at_start="employed", activity_at_end="employed")[
            "clients"
        ]
        == 1
    )


def test_set5_successful_mediations(codes: ExtractCodes) -> None:
    october = {
        r["outcome"]: r["mediations"]
        for r in table(build_period(hand_checked(), PeriodSpan.of("2026-10"), codes), "2026-10", 5)
    }
    assert october == {"settled": 1, "not_settled": 0, "refused": 0, "unknown": 0, "total": 1}
    year = {
        r["outcome"]: r["mediations"]
        for r in table(build_period(hand_checked(), PeriodSpan.of("2026"), codes), "2026", 5)
    }
    assert year["settled"] == 1 and year["refused"] == 1 and year["total"] == 2


def test_set7_average_hours(codes: ExtractCodes) -> None:
    rows = table(build_period(hand_checked(), PeriodSpan.of("2026-10"), codes), "2026-10", 7)
    assert rows == [
        {
            "period": "2026-10",
            "work_type": "forced_labour",
            "active_clients": 1,
            "average_hours": 40.0,
        },
        {
            "period": "2026-10",
            "work_type": "public_work",
            "active_clients": 1,
            "average_hours": 8.0,
        },
    ]


def test_set8_persons_and_clients_are_two_counts(codes: ExtractCodes) -> None:
    october = table(build_period(hand_checked(), PeriodSpan.of("2026-10"), codes), "2026-10", 8)
    assert {r["measure"]: r["count"] for r in october} == {"persons": 5, "clients": 6}
    year = table(build_period(hand_checked(), PeriodSpan.of("2026"), codes), "2026", 8)
    assert {r["measure"]: r["count"] for r in year} == {"persons": 8, "clients": 9}


def test_every_equation_holds(codes: ExtractCodes) -> None:
    for period in ("2026-10", "2026"):
        built = build_period(hand_checked(), PeriodSpan.of(period), codes)
        for total, parts in built.equations:
            assert built.values[total] == sum(built.values[p] for p in parts), (total, parts)
