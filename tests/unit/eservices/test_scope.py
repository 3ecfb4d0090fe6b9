"""The data-scope table: PLUS over-shares, only in-scope fields and assigned clients leave."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.eservices.scope import (
    AUDIENCES,
    ESERVICES,
    EServiceNotPermittedError,
    ScopeTable,
    apply_scope,
    default_scope_table,
    load_scope_table,
)

#: What an over-sharing PLUS might put anywhere: none of it is in any scope.
SECRETS = {
    "personal_code": "010190-12345",
    "birth_date": "1990-01-01",
    "address": "Brīvības iela 1, Rīga",
    "offence": "theft",
    "risk_level": "high",
    "officer_notes": "confidential",
}


def _client(ident: str, *, minor: bool = False) -> dict[str, Any]:
    return {
        "client_id": ident,
        "given_name": "Anna",
        "family_name": "Bērziņa",
        "minor": minor,
        "function_subtype": "forced_labour",
        "contact": {"phone": "+37120000000", "email": "anna@example.lv"},
        "work": {
            "assignment_id": "A-1",
            "start_date": "2027-01-04",
            "end_date": "2027-03-31",
            "hours_assigned": 120,
            "hours_worked": 40,
            "schedule": [
                {"date": "2027-01-05", "from": "09:00", "to": "13:00", "place": "Park", **SECRETS}
            ],
            **SECRETS,
        },
        "task": {
            "task_id": "T-1",
            "description": "Accompany to the job centre",
            "meetings": [{"at": "2027-01-06T10:00", "place": "VPD", "victim": "X"}],
            **SECRETS,
        },
        **SECRETS,
    }


def _over_sharing(eservice: str) -> dict[str, Any]:
    """PLUS's answer with everything the scope allows and much it does not."""
    if eservice == "my_probation_data":
        return {
            "request_id": "R-1",
            "answered_at": "2027-01-05T10:00:00Z",
            "case": {
                "case_number": "VPD-2027-1",
                "function_subtype": "supervision",
                "status": "active",
                "start_date": "2027-01-01",
                "end_date": "2028-01-01",
                "officer": {"name": "Ieva", "unit": "Rīga", "phone": "1", "email": "i@vpd.lv"},
                "obligations": [{"code": "REPORT", "text": "Report weekly", "due_date": None}],
                "appointments": [{"at": "2027-01-10T09:00", "place": "VPD", "purpose": "talk"}],
                "hours": {"assigned": 0, "worked": 0, "remaining": 0},
                "programmes": [{"name": "Cognitive skills", "status": "planned"}],
                "documents": [{"title": "Plan", "issued_on": "2027-01-02", "body": "..."}],
                "victim": {"name": "Jānis", "personal_code": "020202-22222"},
                **SECRETS,
            },
            **SECRETS,
        }
    if eservice == "probation_client_data":
        return {
            "request_id": "R-2",
            "answered_at": "2027-01-05T10:00:00Z",
            "clients": [_client("C-1"), _client("C-2", minor=True), _client("C-9")],
            **SECRETS,
        }
    return {
        "request_id": "R-3",
        "submission_id": "S-1",
        "form": "change_of_residence",
        "form_version": "1",
        "status": "answered",
        "answered_at": "2027-01-05T10:00:00Z",
        "answer": {"text": "Noted", "officer_unit": "Rīga", "next_steps": ["visit"], **SECRETS},
        "client": {"client_id": "C-9", **SECRETS},
        **SECRETS,
    }


def _paths(value: Any, prefix: str = "") -> set[str]:
    """Every leaf path of ``value`` in the table's notation."""
    if isinstance(value, dict):
        out: set[str] = set()
        for key, child in value.items():
            out |= _paths(child, f"{prefix}.{key}" if prefix else key)
        return out
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        out = set()
        for item in value:
            out |= _paths(item, prefix + "[]")
        return out
    return {prefix}


def _allowed(rule_fields: tuple[str, ...]) -> set[str]:
    return {p[:-2] if p.endswith("[]") else p for p in rule_fields}


CASES = [(e, a) for e in ESERVICES for a in AUDIENCES if (e, a) in default_scope_table().rules]


