"""Entitlement of employers by legal form and state share (DEF-03, ES-09), and minor bands."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.eservices.entitlement import (
    age_on,
    default_rules,
    employer_entitled,
    entitlement,
    is_minor,
    load_entitlement_rules,
    minor_rule,
)

ROOT = Path(__file__).resolve().parents[3]

ALWAYS = [
    "state_institution",
    "municipal_institution",
    "state_agency",
    "municipal_agency",
    "state_capital_company",
    "municipal_capital_company",
    "association",
    "foundation",
    "religious_organisation",
    "religious_institution",
]
WITH_SHARE = ["limited_liability_company", "joint_stock_company"]
NEVER = [
    "individual_merchant",
    "general_partnership",
    "limited_partnership",
    "cooperative_society",
    "farm",
    "trade_union",
    "political_party",
    "foreign_branch",
]


def test_every_legal_form_of_the_classifier_is_tested() -> None:
    assert set(default_rules().classifier.canonical_codes) == set(ALWAYS + WITH_SHARE + NEVER)


@pytest.mark.parametrize("form", ALWAYS)
@pytest.mark.parametrize("share", [None, 0.0, 100.0])
def test_entitled_by_legal_form_whatever_the_share(form: str, share: float | None) -> None:
    assert employer_entitled(form, share)
    assert entitlement(form, share).reason == "ENTITLED_LEGAL_FORM"


@pytest.mark.parametrize("form", NEVER)
@pytest.mark.parametrize("share", [None, 51.0, 100.0])
def test_never_entitled_even_if_state_owned(form: str, share: float | None) -> None:
    assert not employer_entitled(form, share)
    assert entitlement(form, share).reason == "LEGAL_FORM_NOT_ENTITLED"


@pytest.mark.parametrize("form", WITH_SHARE)
@pytest.mark.parametrize(
    ("share", "entitled", "reason"),
    [
        (51, True, "ENTITLED_STATE_SHARE"),
        (51.0, True, "ENTITLED_STATE_SHARE"),
        (100, True, "ENTITLED_STATE_SHARE"),
        (50, False, "STATE_SHARE_BELOW_MINIMUM"),
        (50.99, False, "STATE_SHARE_BELOW_MINIMUM"),
        (0, False, "STATE_SHARE_BELOW_MINIMUM"),
        (None, False, "STATE_SHARE_UNKNOWN"),
        (-1, False, "STATE_SHARE_INVALID"),
        (100.5, False, "STATE_SHARE_INVALID"),
        (float("nan"), False, "STATE_SHARE_INVALID"),
        (True, False, "STATE_SHARE_INVALID"),
    ],
)
def test_companies_need_51_percent(form: str, share: float, entitled: bool, reason: str) -> None:
    answer = entitlement(form, share)
    assert (answer.entitled, answer.reason, answer.legal_form) == (entitled, reason, form)
    assert employer_entitled(form, share) is entitled


def test_wire_codes_are_understood_and_unknown_forms_refused() -> None:
    assert entitlement("SIA", 51).reason == "ENTITLED_STATE_SHARE"
    assert entitlement("BIEDRIBA", None).legal_form == "association"
    for unknown in ("", "LLC", "sia", "Association"):
        answer = entitlement(unknown, 100)
        assert (answer.entitled, answer.reason, answer.legal_form) == (
            False,
            "LEGAL_FORM_UNKNOWN",
            None,
        )


def _copy(tmp_path: Path) -> Path:
    mappings = tmp_path / "mappings"
    (mappings / "eservices").mkdir(parents=True)
    (mappings / "classifiers").mkdir()
    shutil.copy(ROOT / "mappings/eservices/entitlement.yaml", mappings / "eservices")
    shutil.copy(ROOT / "mappings/classifiers/legal_form.yaml", mappings / "classifiers")
    return mappings


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("  - foreign_branch\n", "", "'foreign_branch' of classifier 'legal_form' version"),
        ("  - farm\n", "  - farm\n  - association\n", "also in 'entitled'"),
        ("  - farm\n", "  - farm\n  - llc\n", "'llc' is not a code"),
        ("minimum_percent: 51", "minimum_percent: 0", "minimum_percent"),
        ("below_age: 18", "below_age: 10", "from_age < below_age"),
        ('version: "2027.1"', "version: 2027.1", "key 'version'"),
        ("classifier: legal_form", "classifier: legal_forms", "cannot read YAML"),
    ],
)
def test_bad_table_fails_at_load(tmp_path: Path, old: str, new: str, message: str) -> None:
    mappings = _copy(tmp_path)
    path = mappings / "eservices/entitlement.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_entitlement_rules(mappings)
    assert message in str(info.value)


def test_copied_rules_load_and_decide(tmp_path: Path) -> None:
    rules = load_entitlement_rules(_copy(tmp_path))
    assert employer_entitled("joint_stock_company", 75, rules=rules)


def test_age_and_minor_bands() -> None:
    assert age_on(date(2010, 3, 15), date(2027, 3, 14)) == 16
    assert age_on(date(2010, 3, 15), date(2027, 3, 15)) == 17
    assert age_on(date(2008, 2, 29), date(2027, 2, 28)) == 18
    assert age_on(date(2008, 2, 29), date(2027, 3, 1)) == 19
    band = minor_rule("public_work")
    assert (band.from_age, band.below_age) == (11, 18)
    assert band.contains(11) and band.contains(17) and not band.contains(18)
    assert minor_rule("companion").contains(25) and not minor_rule("companion").contains(26)
    with pytest.raises(KeyError):
        minor_rule("elderly")
    on = date(2027, 6, 1)
    assert is_minor(date(2010, 6, 2), on)  # 16
    assert is_minor(date(2009, 6, 2), on)  # 17, turns 18 tomorrow
    assert not is_minor(date(2009, 6, 1), on)  # 18 today
    assert is_minor(date(2002, 6, 2), on, companion=True)  # 24... 25 tomorrow
    assert is_minor(date(2001, 6, 2), on, companion=True)  # 25
    assert not is_minor(date(2001, 6, 1), on, companion=True)  # 26 today
