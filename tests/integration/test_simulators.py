"""The simulators over real HTTP on loopback: served WSDLs usable by zeep, routing by header,
faults per addressee, refusals, queries and duplicates; and a simulated institution sending
to the real gateway through its channel."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import requests
import zeep
from lxml import etree
from zeep.transports import Transport

from gateway.config import Settings
from gateway.errors import PartnerRejectedError
from gateway.signing import Signer, TrustStore
from gateway.sim import (
    EcasePlatformSim,
    InstitutionSim,
    create_institution_app,
    create_platform_app,
)
from tests.integration.conftest import running, serve_in_thread
from tests.unit.sim.helpers import body_of, fault_code, field, from_gateway, header_id, signer


@dataclass
class Sims:
    settings: Settings
    platform: EcasePlatformSim
    em: InstitutionSim
    ecase_url: str
    em_url: str
    http: httpx.Client
    gateway: Signer

    def post(self, url: str, raw: bytes) -> httpx.Response:
        return self.http.post(url, content=raw, headers={"Content-Type": "text/xml"})


@pytest.fixture
def sims(settings: Settings, keys_dir: Path) -> Iterator[Sims]:
    platform = EcasePlatformSim(settings)
    em = InstitutionSim(settings, "em", platform.contract)
    ecase_port, em_port = settings.simulators["ecase"].port, settings.simulators["em"].port
    servers = [
        serve_in_thread(create_platform_app(platform), ecase_port),
        serve_in_thread(create_institution_app(em), em_port),
    ]
    http = httpx.Client(timeout=10)
    try:
        yield Sims(
            settings=settings,
            platform=platform,
            em=em,
            ecase_url=f"http://127.0.0.1:{ecase_port}/soap/ecase",
            em_url=f"http://127.0.0.1:{em_port}/soap/em",
            http=http,
            gateway=signer(keys_dir),
        )
    finally:
        http.close()
        for server in servers:
            server.should_exit = True


def _zeep(sims: Sims, url: str) -> tuple[zeep.Client, Transport]:
    transport = Transport(session=requests.Session(), timeout=5, operation_timeout=5)
    # A partner's client as it would be built: it must fetch the imported schemas over HTTP,
    # which our own hardened settings (forbid_external) refuse on purpose.
    settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True)
    client = zeep.Client(f"{url}?wsdl", transport=transport, settings=settings)
    return client, transport


@pytest.mark.parametrize(
    ("where", "to", "message_type"),
    [("ecase", "tis", "execution_notification"), ("em", "em", "monitoring_order")],
)
def test_zeep_builds_a_client_from_the_served_wsdl_and_calls_it(
    sims: Sims, where: str, to: str, message_type: str
) -> None:
    url = sims.ecase_url if where == "ecase" else sims.em_url
    client, transport = _zeep(sims, url)  # fetches the WSDL and every /xsd/... it imports
    ecase = sims.settings.ecase
    service = client.bind(ecase.service, ecase.port)
    mapping = sims.platform.contract.mapping(message_type)
    binding = service._binding
    operation = binding.get(mapping.operation)
    assert service._binding_options["address"] == url
    raw, message_id = from_gateway(
        sims.platform.contract, sims.gateway, to=to, message_type=message_type
    )
    response = transport.post(
        url, raw, {"SOAPAction": f'"{operation.soapaction}"', "Content-Type": "text/xml"}
    )
    ack = binding.process_reply(client, operation, response)
    # zeep decoded the Acknowledgement with the types it loaded from the served schemas.
    ack = ack.body if hasattr(ack, "body") else ack
    assert ack.Status == "ACCEPTED" and ack.MessageId == message_id


def test_routing_by_header_faults_refusals_and_duplicates(sims: Sims) -> None:
    c = sims.platform.contract
    to_tis, tis_id = from_gateway(c, sims.gateway, to="tis", message_type="evaluation_report")
    to_ievp, ievp_id = from_gateway(c, sims.gateway, to="ievp", message_type="evaluation_report")
    refused, _ = from_gateway(c, sims.gateway, to="ievp", message_type="execution_notification")

    sims.http.put(
        f"{sims.ecase_url.replace('/soap/', '/sim/')}/faults/tis",
        json={
            "mode": "server_fault",
            "count": 1,
        },
    )
    first = sims.post(sims.ecase_url, to_tis)
    assert first.status_code == 500 and fault_code(first.content) == "SIM_OUTAGE"
    assert sims.post(sims.ecase_url, to_ievp).status_code == 200  # other addressee unaffected
    assert sims.post(sims.ecase_url, to_tis).status_code == 200  # one fault only
    again = sims.post(sims.ecase_url, to_tis)
    assert field(body_of(again.content), "Status") == "DUPLICATE"
    no = sims.post(sims.ecase_url, refused)
    assert no.status_code == 500 and fault_code(no.content) == "MESSAGE_NOT_ALLOWED"

    control = sims.ecase_url.replace("/soap/ecase", "/sim/ecase")
    everything = sims.http.get(f"{control}/received").json()
    assert [(r["institution"], r["message_id"]) for r in everything["received"]] == [
        ("ievp", ievp_id),
        ("tis", tis_id),
    ]
    assert everything["duplicates"] == {"ievp": 0, "portal": 0, "prois": 0, "tis": 1}
    assert sims.http.get(f"{control}/received/ievp").json()["rejected"][0]["code"] == (
        "MESSAGE_NOT_ALLOWED"
    )


@pytest.mark.parametrize(("to", "query"), [("tis", "ruling_state"), ("ievp", "release_date")])
def test_query_answered_from_its_sample_with_the_request_id(
    sims: Sims,
    keys_dir: Path,
    to: str,
    query: str,
) -> None:
    c = sims.platform.contract
    request = c.mappings.query_request(query)
    raw, query_id = from_gateway(c, sims.gateway, to=to, message_type=request.message_type)
    response = sims.post(sims.ecase_url, raw)
    assert response.status_code == 200, response.text
    assert header_id(response.content) == query_id
    signed = TrustStore.from_files([keys_dir / f"{to}-sim-cert.pem"]).verify(
        body_of(response.content)
    )
    data = c.mappings.query_answer(query).to_canonical(signed)
    assert data["request_id"] == query_id and data["result"] == "FOUND"


def test_wsdl_imports_resolve_for_an_xml_client(sims: Sims) -> None:
    # What node-soap does too: fetch the WSDL, then every schemaLocation relative to it.
    for url in (sims.ecase_url, sims.em_url):
        root = etree.fromstring(sims.http.get(f"{url}?wsdl").content)
        locations = [i.get("schemaLocation") for i in root.iter("{*}import")]
        assert locations
        for location in locations:
            assert sims.http.get(httpx.URL(url).join(location or "")).status_code == 200


def test_simulated_institutions_send_to_the_gateway_through_their_channel(
    settings: Settings,
) -> None:
    with running(settings) as live:
        ack = live.sim("tis").send("court_ruling")
        assert ack["Status"] == "ACCEPTED" and ack["MessageId"].startswith("TIS-")
        # The HTTP control route does the same, through the platform simulator's app.
        over_http = live.http.post(f"{live.sim_url}/sim/ecase/send/ievp/prison_release")
        assert over_http.status_code == 200, over_http.text
        assert over_http.json()["Status"] == "ACCEPTED"
        # EM is a direct institution: it posts to /soap/em.
        assert live.em.gateway_endpoint.endswith("/soap/em")
        assert live.em.send("monitoring_event")["Status"] == "ACCEPTED"
        # Sent again with the same id: the gateway answers DUPLICATE.
        first = live.sim("prois").send("penal_order", keep_id=True)
        again = live.sim("prois").send("penal_order", keep_id=True)
        assert (first["Status"], again["Status"]) == ("ACCEPTED", "DUPLICATE")


def test_the_gateways_refusal_keeps_its_fault_code(settings: Settings) -> None:
    with running(settings) as live:
        # ProIS does not send court rulings: the gateway refuses with a Client fault.
        with pytest.raises(PartnerRejectedError) as caught:
            live.sim("prois").send("court_ruling", any_type=True)
        assert caught.value.details[0]["detail_code"] == "MESSAGE_NOT_ALLOWED"
        over_http = live.http.post(f"{live.sim_url}/sim/ecase/send/tis/penal_order")
        assert over_http.status_code == 400  # TIS does not send penal orders: refused locally


def test_zeep_builds_clients_from_the_viss_simulators_wsdls(settings: Settings) -> None:
    from gateway.registries.contract import REGISTRIES
    from gateway.registries.sim import VissSimulator, create_viss_app

    port = settings.simulators["viss"].port
    server = serve_in_thread(create_viss_app(VissSimulator(settings)), port)
    try:
        for name, contract in REGISTRIES.items():
            url = f"http://127.0.0.1:{port}/soap/viss/{name}"
            transport = Transport(session=requests.Session(), timeout=5)
            client = zeep.Client(
                f"{url}?wsdl",
                transport=transport,
                settings=zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True),
            )
            service = client.bind(contract.service, contract.port)
            assert service._binding_options["address"] == url
            assert service._binding.get(contract.operation) is not None
    finally:
        server.should_exit = True
