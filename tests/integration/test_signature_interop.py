"""libxmlsec1 against the gateway on the wire, both ways (docs/SIGNATURE-PROFILE.md).

The simulators' HTTP servers are wrapped to record every request and response body exactly as
it crossed the loopback socket. ``xmlsec1 --verify`` (the command line, pinned certificate,
``--id-attr:Id``) then checks, in place and byte for byte as captured:

* every message type the gateway delivers, to every institution that receives it, and each
  institution's signed acknowledgement of it;
* the gateway's query requests and the institutions' signed answers;
* the gateway's own acknowledgements and faults (signed receipts), as answered over HTTP.

The other way: the gateway accepts a message that ``xmlsec1 --sign`` signed in place inside a
SOAP envelope from a template with ``Reference URI="#p1"``, and one signed by the zeep plugin
of docs/SIGNATURE-PROFILE.md (that code is run from the document itself).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod

import tests.integration.conftest as harness
from gateway.ns import COMMON, ECASE
from gateway.signing import TrustStore
from gateway.signing.keys import load_private_key
from gateway.soap.envelope import build_envelope, parse_envelope
from gateway.xml import XmlLimits, parse_xml, serialize
from tests.conftest import ROOT, build_settings
from tests.integration.conftest import Live
from tests.integration.test_ecase_end_to_end import RECEIVES, _request_for, sample
from tests.unit.signing import xmlsec1

ACK = f"{{{ECASE}}}Acknowledgement"
ERROR_DETAIL = f"{{{COMMON}}}ErrorDetail"
DOC = ROOT / "docs" / "SIGNATURE-PROFILE.md"

ASGI = Callable[..., Awaitable[None]]


@dataclass
class Wire:
    """What the simulators' servers received and answered, as bytes on the socket."""

    exchanges: list[tuple[bytes, bytes]] = field(default_factory=list)

    def find(self, marker: bytes) -> tuple[bytes, bytes]:
        found = [(req, resp) for req, resp in self.exchanges if marker in req]
        assert len(found) == 1, f"{len(found)} captured requests hold {marker!r}"
        return found[0]


def capturing(app: ASGI, wire: Wire) -> ASGI:
    """ASGI middleware recording each POST's body and its response body."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        request: list[bytes] = []
        response: list[bytes] = []

        async def receive_and_keep() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                request.append(message.get("body", b""))
            return message

        async def send_and_keep(message: Any) -> None:
            if message["type"] == "http.response.body":
                response.append(message.get("body", b""))
            await send(message)

        await app(scope, receive_and_keep, send_and_keep)
        wire.exchanges.append((b"".join(request), b"".join(response)))

    return wrapped


@dataclass
class WireLive:
    live: Live
    wire: Wire
    keys: Path
    tmp: Path

    def file(self, data: bytes, name: str = "message") -> Path:
        path = self.tmp / f"{name}-{uuid.uuid4().hex[:8]}.xml"
        path.write_bytes(data)
        return path


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[WireLive]:
    """The gateway and simulators of the harness, the simulators' servers recording."""
    xmlsec1.xmlsec1()  # skip (locally) or fail (CI) before starting anything
    wire = Wire()
    tmp = tmp_path_factory.mktemp("wire")
    settings = build_settings(tmp, keys_dir)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("create_platform_app", "create_institution_app"):
            real = getattr(harness, name)
            patch.setattr(harness, name, lambda sim, real=real: capturing(real(sim), wire))
        with harness.running(settings) as live:
            yield WireLive(live, wire, keys_dir, tmp)


def verify_with_xmlsec1(w: WireLive, data: bytes, cert: str, element: str) -> None:
    done = xmlsec1.verify(w.file(data), w.keys / f"{cert}-cert.pem", element)
    assert done.returncode == 0, f"xmlsec1 refused {element}: {done.stderr}"
    # Not vacuous: the same bytes with another key fail.
    other = "intruder"
    assert xmlsec1.verify(w.file(data), w.keys / f"{other}-cert.pem", element).returncode != 0


def body_tag(raw: bytes) -> str:
    return str(parse_envelope(raw, XmlLimits()).body.tag)


# -- gateway -> institutions ---------------------------------------------------------------


