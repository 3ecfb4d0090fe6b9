"""Bad input over real HTTP: a clear error with a stable code, journaled, and nothing lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from gateway.config import Settings
from gateway.ns import COMMON, SOAP_ENV
from gateway.signing import Signer
from gateway.soap.envelope import build_envelope
from gateway.store.schema import inbox, journal, outbox
from gateway.xml import parse_xml, serialize
from tests.conftest import SAMPLES
from tests.integration.conftest import Live

RULING = SAMPLES / "tis" / "court_ruling" / "valid.xml"
INVALID = yaml.safe_load((SAMPLES / "tis" / "invalid.yaml").read_text(encoding="utf-8"))
SOAP_ACTION = {"SOAPAction": '"urn:lv:ta:tis:plus:v1/SubmitCourtRuling"'}


def signed(keys_dir: Path, name: str, payload: bytes) -> bytes:
    signer = Signer.from_files(keys_dir / f"{name}-key.pem", keys_dir / f"{name}-cert.pem")
    return serialize(signer.sign(parse_xml(payload)), declaration=False)


def post_soap(live: Live, body: bytes) -> httpx.Response:
    return live.http.post(
        f"{live.gateway}/soap/tis",
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
    node = root.find(".//{urn:vpd:plus:common:v1}CaseNumber") or root.find(
        ".//{urn:lv:vpd:plus:common:v1}CaseNumber"
    )
    assert node is not None
    node.text = "K99-9999-26"
    return build_envelope(serialize(root, declaration=False))


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
    "wrong-namespace": (
        lambda k: build_envelope(
            RULING.read_bytes().replace(b"urn:lv:ta:tis:plus:v1", b"urn:lv:ta:tis:plus:v9")
        ),
        "SOAP_UNKNOWN_OPERATION",
    ),
    "unknown-operation": (
        lambda k: build_envelope(b'<t:Nonsense xmlns:t="urn:lv:ta:tis:plus:v1"/>'),
        "SOAP_UNKNOWN_OPERATION",
    ),
    "outbound-type-sent-inbound": (
        lambda k: build_envelope(
            signed(
                k,
                "tis-sim",
                (SAMPLES / "tis" / "execution_notification" / "valid.xml").read_bytes(),
            )
        ),
        "SOAP_UNKNOWN_OPERATION",
    ),
    "unsigned": (lambda k: build_envelope(RULING.read_bytes()), "SIG_MISSING"),
    "untrusted-signer": (
        lambda k: build_envelope(signed(k, "intruder", RULING.read_bytes())),
        "SIG_UNTRUSTED",
    ),
    "altered-after-signing": (_altered, "SIG_INVALID"),
    "schema-invalid": (
        lambda k: build_envelope(
            signed(
                k,
                "tis-sim",
                (SAMPLES / "tis" / "court_ruling" / "invalid-missing-person.xml").read_bytes(),
            )
        ),
        "XSD_INVALID",
    ),
    "empty-body": (lambda k: b"", "XML_MALFORMED"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_soap_input_gets_client_fault(live: Live, keys_dir: Path, case: str) -> None:
    build, code = CASES[case]
    response = post_soap(live, build(keys_dir))
    faultcode, detail_code = fault_of(response)
    assert faultcode.endswith("Client")
    assert detail_code == code
    assert rejected_codes(live) == [code]
    assert inbox_count(live) == 0


@pytest.mark.parametrize(
    "folder,name",
    [(f, n) for f, items in INVALID.items() for n in items if n.endswith(".xml")],
)
def test_every_invalid_xml_sample_is_refused(
    live: Live, keys_dir: Path, folder: str, name: str
) -> None:
    raw = (SAMPLES / "tis" / folder / name).read_bytes()
    payload = signed(keys_dir, "tis-sim", raw)
    _, code = fault_of(post_soap(live, build_envelope(payload)))
    mapping = live.runtime.mappings.get(f"tis.{folder}")
    # The endpoint routes by the body element: outbound types and foreign namespaces have no
    # inbound route at all; everything else reaches the XSD and fails there.
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
        body = build_envelope(signed(keys_dir, "tis-sim", RULING.read_bytes()))
        assert len(body) > 2000
        response = httpx.post(
            f"http://127.0.0.1:{settings.api.port}/soap/tis",
            content=body,
            headers={"Content-Type": "text/xml"},  # else refused earlier, with 415
        )
        faultcode, code = fault_of(response)
        assert faultcode.endswith("Client") and code == "XML_TOO_LARGE"
    finally:
        server.should_exit = True
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
    return json.loads((SAMPLES / "tis" / "execution_notification" / "valid.json").read_text())


def test_malformed_json_is_422_with_position(live: Live) -> None:
    response = post_json(live, "tis.execution_notification", b'{"case": ')
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "CANONICAL_INVALID"
    assert "line 1" in error["details"][0]["message"]
    assert outbox_count(live) == 0


@pytest.mark.parametrize(
    "folder,name",
    [(f, n) for f, items in INVALID.items() for n in items if n.endswith(".json")],
)
def test_every_invalid_json_sample_names_the_field(live: Live, folder: str, name: str) -> None:
    mapping = live.runtime.mappings.get(f"tis.{folder}")
    body = json.loads((SAMPLES / "tis" / folder / name).read_text(encoding="utf-8"))
    response = post_json(live, mapping.message_type, body, key=str(uuid.uuid4()))
    if mapping.direction == "inbound":
        assert response.status_code == 404  # PLUS cannot send what only TIS sends
        return
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == INVALID[folder][name]["error"]
    assert INVALID[folder][name]["path"] in [d["path"] for d in error["details"]]
    assert outbox_count(live) == 0


def test_wrong_type_names_the_field(live: Live) -> None:
    body = valid_notification()
    body["hours_worked"] = "many"
    response = post_json(live, "tis.execution_notification", body)
    assert response.status_code == 422
    assert "hours_worked" in [d["path"] for d in response.json()["error"]["details"]]


def test_unknown_message_type_is_404(live: Live) -> None:
    response = post_json(live, "tis.nonsense", valid_notification())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "SOAP_UNKNOWN_OPERATION"


def test_missing_idempotency_key_is_400(live: Live) -> None:
    response = post_json(live, "tis.execution_notification", valid_notification(), key=None)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    assert outbox_count(live) == 0


def test_duplicate_idempotency_key_same_answer_one_message(live: Live) -> None:
    live.worker.stop()  # keep the row pending so both answers are comparable
    body = valid_notification()
    first = post_json(live, "tis.execution_notification", body, key="dup-1")
    second = post_json(live, "tis.execution_notification", body, key="dup-1")
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert outbox_count(live) == 1


def test_reused_idempotency_key_with_other_body_is_409(live: Live) -> None:
    body = valid_notification()
    first = post_json(live, "tis.execution_notification", body, key="dup-2")
    body["hours_worked"] = (body.get("hours_worked") or 0) + 1
    second = post_json(live, "tis.execution_notification", body, key="dup-2")
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
