"""A simulated institution receives, refuses, answers and builds messages from data alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.signing import Signer, TrustStore
from gateway.sim import InstitutionSim, SimContract

from .helpers import MEMBERS, body_of, fault_code, field, from_gateway, header_id, signer


@pytest.fixture
def tis(settings: Settings, contract: SimContract) -> InstitutionSim:
    return InstitutionSim(settings, "tis", contract)


def test_accepts_once_and_counts_the_duplicate(
    tis: InstitutionSim, contract: SimContract, gateway_signer: Signer
) -> None:
    raw, message_id = from_gateway(
        contract, gateway_signer, to="tis", message_type="execution_notification"
    )
    status, body = tis.receive(raw)
    assert status == 200, body
    ack = body_of(body)
    assert ack.tag == "{urn:lv:ecase:plus:v1}Acknowledgement"
    assert field(ack, "Status") == "ACCEPTED" and field(ack, "MessageId") == message_id
    assert header_id(body) == message_id  # the header blocks are echoed

    status, again = tis.receive(raw)
    assert status == 200 and field(body_of(again), "Status") == "DUPLICATE"
    assert field(body_of(again), "Reference") == field(ack, "Reference")
    snapshot = tis.records.snapshot()
    assert [r["message_id"] for r in snapshot["received"]] == [message_id]
    assert snapshot["duplicates"] == 1
    assert snapshot["received"][0]["deliveries"] == 2
    assert snapshot["received"][0]["user_id"] == "OFFICER-7"


def test_a_type_the_institution_does_not_receive_is_refused(
    settings: Settings, contract: SimContract, gateway_signer: Signer
) -> None:
    ievp = InstitutionSim(settings, "ievp", contract)
    raw, _ = from_gateway(
        contract, gateway_signer, to="ievp", message_type="execution_notification"
    )
    status, body = ievp.receive(raw)
    assert status == 500 and fault_code(body) == "MESSAGE_NOT_ALLOWED"
    assert body_of(body).findtext("faultcode") == "soap:Client"
    snapshot = ievp.records.snapshot()
    assert snapshot["received"] == [] and snapshot["rejected"][0]["code"] == "MESSAGE_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"client": MEMBERS["prois"]}, "ECASE_UNKNOWN_SENDER"),
        ({"to": "prois"}, "ECASE_WRONG_ADDRESSEE"),
        ({"operation": "SubmitEvaluationReport"}, "ECASE_WRONG_ADDRESSEE"),
        ({"header_id": "PLUS-other"}, "HEADER_INVALID"),
    ],
)
def test_header_must_fit_the_gateway_this_institution_and_the_body(
    tis: InstitutionSim,
    contract: SimContract,
    gateway_signer: Signer,
    change: dict[str, str],
    code: str,
) -> None:
    args: dict[str, Any] = {"to": "tis", **change}
    raw, _ = from_gateway(contract, gateway_signer, message_type="execution_notification", **args)
    status, body = tis.receive(raw)
    assert status == 500 and fault_code(body) == code


def test_a_signature_the_institution_does_not_trust_is_refused(
    tis: InstitutionSim, contract: SimContract, keys_dir: Path
) -> None:
    raw, _ = from_gateway(
        contract, signer(keys_dir, "intruder"), to="tis", message_type="execution_notification"
    )
    status, body = tis.receive(raw)
    assert status == 500 and fault_code(body) == "SIG_UNTRUSTED"


@pytest.mark.parametrize("raw", [b"<not-xml", b"<a/>", b"<!DOCTYPE x><x/>"])
def test_garbage_is_a_client_fault(tis: InstitutionSim, raw: bytes) -> None:
    status, body = tis.receive(raw)
    assert status == 500
    assert fault_code(body) in {"XML_MALFORMED", "SOAP_ENVELOPE", "XML_FORBIDDEN"}


def test_query_is_answered_from_the_sample_with_the_request_id(
    tis: InstitutionSim, contract: SimContract, gateway_signer: Signer, keys_dir: Path
) -> None:
    request = contract.mappings.query_request("ruling_state")
    raw, query_id = from_gateway(
        contract, gateway_signer, to="tis", message_type=request.message_type
    )
    status, body = tis.receive(raw)
    assert status == 200, body
    assert header_id(body) == query_id
    answer = TrustStore.from_files([keys_dir / "tis-sim-cert.pem"]).verify(body_of(body))
    mapping = contract.mappings.query_answer("ruling_state")
    contract.schemas.validate(answer, mapping.schema)
    data = mapping.to_canonical(answer)
    asked = contract.sample(request)
    assert data["request_id"] == query_id
    assert data["response_id"].startswith("TIS-")
    assert data["result"] == "FOUND"
    assert data["case_number"] == asked["case_number"]
    assert tis.records.snapshot()["queries"][0]["request_id"] == query_id


def test_query_about_an_unknown_case_is_not_found(
    tis: InstitutionSim, contract: SimContract, gateway_signer: Signer
) -> None:
    request = contract.mappings.query_request("ruling_state")
    canonical = {**contract.sample(request), "case_number": "K99-404-26"}
    raw, _ = from_gateway(
        contract, gateway_signer, to="tis", message_type=request.message_type, canonical=canonical
    )
    status, body = tis.receive(raw)
    assert status == 200, body
    data = contract.mappings.query_answer("ruling_state").to_canonical(body_of(body))
    assert data["result"] == "NOT_FOUND"
    assert data["case_number"] == "K99-404-26"
    assert "state" not in data


def test_a_case_the_institution_sent_is_known(
    tis: InstitutionSim, contract: SimContract, gateway_signer: Signer
) -> None:
    ruling = contract.sample(contract.mapping("court_ruling"))
    ruling["case"]["number"] = "K77-123-26"
    tis.build("court_ruling", canonical=ruling)
    request = contract.mappings.query_request("ruling_state")
    canonical = {**contract.sample(request), "case_number": "K77-123-26"}
    raw, _ = from_gateway(
        contract, gateway_signer, to="tis", message_type=request.message_type, canonical=canonical
    )
    data = contract.mappings.query_answer("ruling_state").to_canonical(body_of(tis.receive(raw)[1]))
    assert data["result"] == "FOUND"


def test_a_query_the_institution_does_not_answer_is_refused(
    settings: Settings, contract: SimContract, gateway_signer: Signer
) -> None:
    ievp = InstitutionSim(settings, "ievp", contract)
    request = contract.mappings.query_request("ruling_state")
    raw, _ = from_gateway(contract, gateway_signer, to="ievp", message_type=request.message_type)
    status, body = ievp.receive(raw)
    assert status == 500 and fault_code(body) == "MESSAGE_NOT_ALLOWED"


def test_build_stamps_a_fresh_id_and_the_header(
    tis: InstitutionSim, contract: SimContract, keys_dir: Path
) -> None:
    mapping, message_id, payload, header = tis.build("court_ruling")
    assert message_id.startswith("TIS-")
    assert header.id == message_id
    assert header.client == tuple(MEMBERS["tis"].split("/"))
    assert header.service == (*contract.gateway_id, mapping.operation, "v1")
    from gateway.xml import parse_xml

    signed = TrustStore.from_files([keys_dir / "tis-sim-cert.pem"]).verify(parse_xml(payload))
    contract.schemas.validate(signed, mapping.schema)
    assert mapping.to_canonical(signed)["message_id"] == message_id


def test_build_keeps_the_sample_id_on_request(tis: InstitutionSim, contract: SimContract) -> None:
    sample = contract.sample(contract.mapping("court_ruling"))
    _, message_id, _, _ = tis.build("court_ruling", keep_id=True)
    assert message_id == sample["message_id"]


def test_build_refuses_a_type_the_institution_does_not_send(tis: InstitutionSim) -> None:
    with pytest.raises(ConfigError):
        tis.build("penal_order")
    with pytest.raises(ConfigError):
        tis.build("execution_notification")  # the gateway's own message
    tis.build("penal_order", any_type=True)  # allowed when a test wants the refusal


def test_each_institution_sends_to_its_channel_endpoint(
    settings: Settings, contract: SimContract
) -> None:
    base = settings.simulators["tis"].gateway_url.rstrip("/")
    assert InstitutionSim(settings, "tis", contract).gateway_endpoint == f"{base}/soap/ecase"
    assert InstitutionSim(settings, "em", contract).gateway_endpoint == f"{base}/soap/em"


def test_an_institution_without_a_simulator_is_a_config_error(settings: Settings) -> None:
    with pytest.raises(ConfigError):
        InstitutionSim(settings, "nobody")
