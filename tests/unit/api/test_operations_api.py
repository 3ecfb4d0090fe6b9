"""Operations over the real app: readiness needs a writable store, no ids for messages that were
never stored, rejected bodies journaled capped, personal data masked in faults and logs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import event, select

from gateway.api import create_app
from gateway.errors import CanonicalInvalidError, SchemaValidationError
from gateway.logging import mask_text
from gateway.runtime import Runtime
from gateway.soap.envelope import build_fault
from gateway.store.schema import journal
from tests.conftest import SAMPLES

PERSONAL_CODE = "041179-19036"
NAME = "Lācis"


def order() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((SAMPLES / "monitoring_order/valid.json").read_text("utf-8"))
    return body


def post(client: TestClient, body: Any, key: str | None = None) -> Any:
    return client.post(
        "/v1/outbound/monitoring_order",
        json=body,
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
    )


@pytest.fixture
def full_disk(runtime: Runtime) -> Iterator[None]:
    """The runtime's SQLite database cannot grow any more: a stand-in for a full disk."""
    engine = runtime.engine
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("VACUUM")  # no free pages left to reuse
        pages = raw.cursor().execute("PRAGMA page_count").fetchone()[0]
    finally:
        raw.close()

    def limit(dbapi: Any, _record: Any) -> None:
        dbapi.execute(f"PRAGMA max_page_count={pages}")

    event.listen(engine, "connect", limit)
    engine.dispose()
    yield
    event.remove(engine, "connect", limit)
    engine.dispose()


def test_ready_is_503_when_the_store_cannot_write(runtime: Runtime, full_disk: None) -> None:
    client = TestClient(create_app(runtime))
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["store"] == "cannot write: database or disk is full"


def test_ready_is_200_with_a_writable_store(runtime: Runtime) -> None:
    ready = TestClient(create_app(runtime)).get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["store"] == "ok"


def test_503_for_an_unstored_message_carries_no_message_id(
    runtime: Runtime, full_disk: None
) -> None:
    client = TestClient(create_app(runtime))
    refused = post(client, order())
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "STORE_UNAVAILABLE" and "message_id" not in error
    with runtime.engine.connect() as conn:
        assert conn.execute(select(journal.c.id)).first() is None  # indeed nothing stored


def test_422_carries_no_message_id_but_a_conflict_names_the_stored_one(
    runtime: Runtime,
) -> None:
    client = TestClient(create_app(runtime))
    bad = order()
    bad["person"]["personal_code"] = "not-a-code"
    refused = post(client, bad)
    assert refused.status_code == 422 and "message_id" not in refused.json()["error"]
    first = post(client, order(), key="same-key")
    assert first.status_code == 202, first.text
    other = order()
    other["vpd_case_id"] = "VPD-OTHER"
    conflict = post(client, other, key="same-key")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["message_id"] == first.json()["id"]


def test_rejected_inbound_body_is_journaled_capped(runtime: Runtime) -> None:
    client = TestClient(create_app(runtime))
    endpoint = next(iter(runtime.wsdl_documents))
    junk = b"<junk>" + b"A" * 200_000
    r = client.post(f"/soap/{endpoint}", content=junk, headers={"Content-Type": "text/xml"})
    assert r.status_code == 500
    with runtime.engine.connect() as conn:
        row = conn.execute(select(journal).where(journal.c.status == "rejected")).one()
    limit = runtime.settings.journal.rejected_prefix_bytes
    assert row.payload == junk[:limit] and row.received_size == len(junk)
    assert runtime.store.journal.verify().ok


# -- masking ----------------------------------------------------------------------------------


def test_fault_for_invalid_canonical_json_holds_no_personal_data(runtime: Runtime) -> None:
    bad = order()
    bad["person"]["last_name"] = NAME * 40  # too long
    bad["person"]["personal_code"] = PERSONAL_CODE + "9"  # pattern
    with pytest.raises(CanonicalInvalidError) as caught:
        runtime.mappings.get("monitoring_order").validate_canonical(bad)
    fault = build_fault(caught.value).decode()
    assert NAME not in fault and PERSONAL_CODE not in fault


