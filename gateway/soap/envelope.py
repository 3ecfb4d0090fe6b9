"""SOAP 1.1 envelopes, acknowledgements and faults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from lxml import etree

from gateway.errors import GatewayError, SoapEnvelopeError
from gateway.ns import COMMON, SOAP_ENV, qname
from gateway.xml import XmlLimits, parse_xml

__all__ = [
    "Envelope",
    "build_ack",
    "build_envelope",
    "build_fault",
    "fault_code_for",
    "parse_envelope",
]

_ENVELOPE = qname(SOAP_ENV, "Envelope")
_HEADER = qname(SOAP_ENV, "Header")
_BODY = qname(SOAP_ENV, "Body")
_FAULT = qname(SOAP_ENV, "Fault")


@dataclass(frozen=True)
class Envelope:
    """A parsed SOAP envelope: the optional header and the single body element."""

    root: etree._Element
    header: etree._Element | None
    body: etree._Element


def parse_envelope(raw: bytes, limits: XmlLimits) -> Envelope:
    """Parse (hardened) and check the envelope shape; exactly one element in the body."""
    root = parse_xml(raw, limits)
    if root.tag != _ENVELOPE:
        raise SoapEnvelopeError(f"expected a SOAP 1.1 Envelope ({SOAP_ENV}), got {root.tag}")
    header = root.find(_HEADER)
    body = root.find(_BODY)
    if body is None:
        raise SoapEnvelopeError("SOAP envelope has no Body")
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SoapEnvelopeError(f"SOAP Body must hold exactly one element, found {len(children)}")
    return Envelope(root=root, header=header, body=children[0])


def build_envelope(payload: bytes, header: bytes | None = None) -> bytes:
    """Wrap an already serialized payload (e.g. signed, so never re-serialized) in a Body.

    ``header``, when given, is the serialized content of the SOAP Header (one or more header
    blocks, each declaring its own namespaces), placed before the Body as it is.
    """
    if payload.startswith(b"<?xml"):
        payload = payload[payload.index(b"?>") + 2 :].lstrip()
    head = b"<soap:Header>" + header + b"</soap:Header>" if header else b""
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<soap:Envelope xmlns:soap="'
        + SOAP_ENV.encode()
        + b'">'
        + head
        + b"<soap:Body>"
        + payload
        + b"</soap:Body></soap:Envelope>"
    )


def build_ack(
    namespace: str,
    *,
    message_id: str,
    status: str,
    reference: str,
    received_at: datetime | None = None,
    header: bytes | None = None,
) -> bytes:
    """The Acknowledgement every operation answers with (``header``: echoed header blocks)."""
    at = (received_at or datetime.now(UTC)).isoformat(timespec="seconds")
    body = (
        f'<a:Acknowledgement xmlns:a="{escape(namespace)}">'
        f"<a:MessageId>{escape(message_id)}</a:MessageId>"
        f"<a:Status>{escape(status)}</a:Status>"
        f"<a:ReceivedAt>{escape(at)}</a:ReceivedAt>"
        f"<a:Reference>{escape(reference)}</a:Reference>"
        f"</a:Acknowledgement>"
    )
    return build_envelope(body.encode("utf-8"), header)


def fault_code_for(error: GatewayError) -> str:
    """SOAP 1.1 faultcode: Client when the sender must change the message, else Server."""
    from gateway.errors import BadInputError

    return "soap:Client" if isinstance(error, BadInputError) else "soap:Server"


def build_fault(error: GatewayError) -> bytes:
    """A SOAP fault whose detail carries the stable error code and a human message."""
    fault = (
        f"<soap:Fault><faultcode>{fault_code_for(error)}</faultcode>"
        f"<faultstring>{escape(error.message)}</faultstring>"
        f'<detail><c:ErrorDetail xmlns:c="{COMMON}">'
        f"<c:Code>{escape(error.code)}</c:Code>"
        f"<c:Message>{escape(error.message)}</c:Message>"
        f"</c:ErrorDetail></detail></soap:Fault>"
    )
    return build_envelope(fault.encode("utf-8"))
