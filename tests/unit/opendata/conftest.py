"""A small hand-checked extract, and the code lists of the repository."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from gateway.opendata.extract import CaseRow, ExtractCodes
from tests.conftest import ROOT

_BASE = CaseRow(
    person_id="p1",
    case_id="c1",
    function_subtype="conditional_sentence_supervision",
    start_date=date(2025, 5, 1),
    end_date=date(2027, 5, 1),
    closing_date=None,
    sex="M",
    birth_year=1990,
    violent_offence=True,
    sexual_offence=False,
    economic_activity_start="unemployed",
    economic_activity_end=None,
    programme_participation=True,
    mediation_outcome=None,
    hours_worked=None,
    reoffended=None,
)


def hand_checked() -> list[CaseRow]:
    """Nine cases of 2026, as the extract of 2026-12 has them (docs in test_datasets.py)."""
    return [
        _BASE,
        replace(
            _BASE,
            person_id="p2",
            case_id="c2",
            start_date=date(2026, 10, 10),
            end_date=date(2027, 10, 10),
            sex="F",
            birth_year=2001,
            violent_offence=False,
            economic_activity_start="employed",
            programme_participation=False,
        ),
        replace(
            _BASE,
            person_id="p3",
            case_id="c3",
            function_subtype="early_release_supervision",
            start_date=date(2024, 1, 1),
            end_date=date(2026, 10, 15),
            closing_date=date(2026, 10, 15),
            birth_year=1980,
            violent_offence=False,
            sexual_offence=True,
            economic_activity_end="employed",
            programme_participation=False,
            reoffended=False,
        ),
        replace(
            _BASE,
            case_id="c4",
            function_subtype="forced_labour",
            start_date=date(2026, 9, 1),
            end_date=None,
            programme_participation=False,
            hours_worked=40,
        ),
        replace(
            _BASE,
            person_id="p4",
            case_id="c5",
            function_subtype="public_work",
            start_date=date(2026, 10, 20),
            end_date=None,
            birth_year=2010,
            violent_offence=False,
            economic_activity_start="in_education",
            programme_participation=False,
            hours_worked=8,
        ),
        replace(
            _BASE,
            person_id="p5",
            case_id="c6",
            function_subtype="mediation",
            start_date=date(2026, 8, 1),
            end_date=None,
            closing_date=date(2026, 10, 5),
            sex="F",
            birth_year=1975,
            violent_offence=False,
            economic_activity_start="employed",
            programme_participation=False,
            mediation_outcome="settled",
        ),
        replace(
            _BASE,
            person_id="p6",
            case_id="c7",
            function_subtype="mediation",
            start_date=date(2026, 9, 1),
            end_date=None,
            closing_date=date(2026, 9, 30),
            birth_year=1985,
            violent_offence=False,
            programme_participation=False,
            mediation_outcome="refused",
        ),
        replace(
            _BASE,
            person_id="p7",
            case_id="c8",
            function_subtype="evaluation_pre_trial",
            start_date=date(2026, 3, 1),
            end_date=None,
            closing_date=date(2026, 3, 20),
            violent_offence=False,
            programme_participation=False,
        ),
        replace(
            _BASE,
            person_id="p8",
            case_id="c9",
            function_subtype="liability_release_supervision",
            start_date=date(2026, 2, 1),
            end_date=date(2027, 2, 1),
            closing_date=date(2026, 6, 30),
            sex="F",
            birth_year=1995,
            economic_activity_start="employed",
            economic_activity_end="employed",
            reoffended=True,
        ),
    ]


@pytest.fixture(scope="session")
def codes() -> ExtractCodes:
    """The repository's function sub-type, economic activity and mediation outcome lists."""
    return ExtractCodes.load(ROOT / "mappings")