_XSD = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="P"><xs:complexType><xs:sequence>
    <xs:element name="Code"><xs:simpleType><xs:restriction base="xs:string">
      <xs:pattern value="[0-9]{6}-[0-9]{5}"/></xs:restriction></xs:simpleType></xs:element>
    <xs:element name="LastName"><xs:simpleType><xs:restriction base="xs:string">
      <xs:maxLength value="5"/></xs:restriction></xs:simpleType></xs:element>
    <xs:element name="BirthDate" type="xs:date"/>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>"""


def test_mask_text_hides_values_in_real_xsd_messages() -> None:
    schema = etree.XMLSchema(etree.fromstring(_XSD))
    for doc in (
        f"<P><Code>{PERSONAL_CODE}9</Code><LastName>a</LastName><BirthDate>1979-11-04</BirthDate></P>",
        f"<P><Code>{PERSONAL_CODE}</Code><LastName>{NAME}s</LastName>"
        "<BirthDate>1979-11-04</BirthDate></P>",
        f"<P><Code>{PERSONAL_CODE}</Code><LastName>a</LastName><BirthDate>1979-13-04</BirthDate></P>",
    ):
        assert not schema.validate(etree.fromstring(doc.encode()))
        message = schema.error_log[0].message
        masked = mask_text(message)
        for secret in (PERSONAL_CODE, NAME, "1979-13-04"):
            assert secret not in masked, masked
        assert "Element '" in masked  # what is wrong stays readable


def test_mask_text_hides_values_in_real_json_schema_messages() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 3},
            "born": {"type": "string", "format": "date"},
            "kind": {"enum": ["a", "b"]},
        },
        "required": ["name", "born", "kind", "other"],
    }
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = validator.iter_errors({"name": "O'Brien", "born": "1979-13-04", "kind": "Anna"})
    messages = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    assert len(messages) == 4
    masked = " | ".join(mask_text(m) for m in messages)
    for secret in ("Brien", "1979-13-04", "Anna"):
        assert secret not in masked, masked
    assert "'other' is a required property" in masked  # property names are not data


def test_mask_text_leaves_ordinary_messages_alone() -> None:
    for text in (
        "Uvicorn running on http://127.0.0.1:8080 (Press CTRL+C to quit)",
        "partners.tis: partner is not configured",
        "Element '{urn:x}Foo': This element is not expected. Expected is ( {urn:x}Bar ).",
    ):
        assert mask_text(text) == text


def test_partner_error_texts_are_stored_masked(runtime: Runtime) -> None:
    client = TestClient(create_app(runtime))
    accepted = post(client, order())
    assert accepted.status_code == 202, accepted.text
    store = runtime.store
    [row] = store.outbox.claim_due("w", 1, 60)
    store.outbox.mark_failed(
        row,
        owner="w",
        code="PARTNER_REJECTED",
        error=f"Element 'LastName': [facet 'maxLength'] The value '{NAME}' has a length of '5'"
        f"; person {PERSONAL_CODE}",
        next_attempt_at=None,
    )
    stored = store.outbox.get(row["message_id"])
    assert stored is not None
    text = stored["last_error"] + json.dumps(
        store.journal.for_message(row["message_id"]), default=str
    )
    assert NAME not in text and PERSONAL_CODE not in text


def test_schema_validation_error_from_the_registry_is_masked_in_faults(runtime: Runtime) -> None:
    # The XML validation path of the gateway's own schema registry, end to end into a fault.
    mapping = runtime.mappings.get("monitoring_order")
    bad = order()
    bad["person"]["first_name"] = "Edgars" * 30
    element = mapping.to_xml(bad) if hasattr(mapping, "to_xml") else None
    if element is None:
        pytest.skip("mapping has no to_xml in this tree")
    with pytest.raises(SchemaValidationError) as caught:
        runtime.schemas.validate(element, mapping.schema)
    assert "Edgars" * 30 not in build_fault(caught.value).decode()