def test_every_eservice_has_an_audience_and_the_stable_names() -> None:
    table = default_scope_table()
    assert {e for e, _ in table.rules} == set(ESERVICES)
    assert set(table.audiences("my_probation_data")) == {"client"}
    assert set(table.audiences("information_to_vpd")) == {"client"}
    assert set(table.audiences("probation_client_data")) == {
        "employer",
        "volunteer",
        "municipality",
    }
    assert set(table.audiences("employer_information")) == {"employer", "volunteer", "municipality"}


@pytest.mark.parametrize(("eservice", "audience"), CASES)
def test_over_sharing_answer_keeps_only_in_scope_fields_and_assigned_clients(
    eservice: str, audience: str
) -> None:
    table = default_scope_table()
    rule = table.rule(audience, eservice)
    answer = _over_sharing(eservice)
    before = copy.deepcopy(answer)
    result = apply_scope(
        audience, eservice, answer, assigned_client_ids={"C-1", "C-2"}, minor=False
    )
    assert answer == before, "the input is not touched"
    left = _paths(result.answer)
    assert left <= _allowed(rule.fields), left - _allowed(rule.fields)
    text = json.dumps(result.answer, ensure_ascii=False)
    for secret in SECRETS.values():
        assert secret not in text
    assert "020202-22222" not in text and "Jānis" not in text and "C-9" not in text
    assert "personal_code" in result.stripped_fields
    assert result.stripped_count >= len(result.stripped_fields) > 0
    assert not result.clean
    if rule.clients is not None:
        ids = [c["client_id"] for c in result.answer["clients"]]
        assert ids == ["C-1", "C-2"]
        assert result.removed_clients == 1
        # C-2 is flagged a minor by PLUS: the stricter scope applies to it alone.
        adult, minor = result.answer["clients"]
        for path in rule.minor_exclude:
            key = path.split(".")[1]
            assert key in adult
            assert key not in minor or path.count(".") > 1
        assert "family_name" not in minor and "contact" not in minor
        assert adult["family_name"] == "Bērziņa"
        assert result.minor_scope
    else:
        assert result.removed_clients == 0
    # Fields that are in scope did leave (the strip is not "remove everything").
    assert result.answer["request_id"].startswith("R-")


@pytest.mark.parametrize(("eservice", "audience"), CASES)
def test_minor_subject_gets_the_stricter_scope(eservice: str, audience: str) -> None:
    rule = default_scope_table().rule(audience, eservice)
    result = apply_scope(
        audience, eservice, _over_sharing(eservice), assigned_client_ids={"C-1"}, minor=True
    )
    left = _paths(result.answer)
    excluded = _allowed(rule.minor_exclude)
    assert not left & excluded
    assert left <= _allowed(rule.fields)


def test_my_probation_data_minor_loses_officer_contacts_and_documents() -> None:
    answer = _over_sharing("my_probation_data")
    adult = apply_scope(
        "client", "my_probation_data", answer, assigned_client_ids=None, minor=False
    )
    minor = apply_scope("client", "my_probation_data", answer, assigned_client_ids=None, minor=True)
    assert adult.answer["case"]["officer"] == {
        "name": "Ieva",
        "unit": "Rīga",
        "phone": "1",
        "email": "i@vpd.lv",
    }
    assert minor.answer["case"]["officer"] == {"name": "Ieva", "unit": "Rīga"}
    assert "documents" not in minor.answer["case"]
    assert adult.answer["case"]["documents"] == [{"title": "Plan", "issued_on": "2027-01-02"}]
    assert "case.documents[].body" in adult.stripped_fields
    assert minor.minor_scope and not adult.minor_scope


def test_no_assignment_means_no_client_leaves() -> None:
    result = apply_scope(
        "employer",
        "probation_client_data",
        _over_sharing("probation_client_data"),
        assigned_client_ids=None,
        minor=False,
    )
    assert result.answer["clients"] == []
    assert result.removed_clients == 3


def test_client_without_or_with_odd_id_is_removed_and_odd_minor_flag_is_a_minor() -> None:
    answer = {
        "clients": [
            {"given_name": "No id"},
            {"client_id": True, "given_name": "Bool id"},
            {"client_id": ["C-1"], "given_name": "List id"},
            "C-1",
            {"client_id": "C-1", "given_name": "Kept", "family_name": "F", "minor": "no"},
            {"client_id": "C-1", "given_name": "Kept", "family_name": "F"},
        ]
    }
    result = apply_scope(
        "employer", "probation_client_data", answer, assigned_client_ids={"C-1"}, minor=False
    )
    assert result.removed_clients == 4
    # "no" and a missing flag are not an explicit False: treated as minors (disclose less).
    assert result.answer["clients"] == [
        {"client_id": "C-1", "given_name": "Kept", "minor": "no"},
        {"client_id": "C-1", "given_name": "Kept"},
    ]


