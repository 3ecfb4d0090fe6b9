"""Every business message of every institution end to end over real HTTP, through E-case.

Inbound: each institution's simulator signs a sample and sends it through the E-case platform
simulator (or its own direct endpoint); it must land in the inbox marked with its sender.
Outbound: PLUS sends each message type to each institution that receives it; replies name only
the request they answer and must reach the institution that sent it. The receiving simulator
verifies the signature and the header.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from gateway.config import load_settings
from tests.conftest import ROOT, SAMPLES
from tests.integration.conftest import Live

_SETTINGS = load_settings(ROOT / "config.yaml")
SENDS = sorted((i, t) for i, c in _SETTINGS.institutions.items() for t in c.sends)
RECEIVES = sorted((i, t) for i, c in _SETTINGS.institutions.items() for t in c.receives)
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
