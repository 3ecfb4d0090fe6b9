"""Every TIS operation end to end over real HTTP, signatures verified on the receiving side."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import zeep

from tests.conftest import SAMPLES
from tests.integration.conftest import Live

INBOUND = {
    "SubmitCourtRuling": "court_ruling",
    "SubmitMediationProposal": "mediation_proposal",
    "SubmitEvaluationReportRequest": "evaluation_report_request",
}
OUTBOUND = ["execution_notification", "evaluation_report", "evaluation_report_supplement"]


def sample_json(folder: str) -> dict:
    return json.loads((SAMPLES / "tis" / folder / "valid.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("operation", sorted(INBOUND))
def test_partner_message_reaches_the_inbox(live: Live, operation: str) -> None:
    ack = live.sim.send(operation)
    assert ack["Status"] == "ACCEPTED"
    page = live.http.get(f"{live.gateway}/v1/inbox").json()
    [item] = [i for i in page["items"] if i["partner_message_id"] == ack["MessageId"]]
    assert item["id"] == ack["Reference"]
    assert item["message_type"] == f"tis.{INBOUND[operation]}"
    # the canonical form is what the sample says, apart from the id and time the sim stamped
    expected = sample_json(INBOUND[operation])
    got = item["message"]
    for volatile in ("message_id", "sent_at"):
        expected.pop(volatile, None)
        got.pop(volatile, None)
    assert got == expected
    # ack removes it from the default view, idempotently
    assert live.http.post(f"{live.gateway}/v1/inbox/{item['id']}/ack").status_code == 200
    assert live.http.post(f"{live.gateway}/v1/inbox/{item['id']}/ack").status_code == 200
    page = live.http.get(f"{live.gateway}/v1/inbox").json()
    assert item["id"] not in [i["id"] for i in page["items"]]


def test_resent_partner_message_is_a_duplicate(live: Live) -> None:
    sample = SAMPLES / "tis" / "court_ruling" / "valid.xml"
    first = live.sim.send("SubmitCourtRuling", sample, keep_id=True)
    second = live.sim.send("SubmitCourtRuling", sample, keep_id=True)
    assert (first["Status"], second["Status"]) == ("ACCEPTED", "DUPLICATE")
    assert first["Reference"] == second["Reference"]
    page = live.http.get(f"{live.gateway}/v1/inbox", params={"include_acked": True}).json()
    assert sum(1 for i in page["items"] if i["partner_message_id"] == first["MessageId"]) == 1


@pytest.mark.parametrize("folder", OUTBOUND)
def test_plus_message_is_signed_and_delivered(live: Live, folder: str) -> None:
    body = sample_json(folder)
    response = live.http.post(
        f"{live.gateway}/v1/outbound/tis.{folder}",
        json=body,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    message_id = response.json()["id"]
    status = live.wait_for(message_id)
    assert status["attempts"] == 1
    assert status["acknowledgement"]["MessageId"] == message_id
    assert status["acknowledgement"]["Status"] == "ACCEPTED"
    received = live.http.get(f"{live.sim_url}/sim/tis/received/{message_id}").json()
    assert received["signature_verified"] is True
    assert received["message_type"] == f"tis.{folder}"
    canonical = received["canonical"]
    assert canonical["message_id"] == message_id  # the wire id is the gateway's id
    for volatile in ("message_id", "sent_at"):
        body.pop(volatile, None)
        canonical.pop(volatile, None)
    assert canonical == body


def test_served_wsdl_has_real_address_and_loads_in_zeep(live: Live) -> None:
    url = f"{live.gateway}/soap/tis?wsdl"
    text = live.http.get(url).text
    assert f'location="{live.gateway}/soap/tis"' in text
    assert "TisService" not in text  # only the service this server answers
    # A partner loading our WSDL remotely must follow its (relative) schema imports over HTTP.
    client = zeep.Client(url, settings=zeep.Settings(strict=True, forbid_dtd=True))
    service = client.bind("PlusTisInboundService", "PlusTisInboundPort")
    assert service._binding_options["address"] == f"{live.gateway}/soap/tis"
    ops = set(service._binding._operations)
    assert {"SubmitCourtRuling", "SubmitMediationProposal"} <= ops


def test_demo_runs_both_flows(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.demo import run_demo

    assert run_demo(live.settings, gateway_url=live.gateway) == 0
    out = capsys.readouterr().out
    assert "Both flows worked" in out


def test_sample_path_exists_for_every_inbound_operation(live: Live) -> None:
    for operation in INBOUND:
        mapping = live.sim.mappings.by_operation("tis", operation)
        assert Path(live.sim.sample_path(mapping)).is_file()