def test_wrong_shapes_are_stripped_and_keys_that_are_values_are_not_logged() -> None:
    answer: dict[Any, Any] = {
        "request_id": {"nested": "x"},
        "case": [1, 2],
        "010190-12345": {"name": "x"},
        7: "numeric key",
    }
    result = apply_scope(
        "client", "my_probation_data", answer, assigned_client_ids=None, minor=False
    )
    assert result.answer == {}
    assert result.stripped_fields == ["request_id", "case", "<key>"]
    assert "010190" not in json.dumps(result.stripped_fields)
    assert "010190" not in json.dumps(result.summary())
    assert result.summary()["stripped_count"] == 4
    assert result.stripped_count == 4


def test_audience_not_permitted() -> None:
    with pytest.raises(EServiceNotPermittedError) as info:
        apply_scope("employer", "my_probation_data", {}, assigned_client_ids=set(), minor=False)
    assert info.value.code == "ESERVICE_NOT_PERMITTED"
    with pytest.raises(EServiceNotPermittedError):
        apply_scope("client", "no_such", {}, assigned_client_ids=None, minor=False)


def test_clean_answer_is_clean() -> None:
    answer = {"request_id": "R", "case": {"status": "active", "obligations": []}}
    result = apply_scope(
        "client", "my_probation_data", answer, assigned_client_ids=None, minor=False
    )
    assert result.answer == answer
    assert result.clean and result.stripped_count == 0


# --- the table is checked at load ----------------------------------------------------------

GOOD = """
version: "1"
eservices:
  my_probation_data:
    client: {fields: [request_id]}
  probation_client_data:
    employer:
      clients: {list: clients, id: client_id, minor_flag: minor}
      fields: ["clients[].client_id"]
  information_to_vpd:
    client: {fields: [request_id]}
  employer_information:
    employer: {fields: [request_id]}
"""


def _load(tmp_path: Path, text: str) -> ScopeTable:
    path = tmp_path / "scope.yaml"
    path.write_text(text, encoding="utf-8")
    return load_scope_table(path)


def test_repository_table_loads_and_a_minimal_one_too(tmp_path: Path) -> None:
    assert default_scope_table().version
    assert _load(tmp_path, GOOD).rule("employer", "probation_client_data").clients is not None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('version: "1"', "version: 1", "key 'version'"),
        ("  information_to_vpd:\n    client: {fields: [request_id]}\n", "", "information_to_vpd"),
        ("client: {fields: [request_id]}", "clint: {fields: [request_id]}", "unknown audience"),
        ("my_probation_data:", "my_data:", "unknown e-service"),
        ("fields: [request_id]}\n  prob", "fields: [Request-Id]}\n  prob", "bad field path"),
        ("fields: [request_id]}\n  prob", "fields: [a, a.b]}\n  prob", "value and a container"),
        ("fields: [request_id]}\n  prob", "fields: [a, a]}\n  prob", "listed twice"),
        ("fields: [request_id]}\n  prob", "fields: []}\n  prob", "non-empty list"),
        ("fields: [request_id]}\n  prob", "fields: [a], extra: 1}\n  prob", "unknown key 'extra'"),
        ("id: client_id", "id: person", "key 'clients.id'"),
        ("list: clients,", "list: people,", "key 'clients.list'"),
        ("      clients: {list: clients, id: client_id, minor_flag: minor}\n", "", "needs key"),
        (
            'fields: ["clients[].client_id"]',
            'fields: ["clients[].client_id"]\n      minor_exclude: [x]',
            "minor_exclude",
        ),
    ],
)
def test_bad_table_fails_at_load_with_file_and_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in GOOD
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, GOOD.replace(old, new, 1))
    assert message in str(info.value)
    assert "scope.yaml" in str(info.value)


def test_unreadable_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_scope_table(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="must be a mapping"):
        _load(tmp_path, "- a list")
