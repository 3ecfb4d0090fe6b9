"""Strict SOAP over real HTTP: 415 for a non-XML media type, envelope faults, MustUnderstand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from gateway.config import Settings
from gateway.ns import COMMON, SOAP_ENV
from gateway.runtime import Runtime
from gateway.server import stop_app_threads
from gateway.soap.envelope import build_envelope
from gateway.xml import parse_xml
from tests.integration.conftest import serve_in_thread

PAYLOAD = b'<m:Anything xmlns:m="urn:m"><m:Code>150390-12345</m:Code></m:Anything>'


@dataclass
class Gateway:
    """The gateway alone (no simulators, no delivery worker) on a loopback port."""

    runtime: Runtime
    url: str

    def post(
        self, body: bytes, content_type: str | None = "text/xml; charset=utf-8"
    ) -> httpx.Response:
        headers = {"Content-Type": content_type} if content_type is not None else {}
        return httpx.post(self.url, content=body, headers=headers, timeout=20)


@pytest.fixture
def gateway(settings: Settings) -> Iterator[Gateway]:
    from gateway.api import create_app

    runtime = Runtime(settings)
    server = serve_in_thread(create_app(runtime), settings.api.port)
    endpoint = sorted(runtime.wsdl_documents)[0]
    try:
        yield Gateway(runtime, f"http://127.0.0.1:{settings.api.port}/soap/{endpoint}")
    finally:
        stop_app_threads(server)
        runtime.close()


def fault(response: httpx.Response) -> tuple[str, str]:
    """(faultcode, c:ErrorDetail/c:Code) of a SOAP fault response."""
    assert response.headers["content-type"].startswith("text/xml"), response.text
    node = parse_xml(response.content).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert node is not None, response.text
    code = node.findtext(f"detail/{{{COMMON}}}ErrorDetail/{{{COMMON}}}Code")
    return node.findtext("faultcode") or "", code or ""


def test_non_xml_content_type_is_415(gateway: Gateway) -> None:
    # One server for every case: building the runtime is the slow part.
    for content_type in ("application/json", "application/soap+xml; charset=utf-8", None):
        response = gateway.post(build_envelope(PAYLOAD), content_type)
        assert response.status_code == 415, content_type
        assert fault(response) == ("soap:Client", "SOAP_CONTENT_TYPE")
    # text/xml (any parameters) passes the media type check and reaches the parser.
    response = gateway.post(b"<not-closed>", "text/xml")
    assert response.status_code == 500
    assert fault(response) == ("soap:Client", "XML_MALFORMED")


def test_envelope_refusals(gateway: Gateway) -> None:
    body = f"<soap:Body>{PAYLOAD.decode()}</soap:Body>"
    two_bodies = f'<soap:Envelope xmlns:soap="{SOAP_ENV}">{body}{body}</soap:Envelope>'
    split_code = build_envelope(PAYLOAD.replace(b"150390-", b"150390<?x?>-"))
    many = build_envelope(b'<m:A xmlns:m="urn:m">' + b"<m:a/>" * 30_000 + b"</m:A>")
    cases = [
        (two_bodies.encode(), "SOAP_ENVELOPE"),
        (split_code, "XML_COMMENT_OR_PI"),
        (many, "XML_LIMIT"),
    ]
    for doc, code in cases:
        response = gateway.post(doc)
        assert response.status_code == 500, code
        assert fault(response) == ("soap:Client", code)


def test_unknown_must_understand_header_gets_a_must_understand_fault(gateway: Gateway) -> None:
    header = b'<s:Security xmlns:s="urn:wsse" soap:mustUnderstand="1"/>'
    response = gateway.post(build_envelope(PAYLOAD, header))
    assert response.status_code == 500
    assert fault(response) == ("soap:MustUnderstand", "SOAP_MUST_UNDERSTAND")
