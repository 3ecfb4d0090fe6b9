"""Bad input over real HTTP: a clear error with a stable code, journaled, and nothing lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from gateway.channels.ecase import ECASE_HEADER_PROFILE
from gateway.channels.header import XRoadHeader
from gateway.config import Settings
from gateway.ns import COMMON, ECASE, SOAP_ENV
from gateway.server import stop_app_threads
from gateway.signing import Signer
from gateway.soap.envelope import build_envelope
from gateway.store.schema import inbox, journal, outbox
from gateway.xml import parse_xml, serialize
from tests.conftest import SAMPLES, sample_json
from tests.integration.conftest import Live, running

RULING = SAMPLES / "court_ruling" / "valid.xml"
INVALID = yaml.safe_load((SAMPLES / "invalid.yaml").read_text(encoding="utf-8"))
OPERATION = "SubmitCourtRuling"
SOAP_ACTION = {"SOAPAction": f'"{ECASE}/{OPERATION}"'}
TIS_MEMBER = ("LV", "GOV", "90001672698", "TIS")
PLUS_SERVICE = ("LV", "GOV", "90000000000", "PLUS")


def signed(keys_dir: Path, name: str, payload: bytes) -> bytes:
    signer = Signer.from_files(keys_dir / f"{name}-key.pem", keys_dir / f"{name}-cert.pem")
    return serialize(signer.sign(parse_xml(payload)), declaration=False)


def header(
    payload: bytes,
    *,
    client: tuple[str, ...] = TIS_MEMBER,
    service: tuple[str, ...] = PLUS_SERVICE,
    operation: str = OPERATION,
    message_id: str | None = None,
) -> bytes:
    """E-case header blocks for ``payload`` (its MessageId unless told otherwise)."""
    if message_id is None:
        found = parse_xml(payload).findtext(f"{{{ECASE}}}MessageId")
        message_id = found or "NO-ID"
    return XRoadHeader(
        ECASE_HEADER_PROFILE,
        client=client,
        service=(*service, operation, "v1"),
        user_id="TIS-USER",
        id=message_id,
        protocol_version="4.0",
    ).serialize()


def ecase(payload: bytes, **kwargs: Any) -> bytes:
    """A SOAP envelope as the E-case platform delivers it: payload plus header blocks."""
    return build_envelope(payload, header(payload, **kwargs))


def post_soap(live: Live, body: bytes, endpoint: str = "ecase") -> httpx.Response:
    return live.http.post(
        f"{live.gateway}/soap/{endpoint}",
        content=body,
        headers={"Content-Type": "text/xml; charset=utf-8", **SOAP_ACTION},
    )


def fault_of(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 500, response.text
    root = parse_xml(response.content)
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None, response.text
    code = fault.findtext(f"detail/{{{COMMON}}}ErrorDetail/{{{COMMON}}}Code")
    return fault.findtext("faultcode") or "", code or ""


@pytest.fixture
def live(shared_live: Live) -> Live:
    """One gateway for the module: every test here only adds rejections, never changes state
    another test reads, so counts are compared before and after."""
    return shared_live


def rejected_codes(live: Live) -> list[str]:
    with live.runtime.engine.connect() as conn:
        rows = conn.execute(
            select(journal.c.error_code).where(journal.c.status == "rejected")
        ).scalars()
        return list(rows)


def inbox_count(live: Live) -> int:
    with live.runtime.engine.connect() as conn:
        return len(conn.execute(select(inbox.c.id)).all())


def _altered(keys_dir: Path) -> bytes:
    doc = signed(keys_dir, "tis-sim", RULING.read_bytes())
    # change the case number after signing
    root = parse_xml(doc)
    node = root.find(f".//{{{COMMON}}}CaseNumber")
    assert node is not None
    node.text = "K99-9999-26"
    return ecase(serialize(root, declaration=False))


def _ruling(keys_dir: Path, signer: str = "tis-sim") -> bytes:
    return signed(keys_dir, signer, RULING.read_bytes())


CASES: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "malformed": (
        lambda k: b"<soap:Envelope xmlns:soap='" + SOAP_ENV.encode() + b"'><x>",
        "XML_MALFORMED",
    ),
    "doctype": (
        lambda k: b'<!DOCTYPE x [<!ENTITY e "boom">]>' + build_envelope(b"<x>&e;</x>"),
        "XML_FORBIDDEN",
    ),
    "soap12": (
        lambda k: (
            b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>'
        ),
        "SOAP_ENVELOPE",
    ),
    "no-ecase-header": (lambda k: build_envelope(_ruling(k)), "HEADER_INVALID"),
    "unknown-sender": (
        lambda k: ecase(_ruling(k), client=("LV", "GOV", "40000000000", "NOBODY")),
        "ECASE_UNKNOWN_SENDER",
    ),
    "signed-by-prois-claiming-tis": (
        lambda k: ecase(_ruling(k, "prois-sim")),
        "ECASE_SENDER_MISMATCH",
    ),
    "addressed-to-someone-else": (
        lambda k: ecase(_ruling(k), service=("LV", "GOV", "90001672698", "TIS")),
        "ECASE_WRONG_ADDRESSEE",
    ),
    "service-code-not-the-body": (
        lambda k: ecase(_ruling(k), operation="SubmitPenalOrder"),
        "ECASE_WRONG_ADDRESSEE",
    ),
    "header-id-not-the-message-id": (
        lambda k: ecase(_ruling(k), message_id="OTHER-ID-1"),
        "HEADER_INVALID",
    ),
    "type-the-sender-may-not-send": (
        lambda k: ecase(
            signed(k, "ievp-sim", RULING.read_bytes()),
            client=("LV", "GOV", "90000026235", "IEVPIS"),
        ),
        "MESSAGE_NOT_ALLOWED",
    ),
    "wrong-namespace": (
        lambda k: ecase(RULING.read_bytes().replace(ECASE.encode(), b"urn:lv:ecase:plus:v9")),
        "SOAP_UNKNOWN_OPERATION",
    ),
    "unknown-operation": (
        lambda k: ecase(f'<m:Nonsense xmlns:m="{ECASE}"/>'.encode()),
        "SOAP_UNKNOWN_OPERATION",
    ),
    "outbound-type-sent-inbound": (
        lambda k: ecase(
            signed(k, "tis-sim", (SAMPLES / "execution_notification" / "valid.xml").read_bytes()),
            operation="SubmitExecutionNotification",
        ),
        "SOAP_UNKNOWN_OPERATION",
    ),
    "unsigned": (lambda k: ecase(RULING.read_bytes()), "SIG_MISSING"),
    "untrusted-signer": (lambda k: ecase(_ruling(k, "intruder")), "SIG_UNTRUSTED"),
    "altered-after-signing": (_altered, "SIG_INVALID"),
    "schema-invalid": (
        lambda k: ecase(
            signed(
                k,
                "tis-sim",
                (SAMPLES / "court_ruling" / "invalid-no-measure.xml").read_bytes(),
            )
        ),
        "XSD_INVALID",
    ),
    "empty-body": (lambda k: b"", "XML_MALFORMED"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_soap_input_gets_client_fault(live: Live, keys_dir: Path, case: str) -> None:
    build, code = CASES[case]
    before, rejected = inbox_count(live), len(rejected_codes(live))
    response = post_soap(live, build(keys_dir))
    faultcode, detail_code = fault_of(response)
    assert faultcode.endswith("Client")
    assert detail_code == code
    assert rejected_codes(live)[rejected:] == [code]
    assert inbox_count(live) == before


@pytest.mark.parametrize(
    "folder,name",
    [(f, n) for f, items in INVALID.items() for n in items if n.endswith(".xml")],
)
def test_every_invalid_xml_sample_is_refused(
    live: Live, keys_dir: Path, folder: str, name: str
) -> None:
    raw = (SAMPLES / folder / name).read_bytes()
    mapping = live.runtime.mappings.get(folder)
    # Sent by an institution that may send the type, so that only the sample's fault counts.
    sender = next((n for n, c in live.settings.institutions.items() if folder in c.sends), "tis")
    member = tuple(live.settings.institutions[sender].member.split("/"))
    payload = signed(keys_dir, f"{sender}-sim", raw)
    envelope = ecase(payload, client=member, operation=mapping.operation)
    endpoint = "ecase" if live.settings.institutions[sender].channel == "ecase" else sender
    response = live.http.post(
        f"{live.gateway}/soap/{endpoint}",
        content=envelope,
        headers={"Content-Type": "text/xml; charset=utf-8"},
    )
    _, code = fault_of(response)
    # The endpoint routes by the body element: outbound types, queries and foreign namespaces
    # have no inbound route at all; everything else reaches the XSD and fails there.
    routable = mapping.direction == "inbound" and parse_xml(raw).tag == mapping.root
    expected = INVALID[folder][name]["error"] if routable else "SOAP_UNKNOWN_OPERATION"
    assert code == expected


def test_oversize_request_refused_before_parsing(
    make_settings: Callable[..., Settings], keys_dir: Path
) -> None:
    from gateway.api import create_app
    from gateway.runtime import Runtime
    from tests.integration.conftest import serve_in_thread

    settings = make_settings(xml={"max_bytes": 2000})
    runtime = Runtime(settings)
    server = serve_in_thread(create_app(runtime), settings.api.port)
    try:
        body = ecase(signed(keys_dir, "tis-sim", RULING.read_bytes()))
        assert len(body) > 2000
        response = httpx.post(
            f"http://127.0.0.1:{settings.api.port}/soap/ecase",
            content=body,
            headers={"Content-Type": "text/xml"},  # else refused earlier, with 415
        )
        faultcode, code = fault_of(response)
        assert faultcode.endswith("Client") and code == "XML_TOO_LARGE"
    finally:
        stop_app_threads(server)
        runtime.close()


# -- PLUS's JSON -------------------------------------------------------------------------


def post_json(
    live: Live, message_type: str, body: bytes | dict, key: str | None = "k"
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return live.http.post(
        f"{live.gateway}/v1/outbound/{message_type}", content=content, headers=headers
    )


def outbox_count(live: Live) -> int:
    with live.runtime.engine.connect() as conn:
        return len(conn.execute(select(outbox.c.id)).all())


def valid_notification() -> dict:
    return sample_json("execution_notification")


def test_malformed_json_is_422_with_position(live: Live) -> None:
    before = outbox_count(live)
    response = post_json(live, "execution_notification", b'{"case": ')
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "CANONICAL_INVALID"
    assert "line 1" in error["details"][0]["message"]
    assert outbox_count(live) == before


@pytest.mark.parametrize(
    "folder,name",
    [(f, n) for f, items in INVALID.items() for n in items if n.endswith(".json")],
)
def test_every_invalid_json_sample_names_the_field(live: Live, folder: str, name: str) -> None:
    mapping = live.runtime.mappings.get(folder)
    body = json.loads((SAMPLES / folder / name).read_text(encoding="utf-8"))
    before = outbox_count(live)
    response = post_json(live, mapping.message_type, body, key=str(uuid.uuid4()))
    if mapping.direction != "outbound":
        assert response.status_code == 404  # PLUS cannot send what institutions send
        return
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == INVALID[folder][name]["error"]
    assert INVALID[folder][name]["path"] in [d["path"] for d in error["details"]]
    assert outbox_count(live) == before


def test_wrong_type_names_the_field(live: Live) -> None:
    body = valid_notification()
    body["hours_worked"] = "many"
    response = post_json(live, "execution_notification", body)
    assert response.status_code == 422
    assert "hours_worked" in [d["path"] for d in response.json()["error"]["details"]]


def test_unknown_message_type_is_404(live: Live) -> None:
    response = post_json(live, "nonsense", valid_notification())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "SOAP_UNKNOWN_OPERATION"


def test_missing_idempotency_key_is_400(live: Live) -> None:
    before = outbox_count(live)
    response = post_json(live, "execution_notification", valid_notification(), key=None)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    assert outbox_count(live) == before


@pytest.fixture
def own_live(settings: Settings) -> Iterator[Live]:
    """A gateway of the test's own, for tests that stop its worker or count from zero."""
    with running(settings) as live:
        yield live


def test_duplicate_idempotency_key_same_answer_one_message(own_live: Live) -> None:
    live = own_live
    live.worker.stop()  # keep the row pending so both answers are comparable
    body = valid_notification()
    first = post_json(live, "execution_notification", body, key="dup-1")
    second = post_json(live, "execution_notification", body, key="dup-1")
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert outbox_count(live) == 1


def test_reused_idempotency_key_with_other_body_is_409(own_live: Live) -> None:
    live = own_live
    body = valid_notification()
    first = post_json(live, "execution_notification", body, key="dup-2")
    body["hours_worked"] = (body.get("hours_worked") or 0) + 1
    second = post_json(live, "execution_notification", body, key="dup-2")
    assert second.status_code == 409
    assert second.json()["error"]["message_id"] == first.json()["id"]
    assert outbox_count(live) == 1


def test_bad_query_parameter_names_it(live: Live) -> None:
    response = live.http.get(f"{live.gateway}/v1/inbox", params={"limit": 0})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "query.limit"


def test_unknown_message_status_is_404(live: Live) -> None:
    assert live.http.get(f"{live.gateway}/v1/messages/nope").status_code == 404
    assert live.http.post(f"{live.gateway}/v1/inbox/nope/ack").status_code == 404
