"""A delivery's signed receipt, read by PartnerClient.send: only the verifier's output is
read, into the same dict zeep's whole reply processing gave (the dict is the public
``acknowledgement`` of a message), and anything but the operation's receipt is refused.

The partner is mocked at the HTTP layer (``responses``): the client under test is real."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from zeep.helpers import serialize_object

from gateway.errors import GatewayError, PartnerRejectedError, PartnerServerFaultError
from gateway.runtime import Runtime
from gateway.signing import Signer, TrustStore
from gateway.soap.client import PartnerClient
from gateway.soap.envelope import build_ack, build_envelope, build_fault, parse_envelope
from gateway.xml import XmlLimits, parse_xml, serialize
from tests.conftest import SAMPLES, build_settings

OPERATION = "SubmitExecutionNotification"
ECASE = "urn:lv:ecase:plus:v1"


@pytest.fixture
def runtime(tmp_path: Path, keys_dir: Path) -> Iterator[Runtime]:
    rt = Runtime(build_settings(tmp_path, keys_dir))
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def tis(keys_dir: Path) -> Signer:
    return Signer.from_files(keys_dir / "tis-sim-key.pem", keys_dir / "tis-sim-cert.pem")


@pytest.fixture
def trust(keys_dir: Path) -> TrustStore:
    return TrustStore.from_files([keys_dir / "tis-sim-cert.pem"], None)


def _send(client: PartnerClient, body: bytes, trust: TrustStore, status: int = 200) -> Any:
    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, client.endpoint, body=body, status=status)
        return client.send(OPERATION, b"<x/>", message_id="PLUS-1", trust=trust)


def _zeep_reading(client: PartnerClient, trust: TrustStore, receipt: bytes) -> Any:
    """What zeep's whole reply processing makes of the verified receipt (the former path)."""
    signed = trust.verify(parse_envelope(receipt, XmlLimits()).body)
    response = requests.Response()
    response.status_code = 200
    response.encoding = "utf-8"
    response._content = build_envelope(serialize(signed, declaration=False))
    op = client.binding.get(OPERATION)
    return serialize_object(client.binding.process_reply(client.client, op, response), dict)


def test_a_signed_receipt_reads_as_zeep_read_it(
    runtime: Runtime, tis: Signer, trust: TrustStore
) -> None:
    client = runtime.channels.client_for("tis")
    receipt = build_ack(
        ECASE, message_id="PLUS-1", status="ACCEPTED", reference="TIS-9", signer=tis
    )
    got = _send(client, receipt, trust)
    assert got == _zeep_reading(client, trust, receipt)
    assert got["MessageId"] == "PLUS-1" and got["Status"] == "ACCEPTED"
    assert got["Reference"] == "TIS-9" and got["_value_1"] is None
    assert isinstance(got["ReceivedAt"], datetime) and got["ReceivedAt"].tzinfo is not None


def test_a_signed_element_that_is_not_the_receipt_is_refused(
    runtime: Runtime, tis: Signer, trust: TrustStore
) -> None:
    client = runtime.channels.client_for("tis")
    ruling = parse_xml((SAMPLES / "court_ruling" / "valid.xml").read_bytes())
    signed = serialize(tis.sign(ruling), declaration=False)
    with pytest.raises(PartnerRejectedError, match="not the operation's receipt"):
        _send(client, build_envelope(signed), trust)


def test_an_unsigned_or_foreign_receipt_is_refused(
    runtime: Runtime, gateway_signer: Signer, trust: TrustStore
) -> None:
    client = runtime.channels.client_for("tis")
    unsigned = build_ack(ECASE, message_id="PLUS-1", status="ACCEPTED", reference="TIS-9")
    with pytest.raises(PartnerRejectedError, match="does not verify"):
        _send(client, unsigned, trust)
    foreign = build_ack(
        ECASE, message_id="PLUS-1", status="ACCEPTED", reference="TIS-9", signer=gateway_signer
    )
    with pytest.raises(PartnerRejectedError, match="does not verify"):
        _send(client, foreign, trust)


def test_faults_are_still_decoded(runtime: Runtime, trust: TrustStore) -> None:
    client = runtime.channels.client_for("tis")
    server = build_fault(GatewayError("busy"))
    with pytest.raises((PartnerServerFaultError, PartnerRejectedError)):
        _send(client, server, trust, status=500)


@pytest.fixture
def gateway_signer(runtime: Runtime) -> Signer:
    return runtime.signer
