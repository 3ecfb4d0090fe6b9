"""Strict SOAP 1.1 envelopes: shape, faithful text, mustUnderstand."""

from __future__ import annotations

import pytest

from gateway.errors import (
    SoapEnvelopeError,
    SoapMustUnderstandError,
    UnknownOperationError,
    XmlCommentOrPiError,
)
from gateway.ns import COMMON, ECASE_HEADER, SOAP_ENV, VISS
from gateway.soap.envelope import (
    UNDERSTOOD_HEADERS,
    build_envelope,
    build_fault,
    fault_code_for,
    parse_envelope,
)
from gateway.xml import XmlLimits, parse_xml

LIMITS = XmlLimits()
ENV = f'<soap:Envelope xmlns:soap="{SOAP_ENV}">'
PAYLOAD = '<m:Ruling xmlns:m="urn:m"><m:Code>150390-12345</m:Code></m:Ruling>'


def envelope(inner: str, prolog: str = "", epilog: str = "") -> bytes:
    return f"{prolog}{ENV}{inner}</soap:Envelope>{epilog}".encode()


def body(content: str = PAYLOAD) -> str:
    return f"<soap:Body>{content}</soap:Body>"


def header(content: str) -> str:
    return f"<soap:Header>{content}</soap:Header>"


def block(namespace: str, must: str | None = None, actor: str | None = None) -> str:
    attrs = f' soap:mustUnderstand="{must}"' if must is not None else ""
    attrs += f' soap:actor="{actor}"' if actor is not None else ""
    return f'<h:id xmlns:h="{namespace}"{attrs}>abc</h:id>'


def test_plain_envelope() -> None:
    parsed = parse_envelope(envelope(header(block("urn:x")) + body()), LIMITS)
    assert parsed.body.tag == "{urn:m}Ruling"
    assert parsed.header is not None and parsed.header[0].text == "abc"
    assert parse_envelope(build_envelope(PAYLOAD.encode()), LIMITS).header is None


def test_whitespace_and_comments_between_envelope_parts_are_fine() -> None:
    doc = envelope(f"\n  <!-- trace -->\n  {header('')}\n  {body()}\n", epilog="<!-- end -->")
    assert parse_envelope(doc, LIMITS).body.tag == "{urn:m}Ruling"


# -- shape -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "inner",
    [
        body() + body(),  # two bodies: a lax reader takes the first, a verifier the second
        header("") + body() + body(),
        header("") + header("") + body(),
        body() + header(""),
        body() + "<x:Extra xmlns:x='urn:x'/>",
        "<x:Extra xmlns:x='urn:x'/>" + body(),
        header(""),
        "",
    ],
)
def test_envelope_shape_is_strict(inner: str) -> None:
    with pytest.raises(SoapEnvelopeError) as info:
        parse_envelope(envelope(inner), LIMITS)
    assert info.value.code == "SOAP_ENVELOPE"


@pytest.mark.parametrize("content", ["", PAYLOAD + PAYLOAD, "text only"])
def test_body_holds_exactly_one_element(content: str) -> None:
    with pytest.raises(SoapEnvelopeError):
        parse_envelope(envelope(body(content)), LIMITS)


@pytest.mark.parametrize(
    "inner", [body(PAYLOAD + "junk"), "junk" + body(), header("junk") + body()]
)
def test_text_outside_elements_is_refused(inner: str) -> None:
    with pytest.raises(SoapEnvelopeError, match="text"):
        parse_envelope(envelope(inner), LIMITS)


def test_soap12_is_not_soap11() -> None:
    doc = b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>'
    with pytest.raises(SoapEnvelopeError):
        parse_envelope(doc, LIMITS)


# -- faithful text: no comments or processing instructions in business content --------------------


