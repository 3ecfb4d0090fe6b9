"""Every business message of every institution end to end over real HTTP, through E-case.

Inbound: each institution's simulator signs a sample and sends it through the E-case platform
simulator (or its own direct endpoint); it must land in the inbox marked with its sender.
Outbound: PLUS sends each message type to each institution that receives it; replies name only
the request they answer and must reach the institution that sent it. The receiving simulator
verifies the signature and the header.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from gateway.config import load_settings
from tests.conftest import ROOT, SAMPLES, free_port
from tests.integration.conftest import Live, running, serve_in_thread

_SETTINGS = load_settings(ROOT / "config.yaml")
#: An e-service request needs the platform's signed identity assertion for its own id, and an
#: answer a stored request: both end to end in tests/integration/test_eservices.py.
_OWN_TESTS = {"eservice_request", "eservice_answer"}
SENDS = sorted(
    (i, t) for i, c in _SETTINGS.institutions.items() for t in c.sends if t not in _OWN_TESTS
)
RECEIVES = sorted(
    (i, t) for i, c in _SETTINGS.institutions.items() for t in c.receives if t not in _OWN_TESTS
)
VOLATILE = ("message_id", "sent_at")


@pytest.fixture
def live(shared_live: Live) -> Live:
    """One gateway for the module: each test sends its own fresh ids and only adds."""
    return shared_live


def sample(message_type: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (SAMPLES / message_type / "valid.json").read_text(encoding="utf-8")
    )
    return data


def inbox_item(live: Live, partner_message_id: str) -> dict[str, Any]:
    page = live.http.get(f"{live.gateway}/v1/inbox", params={"limit": 500}).json()
    [item] = [i for i in page["items"] if i["partner_message_id"] == partner_message_id]
    return item


@pytest.mark.parametrize(("institution", "message_type"), SENDS)
def test_institution_message_reaches_the_inbox(
    live: Live, institution: str, message_type: str
) -> None:
    ack = live.sim(institution).send(message_type)
    assert ack["Status"] == "ACCEPTED"
    item = inbox_item(live, ack["MessageId"])
    assert item["id"] == ack["Reference"]
    assert (item["institution"], item["message_type"]) == (institution, message_type)
    expected, got = sample(message_type), dict(item["message"])
    for volatile in VOLATILE:
        expected.pop(volatile, None)
        got.pop(volatile, None)
    assert got == expected


def _request_for(live: Live, institution: str, message_type: str) -> dict[str, Any]:
    """PLUS's outbound body; a reply first gets its request sent by ``institution``."""
    body = sample(message_type)
    mapping = live.runtime.mappings.get(message_type)
    reply_to = mapping.routing.reply_to if mapping.routing else None
    if reply_to is not None:
        sent = {t for t in reply_to.types if t in live.settings.institutions[institution].sends}
        ack = live.sim(institution).send(sorted(sent)[0])
        body[reply_to.field] = ack["MessageId"]
    for rule in mapping.routing.rules if mapping.routing else ():
        # Keep the sample's content consistent with the addressee under test.
        if institution not in rule.institutions:
            value = live.runtime.mappings.get(message_type).get_path(body, rule.field)
            assert value not in rule.values, f"sample {message_type} is not for {institution}"
    return body


@pytest.mark.parametrize(("institution", "message_type"), RECEIVES)
def test_plus_message_is_routed_signed_and_delivered(
    live: Live, institution: str, message_type: str
) -> None:
    body = _request_for(live, institution, message_type)
    r = live.http.post(
        f"{live.gateway}/v1/outbound/{message_type}",
        json=body,
        headers={"Idempotency-Key": str(uuid.uuid4()), "X-User-Id": "officer-7"},
    )
    assert r.status_code == 202, r.text
    accepted = r.json()
    # replies name only the request; the gateway found the addressee
    assert accepted["institution"] == institution
    status = live.wait_for(accepted["id"])
    assert status["acknowledgement"]["Status"] == "ACCEPTED"
    [got] = [x for x in live.sim(institution).records.received() if x.message_id == accepted["id"]]
    # The simulator records only what verified against the gateway's certificate.
    assert got.message_type == message_type
    assert got.user_id == "officer-7"


