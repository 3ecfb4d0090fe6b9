"""The platform and direct-institution applications, in-process (fastapi TestClient)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from gateway.config import Settings
from gateway.signing import Signer
from gateway.sim import (
    EcasePlatformSim,
    InstitutionSim,
    SimContract,
    create_institution_app,
    create_platform_app,
    served_simulators,
)

from .helpers import body_of, fault_code, field, from_gateway

_WSDL = "http://schemas.xmlsoap.org/wsdl/"


@pytest.fixture
def platform(settings: Settings, contract: SimContract) -> EcasePlatformSim:
    return EcasePlatformSim(settings, contract=contract)


@pytest.fixture
def client(platform: EcasePlatformSim) -> TestClient:
    return TestClient(create_platform_app(platform))


def _post(client: TestClient, path: str, raw: bytes) -> tuple[int, bytes]:
    response = client.post(path, content=raw, headers={"Content-Type": "text/xml"})
    return response.status_code, response.content


def test_the_platform_hosts_every_ecase_institution(platform: EcasePlatformSim) -> None:
    assert sorted(platform.institutions) == ["ievp", "portal", "prois", "tis"]


def test_served_wsdl_names_the_platform_and_its_imports_are_served(
    client: TestClient, settings: Settings
) -> None:
    response = client.get("/soap/ecase?wsdl")
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    services = root.findall(f"{{{_WSDL}}}service")
    assert [s.get("name") for s in services] == [settings.ecase.service]
    address = root.find(f".//{{{_WSDL}}}port/{{*}}address")
    sim = settings.simulators["ecase"]
    assert address is not None
    assert address.get("location") == f"http://{sim.host}:{sim.port}/soap/ecase"
    imports = [i.get("schemaLocation") for i in root.iter("{*}import")]
    assert imports and all(loc.startswith("/xsd/") for loc in imports if loc)
    for location in imports:
        assert client.get(location).status_code == 200, location


@pytest.mark.parametrize(
    "path", ["/xsd/../config.yaml", "/xsd/%2e%2e/config.yaml", "/xsd/nope.xsd"]
)
def test_xsd_route_serves_only_schemas(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_routes_by_service_header_to_two_institutions(
    client: TestClient, platform: EcasePlatformSim, gateway_signer: Signer
) -> None:
    c = platform.contract
    to_tis, tis_id = from_gateway(
        c, gateway_signer, to="tis", message_type="execution_notification"
    )
    to_prois, prois_id = from_gateway(
        c, gateway_signer, to="prois", message_type="execution_notification"
    )
    assert _post(client, "/soap/ecase", to_tis)[0] == 200
    assert _post(client, "/soap/ecase", to_prois)[0] == 200
    everything = client.get("/sim/ecase/received").json()
    assert [(r["institution"], r["message_id"]) for r in everything["received"]] == [
        ("tis", tis_id),
        ("prois", prois_id),
    ]
    tis = client.get("/sim/ecase/received/tis").json()
    assert [r["message_id"] for r in tis["received"]] == [tis_id]
    assert client.get("/sim/ecase/received/nobody").status_code == 404
    assert client.delete("/sim/ecase/received").json() == {"status": "reset"}
    assert client.get("/sim/ecase/received").json()["received"] == []


def test_unknown_addressee_is_a_client_fault(
    client: TestClient, platform: EcasePlatformSim, gateway_signer: Signer
) -> None:
    raw, _ = from_gateway(
        platform.contract, gateway_signer, to="em", message_type="monitoring_order"
    )
    status, body = _post(client, "/soap/ecase", raw)
    assert status == 500 and fault_code(body) == "ECASE_UNKNOWN_ADDRESSEE"
    assert body_of(body).findtext("faultcode") == "soap:Client"
    assert client.get("/sim/ecase/received").json()["rejected"][0]["code"] == (
        "ECASE_UNKNOWN_ADDRESSEE"
    )


def test_fault_for_one_addressee_leaves_the_others_alone(
    client: TestClient, platform: EcasePlatformSim, gateway_signer: Signer
) -> None:
    c = platform.contract
    plan = client.put("/sim/ecase/faults/tis", json={"mode": "http_503", "count": 1})
    assert plan.status_code == 200
    to_tis, _ = from_gateway(c, gateway_signer, to="tis", message_type="execution_notification")
    to_prois, _ = from_gateway(c, gateway_signer, to="prois", message_type="execution_notification")
    assert _post(client, "/soap/ecase", to_tis)[0] == 503
    assert _post(client, "/soap/ecase", to_prois)[0] == 200
    assert _post(client, "/soap/ecase", to_tis)[0] == 200  # count 1: recovered
    assert client.put("/sim/ecase/faults/nobody", json={"mode": "slow"}).status_code == 404
    assert client.put("/sim/ecase/faults/tis", json={"mode": "explode"}).status_code == 422


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [("server_fault", 500, "SIM_OUTAGE"), ("client_fault", 500, "SIM_REJECTED")],
)
def test_platform_wide_fault(
    client: TestClient,
    platform: EcasePlatformSim,
    gateway_signer: Signer,
    mode: str,
    status: int,
    code: str,
) -> None:
    client.put("/sim/ecase/faults", json={"mode": mode})
    for to in ("tis", "prois"):
        raw, _ = from_gateway(
            platform.contract, gateway_signer, to=to, message_type="execution_notification"
        )
        got, body = _post(client, "/soap/ecase", raw)
        assert got == status and fault_code(body) == code
    client.put("/sim/ecase/faults", json={"mode": "none"})
    raw, _ = from_gateway(
        platform.contract, gateway_signer, to="tis", message_type="execution_notification"
    )
    assert _post(client, "/soap/ecase", raw)[0] == 200


def test_malformed_fault_answers_something_that_is_not_xml(
    client: TestClient, platform: EcasePlatformSim, gateway_signer: Signer
) -> None:
    client.put("/sim/ecase/faults/prois", json={"mode": "malformed", "count": 1})
    raw, _ = from_gateway(
        platform.contract, gateway_signer, to="prois", message_type="execution_notification"
    )
    status, body = _post(client, "/soap/ecase", raw)
    assert status == 200 and body == b"<not-xml"


def test_send_endpoint_refusals(client: TestClient) -> None:
    assert client.post("/sim/ecase/send/nobody/court_ruling").status_code == 404
    response = client.post("/sim/ecase/send/tis/penal_order")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "CONFIG_INVALID"


def test_send_to_an_absent_gateway_is_a_502(client: TestClient) -> None:
    # Nothing listens at the test settings' gateway URL.
    response = client.post("/sim/ecase/send/tis/court_ruling")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "PARTNER_UNAVAILABLE"


def test_classifier_service_is_mounted(client: TestClient) -> None:
    assert client.get("/classifiers").status_code == 200


def test_direct_institution_app(
    settings: Settings, contract: SimContract, gateway_signer: Signer
) -> None:
    em = InstitutionSim(settings, "em", contract)
    client = TestClient(create_institution_app(em))
    root = etree.fromstring(client.get("/soap/em?wsdl").content)
    address = root.find(f".//{{{_WSDL}}}port/{{*}}address")
    assert address is not None and address.get("location", "").endswith("/soap/em")
    for location in (i.get("schemaLocation") for i in root.iter("{*}import")):
        assert location and client.get(location).status_code == 200
    raw, message_id = from_gateway(
        em.contract, gateway_signer, to="em", message_type="monitoring_order"
    )
    status, body = _post(client, "/soap/em", raw)
    assert status == 200 and field(body_of(body), "Status") == "ACCEPTED"
    assert [r["message_id"] for r in client.get("/sim/em/received").json()["received"]] == [
        message_id
    ]
    client.put("/sim/em/faults", json={"mode": "server_fault", "count": 1})
    status, body = _post(client, "/soap/em", raw)
    assert status == 500 and fault_code(body) == "SIM_OUTAGE"
    status, body = _post(client, "/soap/em", raw)
    assert field(body_of(body), "Status") == "DUPLICATE"
    assert client.get("/sim/em/received").json()["duplicates"] == 1


def test_served_simulators(settings: Settings) -> None:
    assert served_simulators(settings) == ["ecase", "dvs", "em", "vraa", "viss"]


def test_slow_fault_delays_then_answers(
    client: TestClient, platform: EcasePlatformSim, gateway_signer: Signer
) -> None:
    import time

    client.put("/sim/ecase/faults/tis", json={"mode": "slow", "delay": 0.3, "count": 1})
    raw, _ = from_gateway(
        platform.contract, gateway_signer, to="tis", message_type="execution_notification"
    )
    started = time.monotonic()
    status, _ = _post(client, "/soap/ecase", raw)
    assert status == 200 and time.monotonic() - started >= 0.3