@pytest.mark.parametrize(
    "doc",
    [
        envelope(body('<m:R xmlns:m="urn:m"><m:Code>150390<?x?>-12345</m:Code></m:R>')),
        envelope(body('<m:R xmlns:m="urn:m"><m:Code>150390<!---->-12345</m:Code></m:R>')),
        envelope(body("<!-- before -->" + PAYLOAD)),
        envelope(header('<h:id xmlns:h="urn:h">abc<!--x-->def</h:id>') + body()),
        envelope(header('<h:id xmlns:h="urn:h">abc<?x?>def</h:id>') + body()),
        envelope("<?x?>" + body()),
        envelope(body(), prolog='<?xml-stylesheet href="x"?>'),
        envelope(body(), epilog="<?x?>"),
    ],
)
def test_comments_and_processing_instructions_refused(doc: bytes) -> None:
    with pytest.raises(XmlCommentOrPiError) as info:
        parse_envelope(doc, LIMITS)
    assert info.value.code == "XML_COMMENT_OR_PI"


def test_split_personal_code_is_never_read_short() -> None:
    # What a lax parse would hand the mapping: the text before the instruction only.
    doc = envelope(body('<m:R xmlns:m="urn:m"><m:Code>150390<?x?>-12345</m:Code></m:R>'))
    assert parse_xml(doc).find(".//{urn:m}Code").text == "150390"
    with pytest.raises(XmlCommentOrPiError):
        parse_envelope(doc, LIMITS)


def test_xml_declaration_is_not_a_processing_instruction() -> None:
    doc = envelope(body(), prolog='<?xml version="1.0" encoding="UTF-8"?>')
    assert parse_envelope(doc, LIMITS).body.tag == "{urn:m}Ruling"


# -- mustUnderstand ----------------------------------------------------------------------------


def test_gateway_headers_are_understood_by_default() -> None:
    assert {ECASE_HEADER, VISS} <= UNDERSTOOD_HEADERS
    for namespace in (ECASE_HEADER, VISS):
        parse_envelope(envelope(header(block(namespace, "1")) + body()), LIMITS)


@pytest.mark.parametrize("flag", ["1", "true", " 1 "])
def test_unknown_must_understand_header_is_a_must_understand_fault(flag: str) -> None:
    doc = envelope(header(block("urn:wsse", flag)) + body())
    with pytest.raises(SoapMustUnderstandError) as info:
        parse_envelope(doc, LIMITS)
    error = info.value
    assert error.code == "SOAP_MUST_UNDERSTAND"
    assert fault_code_for(error) == "soap:MustUnderstand"
    fault = parse_xml(build_fault(error)).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "soap:MustUnderstand"
    assert fault.findtext(f"detail/{{{COMMON}}}ErrorDetail/{{{COMMON}}}Code") == error.code


def test_understood_is_the_callers_choice() -> None:
    doc = envelope(header(block("urn:wsse", "1")) + body())
    assert parse_envelope(doc, LIMITS, understood=frozenset({"urn:wsse"})).header is not None
    strict = envelope(header(block(ECASE_HEADER, "1")) + body())
    with pytest.raises(SoapMustUnderstandError):
        parse_envelope(strict, LIMITS, understood=frozenset())


@pytest.mark.parametrize(
    "blk",
    [
        block("urn:wsse"),
        block("urn:wsse", "0"),
        block("urn:wsse", "false"),
        block("urn:wsse", "1", actor="urn:some-intermediary"),
    ],
)
def test_optional_or_foreign_blocks_are_ignored(blk: str) -> None:
    parse_envelope(envelope(header(blk) + body()), LIMITS)


def test_next_actor_means_us() -> None:
    blk = block("urn:wsse", "1", actor="http://schemas.xmlsoap.org/soap/actor/next")
    with pytest.raises(SoapMustUnderstandError):
        parse_envelope(envelope(header(blk) + body()), LIMITS)


def test_must_understand_must_be_boolean() -> None:
    with pytest.raises(SoapEnvelopeError, match="mustUnderstand"):
        parse_envelope(envelope(header(block("urn:wsse", "yes")) + body()), LIMITS)


def test_header_blocks_must_be_qualified() -> None:
    with pytest.raises(SoapEnvelopeError, match="namespace"):
        parse_envelope(envelope(header("<id>abc</id>") + body()), LIMITS)


# -- faults ------------------------------------------------------------------------------------


def test_other_faultcodes_unchanged() -> None:
    assert fault_code_for(UnknownOperationError("x")) == "soap:Client"
    assert fault_code_for(SoapEnvelopeError("x")) == "soap:Client"