def test_a_reply_to_an_unknown_request_is_a_422_naming_the_field(live: Live) -> None:
    body = {**sample("evaluation_report"), "request_message_id": "NEVER-SENT-1"}
    r = live.http.post(
        f"{live.gateway}/v1/outbound/evaluation_report",
        json=body,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "REPLY_UNKNOWN_REQUEST"
    assert error["details"][0]["path"] == "request_message_id"


def test_an_addressee_contradicting_the_request_is_a_422(live: Live) -> None:
    ack = live.sim("ievp").send("evaluation_report_request")
    body = {**sample("evaluation_report"), "request_message_id": ack["MessageId"]}
    r = live.http.post(
        f"{live.gateway}/v1/outbound/evaluation_report",
        json={**body, "addressee": "prois"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "ADDRESSEE_INCONSISTENT"
    assert r.json()["error"]["details"][0]["path"] == "addressee"


def test_queries_on_request_are_answered_and_audited(live: Live) -> None:
    for query, institution in (("ruling_state", "tis"), ("release_date", None)):
        request = sample(f"{query}_query")
        for volatile in VOLATILE:
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
        answer = r.json()
        assert answer["status"] in ("ok", "not_found")
        assert answer["data"]["request_id"] == answer["query_id"]
        code = request.get("personal_code") or request["person"]["personal_code"]
        audit = live.http.get(
            f"{live.gateway}/v1/audit/queries", params={"personal_code": code}
        ).json()
        assert any(a["query_id"] == answer["query_id"] for a in audit["items"])


def test_zeep_builds_a_client_from_the_gateways_served_wsdl_and_calls_it(live: Live) -> None:
    """The served WSDL is usable as served: its schema imports resolve over HTTP, and a zeep
    client calls an operation with the five header blocks. Its payload is unsigned (zeep builds
    it from Python objects), so the gateway answers SIG_MISSING: past the header checks."""
    import requests
    import zeep
    from zeep.transports import Transport

    # A partner's client: it fetches /xsd/... imports, which our own hardened settings refuse.
    settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True)
    client = zeep.Client(
        f"{live.gateway}/soap/ecase?wsdl",
        transport=Transport(session=requests.Session(), timeout=5, operation_timeout=5),
        settings=settings,
    )
    service = client.bind(live.settings.ecase.inbound_service, live.settings.ecase.inbound_port)
    tis = live.settings.institutions["tis"].member.split("/")
    plus = live.settings.ecase.client_id.split("/")
    parts = ("instance", "memberClass", "memberCode", "subsystemCode")
    # The header parts as the WSDL declares them (soap:header on every input).
    headers = {
        "client": dict(zip(parts, tis, strict=True)),
        "service": {
            **dict(zip(parts, plus, strict=True)),
            "serviceCode": "SubmitMediationProposal",
            "serviceVersion": live.settings.ecase.service_version,
        },
        "userId": "TIS-USER",
        "id": "TIS-ZEEP-1",
        "protocolVersion": "4.0",
    }
    body = sample("mediation_proposal")
    body["message_id"] = "TIS-ZEEP-1"
    mapping = live.runtime.mappings.get("mediation_proposal")
    # zeep reads our XML with the types it loaded from the served schemas, and sends it back.
    typed = client.get_element(mapping.root).parse(mapping.to_xml(body), client.wsdl.types)
    fields = zeep.helpers.serialize_object(typed, dict)
    with pytest.raises(zeep.exceptions.Fault) as caught:
        service.SubmitMediationProposal(_soapheaders=headers, **fields)
    detail = caught.value.detail
    assert detail is not None
    assert detail.findtext(".//{*}Code") == "SIG_MISSING"


def test_a_monitoring_violation_is_pushed_at_once_and_its_age_measured(
    make_settings: Any,
) -> None:
    """EM is a direct institution; a violation wakes the push to PLUS's webhook."""
    got: list[dict[str, Any]] = []
    lock = threading.Lock()
    hook = FastAPI()

    @hook.post("/hook")
    async def receive(request: Request) -> Response:
        with lock:
            got.append(await request.json())
        return Response(status_code=204)

    port = free_port()
    # A long poll interval: only the urgent wake-up can make the push fast.
    settings = make_settings(
        push={"url": f"http://127.0.0.1:{port}/hook"}, delivery={"poll_interval": 30}
    )
    receiver = serve_in_thread(hook, port)
    try:
        with running(settings, seed=False) as live:
            time.sleep(0.5)  # the worker's first cycle is done; it now sleeps for 30 s
            violation = sample("monitoring_event")
            violation["event_kind"] = "zone_violation"
            ack = live.sim("em").send("monitoring_event", canonical=violation)
            deadline = time.monotonic() + 10
            while not got and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [g["partner_message_id"] for g in got] == [ack["MessageId"]]
            assert got[0]["institution"] == "em"
            # The webhook has answered; the push is recorded (and measured) right after.
            wanted = (
                'plusgw_push_age_seconds_count{message_type="monitoring_event",urgent="true"} 1.0'
            )
            metrics = ""
            while wanted not in metrics and time.monotonic() < deadline:
                metrics = live.http.get(f"{live.gateway}/metrics").text
                time.sleep(0.05)
            assert wanted in metrics
    finally:
        receiver.should_exit = True