@pytest.mark.parametrize(("institution", "message_type"), RECEIVES)
def test_xmlsec1_verifies_each_delivery_and_its_receipt_as_captured(
    wired: WireLive, institution: str, message_type: str
) -> None:
    live = wired.live
    body = _request_for(live, institution, message_type)
    r = live.http.post(
        f"{live.gateway}/v1/outbound/{message_type}",
        json=body,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 202, r.text
    message_id = r.json()["id"]
    live.wait_for(message_id)
    request, receipt = wired.wire.find(f">{message_id}<".encode())

    # The stored signed payload went out byte for byte, inside the envelope.
    stored = live.runtime.store.outbox.payload(message_id)
    assert stored is not None and stored in request
    root = live.runtime.mappings.get(message_type).root
    assert body_tag(request) == root
    verify_with_xmlsec1(wired, request, "gateway", root)
    # The institution's acknowledgement, relayed by the platform, is a signed receipt.
    assert body_tag(receipt) == ACK
    verify_with_xmlsec1(wired, receipt, f"{institution}-sim", ACK)


@pytest.mark.parametrize(
    ("query", "institution"), [("ruling_state", "tis"), ("release_date", "ievp")]
)
def test_xmlsec1_verifies_query_requests_and_answers_as_captured(
    wired: WireLive, query: str, institution: str
) -> None:
    live = wired.live
    request = sample(f"{query}_query")
    for volatile in ("message_id", "sent_at"):
        request.pop(volatile, None)
    r = live.http.post(
        f"{live.gateway}/v1/queries/{query}",
        json={
            "institution": institution,
            "purpose": "Uzraudzības plāna sagatavošana",
            "officer_id": "officer-7",
            "case_id": "VPD-2026/0042",
            "query": request,
        },
    )
    assert r.status_code == 200, r.text
    query_id = r.json()["query_id"]
    sent, answer = wired.wire.find(f">{query_id}<".encode())
    verify_with_xmlsec1(wired, sent, "gateway", live.runtime.queries.requests[query].root)
    verify_with_xmlsec1(
        wired, answer, f"{institution}-sim", live.runtime.queries.answers[query].root
    )


# -- institutions -> gateway: receipts -----------------------------------------------------


def post_soap(live: Live, raw: bytes, operation: str) -> Any:
    return live.http.post(
        f"{live.gateway}/soap/ecase",
        content=raw,
        headers={
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{ECASE}/{operation}"',
        },
    )


def test_xmlsec1_verifies_the_gateways_acknowledgement_and_fault_as_answered(
    wired: WireLive,
) -> None:
    live = wired.live
    mapping, message_id, payload, header = live.sim("tis").build("court_ruling")
    r = post_soap(live, build_envelope(payload, header.serialize()), mapping.operation)
    assert r.status_code == 200, r.text
    assert body_tag(r.content) == ACK
    verify_with_xmlsec1(wired, r.content, "gateway", ACK)
    gateway = TrustStore.from_files([wired.keys / "gateway-cert.pem"])
    ack = gateway.verify(parse_envelope(r.content, XmlLimits()).body)
    assert ack.findtext(f"{{{ECASE}}}MessageId") == message_id

    # A refusal is a signed receipt too: its ErrorDetail.
    altered = payload.replace(message_id.encode(), message_id.encode()[:-1] + b"X", 1)
    header = header.replace_id(message_id[:-1] + "X")
    r = post_soap(live, build_envelope(altered, header.serialize()), mapping.operation)
    assert r.status_code == 500
    verify_with_xmlsec1(wired, r.content, "gateway", ERROR_DETAIL)
    detail = parse_xml(r.content).find(f".//{ERROR_DETAIL}")
    assert gateway.verify(detail).findtext(f"{{{COMMON}}}Code") == "SIG_INVALID"


# -- institutions -> gateway: signed by others ---------------------------------------------


def _unsigned_with_id(w: WireLive, message_type: str, ref_id: str) -> tuple[Any, str, bytes, Any]:
    """An institution's message built from its sample, unsigned, its payload with ``Id``."""
    sim = w.live.sim("tis")
    mapping = w.live.runtime.mappings.get(message_type)
    data = sample(message_type)
    message_id = f"TIS-{uuid.uuid4()}"
    data[mapping.partner_message_id] = message_id
    document = mapping.to_xml(data)
    document.set("Id", ref_id)
    return (
        mapping,
        message_id,
        serialize(document, declaration=False),
        sim.header_for(mapping.operation, message_id),
    )


def test_gateway_accepts_a_message_xmlsec1_signed_in_place(wired: WireLive) -> None:
    live = wired.live
    mapping, message_id, payload, header = _unsigned_with_id(wired, "court_ruling", "p1")
    template = xmlsec1.signature_template("#p1").encode()
    closing = f"</{payload.decode().split()[0][1:]}>".encode()
    assert payload.endswith(closing)
    payload = payload[: -len(closing)] + template + closing
    path = wired.file(build_envelope(payload, header.serialize()), "template")
    signed = xmlsec1.sign(
        path, wired.keys / "tis-sim-key.pem", wired.keys / "tis-sim-cert.pem", mapping.root
    )
    assert b'Reference URI="#p1"' in signed and signed.count(b'Id="p1"') == 1

    r = post_soap(live, signed, mapping.operation)
    assert r.status_code == 200, r.text
    ack = parse_envelope(r.content, XmlLimits()).body
    assert ack.findtext(f"{{{ECASE}}}Status") == "ACCEPTED"
    assert ack.findtext(f"{{{ECASE}}}MessageId") == message_id
    page = live.http.get(f"{live.gateway}/v1/inbox", params={"limit": 500}).json()
    assert [i["institution"] for i in page["items"] if i["partner_message_id"] == message_id] == [
        "tis"
    ]


def fault_code(r: Any) -> tuple[str, str]:
    assert r.status_code == 500, r.text
    detail = parse_xml(r.content).find(f".//{ERROR_DETAIL}")
    return str(detail.findtext(f"{{{COMMON}}}Code")), str(detail.findtext(f"{{{COMMON}}}Message"))


def test_gateway_refuses_empty_uri_and_duplicate_ids_over_http(wired: WireLive) -> None:
    live = wired.live
    mapping, _, payload, header = _unsigned_with_id(wired, "court_ruling", "p1")
    # The earlier profile: URI="" over the payload on its own.
    document = parse_xml(payload)
    del document.attrib["Id"]
    legacy = XMLSigner(
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
    ).sign(
        document,
        key=load_private_key(wired.keys / "tis-sim-key.pem"),
        cert=(wired.keys / "tis-sim-cert.pem").read_text(),
    )
    r = post_soap(
        live,
        build_envelope(serialize(legacy, declaration=False), header.serialize()),
        mapping.operation,
    )
    code, message = fault_code(r)
    assert code == "SIG_INVALID"
    assert 'URI="" means the whole envelope' in message and 'URI="#<Id>"' in message

    # A correctly signed message whose Id a header block carries too.
    _, _, signed, header = live.sim("tis").build("court_ruling")
    ref_id = parse_xml(signed).get("Id")
    # (an extra header block: the E-case blocks themselves admit no attribute)
    blocks = header.serialize() + f'<x:Trace xmlns:x="urn:trace" Id="{ref_id}"/>'.encode()
    assert ref_id.encode() in blocks
    r = post_soap(live, build_envelope(signed, blocks), mapping.operation)
    code, message = fault_code(r)
    assert code == "SIG_INVALID"
    assert "2 elements in the message carry the Id" in message


# -- the zeep plugin of the partner document -----------------------------------------------


def doc_snippet(marker: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- test: {marker} -->\s*```python\n(.*?)```", text, re.S)
    assert found, f"no snippet {marker} in {DOC.name}"
    return found.group(1)


def test_the_documented_zeep_plugin_signs_and_verifies_against_the_gateway(
    wired: WireLive,
) -> None:
    import requests
    import zeep
    from zeep.transports import Transport

    namespace: dict[str, Any] = {}
    exec(compile(doc_snippet("zeep-plugin"), str(DOC), "exec"), namespace)
    keys = wired.keys
    plugin = namespace["PlusSignature"](
        str(keys / "tis-sim-key.pem"),
        str(keys / "tis-sim-cert.pem"),
        str(keys / "gateway-cert.pem"),
    )
    live = wired.live
    client = zeep.Client(
        f"{live.gateway}/soap/ecase?wsdl",
        transport=Transport(session=requests.Session(), timeout=5, operation_timeout=5),
        settings=zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True),
        plugins=[plugin],
    )
    service = client.bind(live.settings.ecase.inbound_service, live.settings.ecase.inbound_port)
    tis = live.settings.institutions["tis"].member.split("/")
    plus = live.settings.ecase.client_id.split("/")
    parts = ("instance", "memberClass", "memberCode", "subsystemCode")
    message_id = f"TIS-ZEEP-{uuid.uuid4()}"
    headers = {
        "client": dict(zip(parts, tis, strict=True)),
        "service": {
            **dict(zip(parts, plus, strict=True)),
            "serviceCode": "SubmitMediationProposal",
            "serviceVersion": live.settings.ecase.service_version,
        },
        "userId": "TIS-USER",
        "id": message_id,
        "protocolVersion": "4.0",
    }
    body = sample("mediation_proposal")
    body["message_id"] = message_id
    mapping = live.runtime.mappings.get("mediation_proposal")
    typed = client.get_element(mapping.root).parse(mapping.to_xml(body), client.wsdl.types)
    fields = zeep.helpers.serialize_object(typed, dict)
    ack = service.SubmitMediationProposal(_soapheaders=headers, **fields)
    assert ack["Status"] == "ACCEPTED" and ack["MessageId"] == message_id

    # The plugin refuses a receipt that is not the gateway's: a refusal signed by another key.
    plugin.gateway = namespace["xmlsec"].Key.from_file(
        str(keys / "intruder-cert.pem"), namespace["C"].KeyDataFormatCertPem
    )
    with pytest.raises(namespace["xmlsec"].Error):
        service.SubmitMediationProposal(_soapheaders=headers, **fields)


def test_an_unsigned_receipt_is_not_a_delivery(wired: WireLive) -> None:
    """The delivery worker verifies the institution's acknowledgement before it believes it."""
    live = wired.live
    live.http.put(f"{live.sim_url}/sim/ecase/faults/tis", json={"mode": "unsigned_ack", "count": 1})
    body = _request_for(live, "tis", "execution_notification")
    r = live.http.post(
        f"{live.gateway}/v1/outbound/execution_notification",
        json=body,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 202, r.text
    status = live.wait_for(r.json()["id"], "dead")
    assert status["last_error"]["code"] == "PARTNER_REJECTED"
    assert "does not verify" in status["last_error"]["message"]
    assert "SIG_MISSING" in status["last_error"]["message"]
