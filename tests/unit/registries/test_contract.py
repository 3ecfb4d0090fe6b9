from pathlib import Path

import pytest
from lxml import etree

from gateway.channels.header import XRoadHeader
from gateway.errors import SchemaValidationError
from gateway.mapping import MappingRegistry
from gateway.registries.contract import REGISTRIES
from gateway.registries.header import VISS_HEADER, read_header, viss_header
from gateway.registries.personal_code import is_valid
from gateway.registries.population import Population
from gateway.soap.envelope import build_envelope, parse_envelope
from gateway.xml import SchemaRegistry, XmlLimits

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def schemas() -> SchemaRegistry:
    registry = SchemaRegistry(ROOT / "xsd")
    registry.load_all("viss/*.xsd")
    return registry


@pytest.fixture(scope="module")
def mappings() -> MappingRegistry:
    return MappingRegistry.load(ROOT / "mappings")


@pytest.fixture(scope="module")
def population() -> Population:
    return Population()


def test_population_is_deterministic_and_valid(population: Population) -> None:
    assert len(population.persons) >= 1000
    assert all(is_valid(code) for code in population.codes)
    assert Population().codes == population.codes
    for tag in ("disability", "employed", "social", "several_documents", "new_code"):
        assert population.find(tag), tag
    for registry in REGISTRIES:
        assert population.find(f"no_{registry}"), registry


def test_every_answer_of_the_population_is_schema_valid(
    population: Population, schemas: SchemaRegistry, mappings: MappingRegistry
) -> None:
    for name, contract in REGISTRIES.items():
        mapping = mappings.get(contract.message_type)
        assert mapping.direction == "query_answer"
        for code in population.codes:
            record = population.persons[code].record(name)
            canonical = {
                "request_id": "PLUS-1",
                "response_id": "R-1",
                "answered_at": "2026-01-01T00:00:00Z",
                "personal_code": code,
                "result": "FOUND" if record is not None else "NOT_FOUND",
                **(record or {}),
            }
            element = mapping.to_xml(canonical)
            schemas.validate(element, contract.schema)
            assert mapping.to_canonical(element) == canonical


def _header(**changes: str) -> XRoadHeader:
    values = {
        "client": ("LV", "GOV", "90000000000", "PLUS"),
        "service": ("LV", "GOV", "90000000001", "VIIS", "GetEducation", "v1"),
        "user_id": "officer-1",
        "id": "PLUS-abc",
        "protocol_version": "4.0",
        "issue": "VPD-2026/001",
        "purpose": "Izvērtēšanas ziņojums <&>",
        "legal_basis": "Valsts probācijas dienesta likums",
    }
    return viss_header(**{**values, **changes})  # type: ignore[arg-type]


def test_header_round_trip(schemas: SchemaRegistry) -> None:
    header = _header()
    raw = build_envelope(b"<x:Body xmlns:x='urn:x'/>", header.serialize())
    envelope = parse_envelope(raw, XmlLimits())
    assert read_header(envelope.header, VISS_HEADER, schemas) == header


def test_header_blocks_are_validated(schemas: SchemaRegistry) -> None:
    raw = build_envelope(b"<x:Body xmlns:x='urn:x'/>", _header(id="has space").serialize())
    with pytest.raises(SchemaValidationError):
        read_header(parse_envelope(raw, XmlLimits()).header, VISS_HEADER, schemas)
    header = _header()
    blocks = header.elements()[:-1]  # no legalBasis
    raw = build_envelope(b"<x:Body xmlns:x='urn:x'/>", b"".join(etree.tostring(b) for b in blocks))
    with pytest.raises(SchemaValidationError, match="legalBasis"):
        read_header(parse_envelope(raw, XmlLimits()).header, VISS_HEADER, schemas)
    with pytest.raises(SchemaValidationError):
        read_header(None, VISS_HEADER, schemas)
