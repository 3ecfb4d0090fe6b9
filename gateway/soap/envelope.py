"""SOAP 1.1 envelopes, acknowledgements and faults.

:func:`parse_envelope` is strict, because every inbound path (the gateway's endpoints, the
simulators, registry answers) reads messages through it: exactly one Header at most and
exactly one Body, in that order and nothing else; exactly one payload element in the Body; no
processing instructions anywhere; no comments inside the Header or the Body, whose text is
business data; and a ``mustUnderstand="1"`` header block the caller does not understand is
answered with the SOAP 1.1 ``soap:MustUnderstand`` fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from lxml import etree

from gateway.errors import (
    GatewayError,
    SoapEnvelopeError,
    SoapMustUnderstandError,
    XmlCommentOrPiError,
)
from gateway.logging import mask_text
from gateway.ns import COMMON, ECASE_HEADER, SOAP_ENV, VISS, qname
from gateway.xml import XmlLimits, parse_xml, refuse_comments_and_pis, serialize

if TYPE_CHECKING:
    from gateway.signing import Signer

__all__ = [
    "UNDERSTOOD_HEADERS",
    "Envelope",
    "build_ack",
    "build_envelope",
    "build_fault",
    "fault_code_for",
    "parse_envelope",
]

#: Namespaces of the header blocks the gateway processes (the X-Road style headers of the
#: E-case platform and of VISS): the default ``understood`` set of :func:`parse_envelope`.
UNDERSTOOD_HEADERS: frozenset[str] = frozenset({ECASE_HEADER, VISS})

_ENVELOPE = qname(SOAP_ENV, "Envelope")
_HEADER = qname(SOAP_ENV, "Header")
_BODY = qname(SOAP_ENV, "Body")
_FAULT = qname(SOAP_ENV, "Fault")
_MUST_UNDERSTAND = qname(SOAP_ENV, "mustUnderstand")
_ACTOR = qname(SOAP_ENV, "actor")
# Characters XML 1.0 cannot carry (error texts may quote refused input).
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: SOAP 1.1 section 4.2.2: a block for "the first SOAP application that processes the message".
_ACTOR_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"


@dataclass(frozen=True)
class Envelope:
    """A parsed SOAP envelope: the optional header and the single body element."""

    root: etree._Element
    header: etree._Element | None
    body: etree._Element


def _local(element: etree._Element) -> str:
    return mask_text(etree.QName(element).localname)


def _no_text(element: etree._Element, what: str) -> None:
    # Envelope, Header and Body hold elements only; text there is junk a lax reader skips.
    texts = [element.text, *(child.tail for child in element)]
    if any(t is not None and t.strip() for t in texts):
        raise SoapEnvelopeError(f"SOAP {what} holds text outside its elements")


def _check_header(header: etree._Element, understood: frozenset[str]) -> None:
    _no_text(header, "Header")
    for block in header:
        if not isinstance(block.tag, str):
            continue  # comments are refused below, with the rest of the header's content
        namespace = etree.QName(block).namespace
        if namespace is None:
            # SOAP 1.1 section 4.2: header entries MUST be namespace-qualified.
            raise SoapEnvelopeError(f"SOAP header block {_local(block)} has no namespace")
        flag = block.get(_MUST_UNDERSTAND)
        if flag is None or flag.strip() in ("0", "false"):
            continue
        if flag.strip() not in ("1", "true"):
            raise SoapEnvelopeError(
                f"SOAP header block {_local(block)} has mustUnderstand={mask_text(flag)!r}, "
                "not 0 or 1"
            )
        actor = block.get(_ACTOR)
        if actor not in (None, "", _ACTOR_NEXT):
            continue  # addressed to another intermediary, not to us
        if namespace not in understood:
            raise SoapMustUnderstandError(
                f"header block {{{mask_text(namespace)}}}{_local(block)} is marked "
                "mustUnderstand but is not understood here",
                details=[{"path": f"header.{_local(block)}", "namespace": mask_text(namespace)}],
            )
    refuse_comments_and_pis(header, "a SOAP header")


def parse_envelope(
    raw: bytes, limits: XmlLimits, *, understood: frozenset[str] = UNDERSTOOD_HEADERS
) -> Envelope:
    """Parse (hardened, within ``limits``) and check a SOAP 1.1 envelope strictly.

    ``understood`` lists the namespaces of the header blocks the caller processes; a block of
    any other namespace with ``mustUnderstand="1"`` (addressed to us: no actor, or the "next"
    actor) raises :class:`~gateway.errors.SoapMustUnderstandError`, which :func:`build_fault`
    answers with faultcode ``soap:MustUnderstand``. Pass ``frozenset()`` to understand none.

    Raises :class:`~gateway.errors.SoapEnvelopeError` for the wrong shape (not a SOAP 1.1
    Envelope, Header not first or repeated, no Body or two, anything after the Body, text
    between the envelope's elements, not exactly one element in the Body) and
    :class:`~gateway.errors.XmlCommentOrPiError` for a processing instruction anywhere or a
    comment inside the Header or the Body; plus whatever :func:`~gateway.xml.parse_xml` raises.
    """
    root = parse_xml(raw, limits)
    if root.tag != _ENVELOPE:
        raise SoapEnvelopeError(
            f"expected a SOAP 1.1 Envelope ({SOAP_ENV}), got {mask_text(str(root.tag))}"
        )
    # SOAP 1.1 section 3: a SOAP message MUST NOT contain processing instructions (the prolog
    # and the epilog included); the XML declaration is not one.
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        if sibling.tag is etree.PI:
            raise XmlCommentOrPiError(
                "a processing instruction is not accepted in a SOAP message (outside the Envelope)",
                details=[{"path": "(document)", "kind": "processing instruction"}],
            )
    refuse_comments_and_pis(root, "a SOAP message", comments=False)
    _no_text(root, "Envelope")
    children = [c for c in root if isinstance(c.tag, str)]
    if not children or children[-1].tag != _BODY or any(c.tag == _BODY for c in children[:-1]):
        bodies = sum(1 for c in children if c.tag == _BODY)
        raise SoapEnvelopeError(
            "SOAP envelope must end with exactly one Body "
            f"(found {bodies} Body element(s) among {len(children)} children)"
        )
    header: etree._Element | None = None
    if len(children) == 2 and children[0].tag == _HEADER:
        header = children[0]
    elif len(children) != 1:
        raise SoapEnvelopeError(
            "SOAP envelope may hold one Header and then the Body, nothing else "
            f"(found {', '.join(_local(c) for c in children)})"
        )
    body = children[-1]
    _no_text(body, "Body")
    payload = [c for c in body if isinstance(c.tag, str)]
    if len(payload) != 1:
        raise SoapEnvelopeError(f"SOAP Body must hold exactly one element, found {len(payload)}")
    refuse_comments_and_pis(body, "a SOAP Body")
    if header is not None:
        _check_header(header, understood)
    return Envelope(root=root, header=header, body=payload[0])


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


def _signed(fragment: str, signer: Signer | None) -> bytes:
    # A signed receipt: the element gets an Id and an enveloped signature naming it, the same
    # profile as every payload (docs/SIGNATURE-PROFILE.md), so the receiver verifies it in place.
    data = fragment.encode("utf-8")
    if signer is None:
        return data
    return serialize(signer.sign(parse_xml(data)), declaration=False)


def build_ack(
    namespace: str,
    *,
    message_id: str,
    status: str,
    reference: str,
    received_at: datetime | None = None,
    header: bytes | None = None,
    signer: Signer | None = None,
) -> bytes:
    """The Acknowledgement every operation answers with (``header``: echoed header blocks).

    With ``signer`` the Acknowledgement is a signed receipt: it carries an ``Id`` and an
    enveloped signature over itself.
    """
    at = (received_at or datetime.now(UTC)).isoformat(timespec="seconds")
    body = (
        f'<a:Acknowledgement xmlns:a="{escape(namespace)}">'
        f"<a:MessageId>{escape(message_id)}</a:MessageId>"
        f"<a:Status>{escape(status)}</a:Status>"
        f"<a:ReceivedAt>{escape(at)}</a:ReceivedAt>"
        f"<a:Reference>{escape(reference)}</a:Reference>"
        f"</a:Acknowledgement>"
    )
    return build_envelope(_signed(body, signer), header)


def fault_code_for(error: GatewayError) -> str:
    """SOAP 1.1 faultcode: MustUnderstand for a header block not understood, Client when the
    sender must change the message, else Server."""
    from gateway.errors import BadInputError

    if isinstance(error, SoapMustUnderstandError):
        return "soap:MustUnderstand"
    return "soap:Client" if isinstance(error, BadInputError) else "soap:Server"


def build_fault(error: GatewayError, signer: Signer | None = None) -> bytes:
    """A SOAP fault whose detail carries the stable error code and a human message.

    With ``signer`` the ``c:ErrorDetail`` is signed (an ``Id`` and an enveloped signature over
    it): the sender can prove what the gateway refused and why.
    """
    # Masked: validator messages quote the refused value (a name, a birth date, a code).
    message = escape(_NOT_XML.sub("\ufffd", mask_text(error.message)))
    detail = _signed(
        f'<c:ErrorDetail xmlns:c="{COMMON}">'
        f"<c:Code>{escape(error.code)}</c:Code>"
        f"<c:Message>{message}</c:Message>"
        f"</c:ErrorDetail>",
        signer,
    )
    fault = (
        (
            f"<soap:Fault><faultcode>{fault_code_for(error)}</faultcode>"
            f"<faultstring>{message}</faultstring><detail>"
        ).encode()
        + detail
        + b"</detail></soap:Fault>"
    )
    return build_envelope(fault)
