"""Loading mapping files: lookups, the public surface, and errors that name file and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from gateway.errors import ConfigError, UnknownOperationError
from gateway.mapping import MappingRegistry, MessageMapping
from gateway.ns import TIS
from gateway.xml import parse_xml

from .helpers import MAPPINGS, XSD

EXPECTED = {
    "tis.court_ruling": ("SubmitCourtRuling", "inbound", "CourtRuling"),
    "tis.mediation_proposal": ("SubmitMediationProposal", "inbound", "MediationProposal"),
    "tis.evaluation_report_request": (
        "SubmitEvaluationReportRequest",
        "inbound",
        "EvaluationReportRequest",
    ),
    "tis.execution_notification": (
        "SubmitExecutionNotification",
        "outbound",
        "ExecutionNotification",
    ),
    "tis.evaluation_report": ("SubmitEvaluationReport", "outbound", "EvaluationReport"),
    "tis.evaluation_report_supplement": (
        "SubmitEvaluationReportSupplement",
        "outbound",
        "EvaluationReportSupplement",
    ),
}


def test_loads_every_tis_message_type(registry: MappingRegistry) -> None:
    # The legacy point-to-point TIS contract, kept until the runtime switches to E-case.
    tis = [m.message_type for m in registry.all() if m.contract == "tis"]
    assert sorted(tis) == sorted(EXPECTED)
    for message_type, (operation, direction, local) in EXPECTED.items():
        m = registry.get(message_type)
        assert isinstance(m, MessageMapping)
        assert (m.contract, m.operation, m.direction) == ("tis", operation, direction)
        assert m.root == f"{{{TIS}}}{local}"
        assert m.schema == "tis/tis.xsd"
        assert m.partner_message_id == "message_id"
        assert m.ordering_key == "case.number"
        assert m.title and m.description
        assert m.steps is None
        assert registry.by_root(m.root) is m
        assert registry.by_operation(operation, contract="tis") is m


def test_unknown_lookups_raise_unknown_operation(registry: MappingRegistry) -> None:
    with pytest.raises(UnknownOperationError):
        registry.get("tis.nope")
    with pytest.raises(UnknownOperationError):
        registry.by_root(f"{{{TIS}}}Nope")
    with pytest.raises(UnknownOperationError):
        registry.by_root("{urn:lv:ta:tis:plus:v2}CourtRuling")
    with pytest.raises(UnknownOperationError):
        registry.by_operation("SubmitNope")
    with pytest.raises(UnknownOperationError):
        registry.by_operation("SubmitCourtRuling", contract="viss")


def test_json_schema_is_draft_2020_12_with_titles(registry: MappingRegistry) -> None:
    schema = registry.get("tis.court_ruling").json_schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Court ruling for execution"
    assert schema["additionalProperties"] is False
    assert "message_id" in schema["required"]
    props = schema["properties"]
    assert props["sentence_kind"]["enum"] == [
        "forced_labour",
        "public_work",
        "conditional_sentence_supervision",
        "probation_supervision_additional",
    ]
    assert props["sent_at"]["format"] == "date-time"
    assert props["person"]["properties"]["birth_date"]["format"] == "date"
    assert props["obligations"]["type"] == "array"
    assert props["obligations"]["items"]["required"] == ["code", "text"]
    assert props["criminal_law_sections"]["minItems"] == 1


def test_classifier_codes_are_the_xsd_enumerations(registry: MappingRegistry) -> None:
    xsd = parse_xml((XSD / "tis" / "tis.xsd").read_bytes())
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    enumerated = set(
        xsd.xpath("//xs:simpleType[contains(@name,'Code')]//xs:enumeration/@value", namespaces=ns)
    )
    tis_codes = {
        code for c in registry.classifiers.values() for code in c.to_wire.get("tis", {}).values()
    }
    assert tis_codes == enumerated


def test_wsdl_loads_in_zeep() -> None:
    zeep = pytest.importorskip("zeep")
    client = zeep.Client(str(MAPPINGS.parent / "wsdl" / "tis.wsdl"))
    tis = client.bind("TisService", "TisPort")
    inbound = client.bind("PlusTisInboundService", "PlusTisInboundPort")
    assert sorted(tis._operations) == sorted(
        op for op, direction, _ in EXPECTED.values() if direction == "outbound"
    )
    assert sorted(inbound._operations) == sorted(
        op for op, direction, _ in EXPECTED.values() if direction == "inbound"
    )
    binding = client.wsdl.bindings[f"{{{TIS}}}PlusTisInboundBinding"]
    assert binding._operations["SubmitCourtRuling"].soapaction == f"{TIS}/SubmitCourtRuling"


# ----- bad mapping files ---------------------------------------------------------------------


@pytest.fixture
def mappings_copy(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


def _edit(path: Path, change: dict[str, object] | None = None, **top: object) -> None:
    data = yaml.safe_load(path.read_text("utf-8"))
    data.update(top)
    if change:
        data["fields"][0].update(change)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")


@pytest.mark.parametrize(
    ("change", "top", "key"),
    [
        ({"type": "strng"}, {}, "type"),
        ({"colour": "red"}, {}, "colour"),
        ({"xml": "zz:MessageId"}, {}, "xml"),
        ({"classifier": "no_such_list", "pattern": None}, {}, "classifier"),
        ({"pattern": "[unclosed"}, {}, "pattern"),
        ({"max_length": "long"}, {}, "max_length"),
        (None, {"direction": "sideways"}, "direction"),
        (None, {"partner_message_id": "nope.id"}, "partner_message_id"),
        (None, {"ordering_key": "case"}, "ordering_key"),
        (None, {"operation": None}, "operation"),
        (None, {"bogus": 1}, "bogus"),
    ],
)
def test_bad_mapping_file_names_file_and_key(
    mappings_copy: Path, change: dict[str, object] | None, top: dict[str, object], key: str
) -> None:
    path = mappings_copy / "tis" / "court_ruling.yaml"
    if change and change.get("pattern", 1) is None:
        del change["pattern"]
    _edit(path, change, **top)
    with pytest.raises(ConfigError) as exc:
        MappingRegistry.load(mappings_copy)
    assert "court_ruling.yaml" in str(exc.value)
    assert key in str(exc.value)


def test_duplicate_message_type_is_refused(mappings_copy: Path) -> None:
    shutil.copy(mappings_copy / "tis" / "court_ruling.yaml", mappings_copy / "tis" / "copy.yaml")
    with pytest.raises(ConfigError, match="message_type"):
        MappingRegistry.load(mappings_copy)


def test_classifier_without_contract_column_is_refused(mappings_copy: Path) -> None:
    path = mappings_copy / "classifiers" / "risk_level.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    del data["codes"][0]["tis"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(ConfigError) as exc:
        MappingRegistry.load(mappings_copy)
    assert "evaluation_report.yaml" in str(exc.value)
    assert "classifier" in str(exc.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('name: risk_level\ntitle: x\nversion: "1"\ncodes: []\n', "codes"),
        ("name: risk_level\ntitle: x\ncodes: [{canonical: a, tis: A}]\n", "version"),
        (
            "name: risk_level\ntitle: x\nversion: 2026.1\ncodes: [{canonical: a, tis: A}]\n",
            "version",
        ),
        (
            'name: risk_level\ntitle: x\nversion: "1"\nsource: 7\ncodes: [{canonical: a}]\n',
            "source",
        ),
    ],
)
def test_bad_classifier_file_names_file_and_key(mappings_copy: Path, text: str, key: str) -> None:
    path = mappings_copy / "classifiers" / "risk_level.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as exc:
        MappingRegistry.load(mappings_copy)
    assert "risk_level.yaml" in str(exc.value)
    assert key in str(exc.value)


def test_malformed_yaml_names_file(mappings_copy: Path) -> None:
    (mappings_copy / "tis" / "broken.yaml").write_text("fields: [unclosed\n", "utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        MappingRegistry.load(mappings_copy)


def test_every_derived_schema_is_a_valid_json_schema(registry: MappingRegistry) -> None:
    # Start-up no longer checks the derived schemas; this does, for every mapping.
    from jsonschema import Draft202012Validator

    for mapping in registry.all():
        Draft202012Validator.check_schema(mapping.json_schema)
        Draft202012Validator.check_schema(mapping.request_schema)
