"""Mapping behaviour beyond the samples: classifiers, signatures, errors, helpers."""

from __future__ import annotations

import copy

import pytest
from lxml import etree

from gateway.errors import CanonicalInvalidError, MappingError
from gateway.mapping import MappingRegistry
from gateway.ns import DS, ECASE
from gateway.xml import parse_xml, serialize

from .helpers import MAPPINGS, sample_dir, valid_json


@pytest.fixture
def ruling(registry: MappingRegistry):  # type: ignore[no-untyped-def]
    return registry.get("court_ruling")


def ruling_function_code() -> str:
    """The wire (E-case) code of the sample ruling's function, from the classifier file."""
    registry = MappingRegistry.load(MAPPINGS)
    return registry.classifiers["function_subtype"].to_wire["ecase"]["forced_labour"]


def _valid_xml(name: str) -> etree._Element:
    return parse_xml((sample_dir(name) / "valid.xml").read_bytes())


def test_classifier_codes_are_translated_both_ways(ruling) -> None:  # type: ignore[no-untyped-def]
    element = ruling.to_xml(valid_json("court_ruling"))
    wire = ruling_function_code()
    assert element.findtext(f"{{{ECASE}}}Measure/{{{ECASE}}}Function") == wire
    assert ruling.to_canonical(element)["measures"][0]["function"] == "forced_labour"


def test_unknown_classifier_code_in_xml_is_a_mapping_error(ruling) -> None:  # type: ignore[no-untyped-def]
    element = _valid_xml("court_ruling")
    element.find(f"{{{ECASE}}}Measure/{{{ECASE}}}Function").text = "XX"
    with pytest.raises(MappingError, match="function") as exc:
        ruling.to_canonical(element)
    assert exc.value.code == "MAPPING_FAILED"


def test_unknown_classifier_code_in_json_is_refused_both_ways(ruling) -> None:  # type: ignore[no-untyped-def]
    data = valid_json("court_ruling")
    data["measures"][0]["function"] = "house_arrest"
    with pytest.raises(MappingError):
        ruling.to_xml(data)
    with pytest.raises(CanonicalInvalidError) as exc:
        ruling.validate_canonical(data)
    assert exc.value.details[0]["path"] == "measures.0.function"


def test_trailing_signature_is_ignored(ruling) -> None:  # type: ignore[no-untyped-def]
    element = _valid_xml("court_ruling")
    signature = etree.SubElement(element, f"{{{DS}}}Signature")
    etree.SubElement(signature, f"{{{DS}}}SignedInfo")
    assert ruling.to_canonical(element) == valid_json("court_ruling")


def test_unexpected_element_is_a_mapping_error(ruling) -> None:  # type: ignore[no-untyped-def]
    element = _valid_xml("court_ruling")
    etree.SubElement(element, f"{{{ECASE}}}Surprise").text = "x"
    with pytest.raises(MappingError, match="Surprise"):
        ruling.to_canonical(element)


def test_wrong_root_is_a_mapping_error(ruling) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MappingError):
        ruling.to_canonical(_valid_xml("mediation_proposal"))


def test_missing_required_value_is_a_mapping_error(ruling) -> None:  # type: ignore[no-untyped-def]
    data = valid_json("court_ruling")
    del data["person"]["last_name"]
    with pytest.raises(MappingError, match=r"person\.last_name"):
        ruling.to_xml(data)
    element = _valid_xml("court_ruling")
    element.remove(element.find(f"{{{ECASE}}}Judge"))
    with pytest.raises(MappingError, match="judge"):
        ruling.to_canonical(element)


def test_optional_values_are_omitted_both_ways(ruling) -> None:  # type: ignore[no-untyped-def]
    data = valid_json("court_ruling")
    for key in ("obligations", "remarks"):
        del data[key]
    del data["measures"][0]["hours"]
    del data["person"]["address"]
    element = ruling.to_xml(data)
    assert element.find(f"{{{ECASE}}}Remarks") is None
    assert ruling.to_canonical(parse_xml(serialize(element))) == data
    data_with_empty_list = {**data, "obligations": []}
    ruling.validate_canonical(data_with_empty_list)
    assert ruling.to_canonical(ruling.to_xml(data_with_empty_list)) == data


def test_datetime_is_kept_exactly(ruling) -> None:  # type: ignore[no-untyped-def]
    data = valid_json("court_ruling")
    data["sent_at"] = "2026-11-22T10:15:00.5Z"
    ruling.validate_canonical(data)
    assert ruling.to_canonical(ruling.to_xml(data))["sent_at"] == "2026-11-22T10:15:00.5Z"


def test_validation_details_use_dotted_paths_and_hide_values(ruling) -> None:  # type: ignore[no-untyped-def]
    data = valid_json("court_ruling")
    data["person"]["personal_code"] = "991390-12345"
    data["obligations"][0]["code"] = "bad code"
    data["measures"][0]["hours"] = 5000
    data["extra"] = 1
    del data["judge"]
    with pytest.raises(CanonicalInvalidError) as exc:
        ruling.validate_canonical(data)
    paths = {d["path"] for d in exc.value.details}
    expected = {"person.personal_code", "obligations.0.code", "measures.0.hours", "extra", "judge"}
    assert paths == expected
    assert "991390" not in str(exc.value.as_dict())


def test_not_an_object_is_canonical_invalid(ruling) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CanonicalInvalidError):
        ruling.validate_canonical(["not", "an", "object"])


def test_get_path(ruling) -> None:  # type: ignore[no-untyped-def]
    data = valid_json("court_ruling")
    assert ruling.get_path(data, ruling.ordering_key) == "K30-0412-26/14"
    assert ruling.get_path(data, ruling.partner_message_id) == data["message_id"]
    assert ruling.get_path(data, "obligations.0.code") == "IERASTIES_VPD"
    assert ruling.get_path(data, "obligations.5.code") is None
    assert ruling.get_path(data, "person.nope") is None


def test_to_xml_does_not_modify_input(ruling) -> None:  # type: ignore[no-untyped-def]
    data = valid_json("court_ruling")
    before = copy.deepcopy(data)
    ruling.to_xml(data)
    assert data == before


def test_xml_escaping_survives(ruling) -> None:  # type: ignore[no-untyped-def]
    data = valid_json("court_ruling")
    data["remarks"] = "A & B <c> \"d\" 'e' ]]> āčēģīķļņšūž"
    back = ruling.to_canonical(parse_xml(serialize(ruling.to_xml(data))))
    assert back["remarks"] == data["remarks"]
