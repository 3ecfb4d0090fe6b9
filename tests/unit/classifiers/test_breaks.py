"""What a new classifier version would break: XSD enumerations, samples, mappings."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.classifiers.apply import plan
from gateway.classifiers.breaks import Break, XsdEnumerations, check_breaks, used_fields
from gateway.classifiers.diff import diff_classifier
from gateway.classifiers.remote import RemoteClassifier, RemoteCode
from gateway.mapping import MappingRegistry
from gateway.mapping.spec import load_classifier

from .conftest import Tree, published

DAY = date(2026, 6, 1)
T = "{urn:test:ecase:messages}"
TC = "{urn:test:common}"


def breaks_for(tree: Tree, name: str, remote: RemoteClassifier) -> list[Break]:
    path = tree.classifier_file(name)
    old = load_classifier(path)
    change = plan(path, diff_classifier(old, remote, day=DAY))
    return check_breaks(
        old,
        change.new,
        classifier_file=path,
        registry=MappingRegistry.load(tree.mappings),
        xsd=XsdEnumerations(tree.xsd),
        samples=tree.samples,
    )


def test_enumeration_of_a_named_type_in_the_message_schema(tree: Tree) -> None:
    type_name, codes = XsdEnumerations(tree.xsd).lookup(
        "ecase/messages.xsd", f"{T}EvaluationReportRequest", (f"{T}Purpose",)
    )
    assert type_name == "t:EvaluationPurposeCode"
    assert codes == ["PIRMSTIESAS", "PIRMS_TERMINA", "PIRMS_TERMINA_EU"]


def test_enumeration_inside_an_imported_type_derived_from_another(tree: Tree) -> None:
    type_name, codes = XsdEnumerations(tree.xsd).lookup(
        "ecase/messages.xsd",
        f"{T}EvaluationReportRequest",
        (f"{T}Case", f"{TC}FunctionSubtype"),
    )
    assert type_name == "tc:FunctionSubtypeCode"
    assert codes == ["PIESPIEDU_DARBS", "SABIEDRISKAIS_DARBS", "IZLIGUMS"]


def test_an_element_reached_by_reference_and_an_unrestricted_type(tree: Tree) -> None:
    assert XsdEnumerations(tree.xsd).lookup(
        "ecase/messages.xsd", f"{T}EvaluationReportRequest", (f"{T}MessageId",)
    ) == ("xs:string", None)


def test_an_element_the_xsd_does_not_have_is_a_lookup_error(tree: Tree) -> None:
    with pytest.raises(LookupError, match="NoSuch"):
        XsdEnumerations(tree.xsd).lookup(
            "ecase/messages.xsd", f"{T}EvaluationReportRequest", (f"{T}NoSuch",)
        )


def test_used_fields_follow_objects_and_lists(tree: Tree) -> None:
    registry = MappingRegistry.load(tree.mappings)
    found = [
        (u.mapping.message_type, u.json_path) for u in used_fields(registry, "function_subtype")
    ]
    assert found == [("evaluation_report_request", ("case", "function_subtype"))]
    assert [u.json_path for u in used_fields(registry, "evaluation_purpose")] == [("purposes",)]


def test_label_only_change_breaks_nothing(tree: Tree) -> None:
    remote = published(
        tree.remote("evaluation_purpose"), "2026.2", relabel={"PIRMSTIESAS": "Pre-trial report"}
    )
    assert breaks_for(tree, "evaluation_purpose", remote) == []


def test_added_code_the_xsd_does_not_list_is_a_break(tree: Tree) -> None:
    remote = published(
        tree.remote("function_subtype"),
        "2027.1",
        add=(RemoteCode("PROBACIJAS_PROGRAMMAS", "Programmas", "Probation programmes"),),
    )
    found = breaks_for(tree, "function_subtype", remote)
    assert [(b.kind, b.message_type, b.field, b.codes) for b in found] == [
        (
            "xsd_missing_code",
            "evaluation_report_request",
            "case.function_subtype",
            ("PROBACIJAS_PROGRAMMAS",),
        )
    ]
    assert "tc:FunctionSubtypeCode does not list PROBACIJAS_PROGRAMMAS" in found[0].message
    assert found[0].file == "ecase/messages.xsd"


def test_added_code_already_in_the_xsd_is_fine(tree: Tree) -> None:
    xsd = tree.xsd / "common" / "common.xsd"
    xsd.write_text(
        xsd.read_text().replace(
            '<xs:enumeration value="IZLIGUMS"/>',
            '<xs:enumeration value="IZLIGUMS"/><xs:enumeration value="PROBACIJAS_PROGRAMMAS"/>',
        )
    )
    remote = published(
        tree.remote("function_subtype"),
        "2027.1",
        add=(RemoteCode("PROBACIJAS_PROGRAMMAS", "Programmas", "Probation programmes"),),
    )
    assert breaks_for(tree, "function_subtype", remote) == []


def test_removed_code_used_by_samples_and_still_in_the_xsd(tree: Tree) -> None:
    remote = published(tree.remote("evaluation_purpose"), "2027.1", drop=("PIRMSTIESAS",))
    found = breaks_for(tree, "evaluation_purpose", remote)
    kinds = sorted((b.kind, Path(b.file or "").name, b.codes) for b in found)
    assert kinds == [
        ("sample_uses_removed_code", "valid.json", ("pre_trial",)),
        ("sample_uses_removed_code", "valid.xml", ("PIRMSTIESAS",)),
        ("xsd_extra_code", "messages.xsd", ("PIRMSTIESAS",)),
    ]


def test_removed_code_only_in_an_invalid_sample_is_still_reported(tree: Tree) -> None:
    xsd = tree.xsd / "ecase" / "messages.xsd"
    xsd.write_text(xsd.read_text().replace('<xs:enumeration value="PIRMS_TERMINA_EU"/>', ""))
    remote = published(tree.remote("evaluation_purpose"), "2027.1", drop=("PIRMS_TERMINA_EU",))
    found = breaks_for(tree, "evaluation_purpose", remote)
    assert [(b.kind, Path(b.file or "").name) for b in found] == [
        ("sample_uses_removed_code", "invalid-early-release.xml")
    ]


def test_removed_code_nobody_uses_with_the_xsd_updated_is_fine(tree: Tree) -> None:
    xsd = tree.xsd / "common" / "common.xsd"
    xsd.write_text(xsd.read_text().replace('<xs:enumeration value="SABIEDRISKAIS_DARBS"/>', ""))
    remote = published(tree.remote("function_subtype"), "2027.1", drop=("SABIEDRISKAIS_DARBS",))
    assert breaks_for(tree, "function_subtype", remote) == []


def test_a_field_whose_type_lists_no_codes_is_a_break(tree: Tree) -> None:
    xsd = tree.xsd / "ecase" / "messages.xsd"
    xsd.write_text(xsd.read_text().replace('type="t:EvaluationPurposeCode"', 'type="xs:string"'))
    remote = published(tree.remote("evaluation_purpose"), "2026.2")
    assert [b.kind for b in breaks_for(tree, "evaluation_purpose", remote)] == [
        "xsd_no_enumeration"
    ]


def test_a_mapping_of_another_contract_that_loses_its_column(tree: Tree) -> None:
    # A second contract ("legacy") uses function_subtype with its own codes; a code added by
    # the E-case service has no legacy code, so the mappings would no longer load.
    path = tree.classifier_file("function_subtype")
    text = path.read_text()
    for code, legacy_code in (
        ("PIESPIEDU_DARBS", "PD"),
        ("SABIEDRISKAIS_DARBS", "SD"),
        ("IZLIGUMS", "IZ"),
    ):
        text = text.replace(f"ecase: {code},", f"ecase: {code}, legacy: {legacy_code},")
    path.write_text(text)
    ecase_mapping = tree.mappings / "ecase" / "evaluation_report_request.yaml"
    other = tree.mappings / "legacy.yaml"
    other.write_text(
        ecase_mapping.read_text()
        .replace("contract: ecase", "contract: legacy")
        .replace("message_type: evaluation_report_request", "message_type: legacy_request")
        .replace("operation: SubmitEvaluationReportRequest", "operation: LegacyRequest")
        .replace("root: t:EvaluationReportRequest", "root: t:EvaluationReportRequest2")
        .replace("classifier: evaluation_purpose, ", "")
    )
    remote = published(
        tree.remote("function_subtype"),
        "2027.1",
        add=(RemoteCode("PROBACIJAS_PROGRAMMAS", "Programmas", "Probation programmes"),),
    )
    path_breaks = breaks_for(tree, "function_subtype", remote)
    kinds = [b.kind for b in path_breaks]
    assert "mappings_invalid" in kinds
    invalid = next(b for b in path_breaks if b.kind == "mappings_invalid")
    assert "no 'legacy' code for 'probation_programmes'" in invalid.message
    assert str(tree.mappings / "legacy.yaml") in invalid.message
