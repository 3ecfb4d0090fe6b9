"""XSD error texts reach logs and SOAP faults: the offending values (personal data) are masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import SchemaValidationError
from gateway.xml import SchemaRegistry, parse_xml
from gateway.xml.schemas import mask_xsd_message

XSD = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="Person">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="PersonalCode">
          <xs:simpleType>
            <xs:restriction base="xs:string">
              <xs:pattern value="[0-9]{6}-[0-9]{5}"/>
            </xs:restriction>
          </xs:simpleType>
        </xs:element>
        <xs:element name="BirthDate" type="xs:date"/>
        <xs:element name="FirstName">
          <xs:simpleType>
            <xs:restriction base="xs:string"><xs:enumeration value="A"/></xs:restriction>
          </xs:simpleType>
        </xs:element>
        <xs:element name="Alias" maxOccurs="unbounded">
          <xs:complexType><xs:attribute name="id" type="xs:string"/></xs:complexType>
        </xs:element>
      </xs:sequence>
    </xs:complexType>
    <xs:unique name="alias"><xs:selector xpath="Alias"/><xs:field xpath="@id"/></xs:unique>
  </xs:element>
</xs:schema>"""

# Every value here is invalid for its element, and every one is personal data.
DOC = """<Person><PersonalCode>150390-1234</PersonalCode><BirthDate>1990-13-45</BirthDate>
<FirstName>Jānis</FirstName><Alias id="Ozoliņš"/><Alias id="Ozoliņš"/></Person>"""
VALUES = ("150390-1234", "1990-13-45", "Jānis", "Ozoliņš")


@pytest.fixture
def registry(tmp_path: Path) -> SchemaRegistry:
    (tmp_path / "person.xsd").write_text(XSD, encoding="utf-8")
    registry = SchemaRegistry(tmp_path)
    registry.load("person.xsd")
    return registry


@pytest.mark.parametrize("value", VALUES)
def test_validation_error_carries_no_values(registry: SchemaRegistry, value: str) -> None:
    with pytest.raises(SchemaValidationError) as info:
        registry.validate(parse_xml(DOC.encode()), "person.xsd")
    error = info.value
    assert len(error.details) == 4  # one per invalid value, so each message was masked
    assert value not in error.message
    assert value not in str(error.details)
    assert value not in str(error)


def test_masked_messages_stay_useful(registry: SchemaRegistry) -> None:
    with pytest.raises(SchemaValidationError) as info:
        registry.validate(parse_xml(DOC.encode()), "person.xsd")
    messages = [d["message"] for d in info.value.details]
    assert "[facet 'pattern'] The value '***' is not accepted by the pattern" in messages[0]
    assert "'***' is not a valid value of the atomic type 'xs:date'" in messages[1]
    assert "Element 'FirstName'" in messages[2]
    assert "key-sequence [***]" in messages[3]


@pytest.mark.parametrize(
    "message,hidden",
    [
        ("Element 'u': 'Jā'nis' is not a valid value of the atomic type 'xs:int'.", "nis"),
        ("Element 'n': [facet 'maxInclusive'] The value '150390' is greater than ('3').", "150390"),
        ("Element 'x': The value 'Bērziņš' does not match the fixed value constraint 'A'.", "Bērz"),
        ("Element 'x': some future wording quoting 150390-12345.", "150390-12345"),
    ],
)
def test_mask_xsd_message(message: str, hidden: str) -> None:
    assert hidden not in mask_xsd_message(message)


def test_messages_without_values_are_unchanged() -> None:
    message = "Element 'x': This element is not expected. Expected is ( y )."
    assert mask_xsd_message(message) == message
