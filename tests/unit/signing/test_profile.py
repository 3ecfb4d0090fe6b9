"""The in-place signature profile (docs/SIGNATURE-PROFILE.md) and the refusals around it.

Every payload is verified where it was received: inside the parsed SOAP envelope, its
``ds:Reference URI="#<Id>"`` naming the Body's payload element, the only element in the whole
message that carries that Id.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod, SignatureMethod

from gateway.errors import SchemaValidationError, SignatureInvalidError, UntrustedSignerError
from gateway.ns import COMMON, DS, ECASE, SOAP_ENV
from gateway.signing import Signer, TrustStore
from gateway.signing.keys import load_private_key
from gateway.soap.envelope import build_ack, build_envelope, build_fault, parse_envelope
from gateway.xml import SchemaRegistry, XmlLimits, parse_xml, serialize

from .support import PAYLOAD_NS, Pair, c14n, payload, payload_bytes

T = f"{{{PAYLOAD_NS}}}"
SIG = f"{{{DS}}}Signature"
LIMITS = XmlLimits()
XSD = Path(__file__).resolve().parents[3] / "xsd"
HEADER = b'<h:Trace xmlns:h="urn:trace">abc</h:Trace>'


def envelope_with(signed: etree._Element, header: bytes | None = HEADER) -> bytes:
    return build_envelope(serialize(signed, declaration=False), header)


def in_place(raw: bytes) -> etree._Element:
    """The payload element as the gateway reads it: inside the parsed envelope."""
    return parse_envelope(raw, LIMITS, understood=frozenset()).body


def legacy_sign(pair: Pair, element: etree._Element) -> etree._Element:
    """The earlier profile: Reference URI="" over the payload on its own."""
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    cert = pair.cert.read_bytes().decode()
    return signer.sign(element, key=load_private_key(pair.key), cert=cert)


# -- accepted -------------------------------------------------------------------------------


@pytest.mark.parametrize("signer_name", ["alice", "alice_ec"])
def test_payload_verifies_in_place_inside_the_envelope(
    signer_name: str, request: pytest.FixtureRequest, trust_alice: TrustStore
) -> None:
    signer: Signer = request.getfixturevalue(signer_name)
    body = in_place(envelope_with(signer.sign(payload())))
    assert body.getparent().tag == f"{{{SOAP_ENV}}}Body", "verified where it was received"
    verified = trust_alice.verify(body)
    assert c14n(verified) == c14n(payload())
    assert verified.find(SIG) is None


def test_the_id_of_other_attributes_may_differ(alice: Signer, trust_alice: TrustStore) -> None:
    # Other Id-like attributes elsewhere are fine as long as their values differ.
    raw = envelope_with(
        alice.sign(payload()), b'<h:Trace xmlns:h="urn:trace" Id="trace-1">abc</h:Trace>'
    )
    trust_alice.verify(in_place(raw))


# -- refused: the Id ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "carrier",
    [
        '<h:Trace xmlns:h="urn:trace" Id="{id}">a</h:Trace>',
        '<h:Trace xmlns:h="urn:trace" ID="{id}">a</h:Trace>',
        '<h:Trace xmlns:h="urn:trace" xml:id="{id}">a</h:Trace>',
        '<h:Trace xmlns:h="urn:trace" xmlns:wsu="urn:wsu" wsu:Id="{id}">a</h:Trace>',
    ],
    ids=["Id", "ID", "xml-id", "wsu-Id"],
)
def test_two_elements_with_the_same_id_are_refused(
    alice: Signer, trust_alice: TrustStore, carrier: str
) -> None:
    signed = alice.sign(payload())
    header = carrier.format(id=signed.get("Id")).encode()
    # The signature itself is intact (the header is not signed) ...
    trust_alice.verify(in_place(envelope_with(signed)))
    # ... but a toolkit could resolve the Reference to the header block instead.
    with pytest.raises(SignatureInvalidError, match="2 elements in the message carry the Id"):
        trust_alice.verify(in_place(envelope_with(signed, header)))


def test_same_id_inside_the_payload_is_refused(alice: Signer, trust_alice: TrustStore) -> None:
    signed = alice.sign(payload())
    signed.find(f"{T}Person").set("Id", signed.get("Id"))
    with pytest.raises(SignatureInvalidError, match="2 elements"):
        trust_alice.verify(in_place(envelope_with(signed)))


def test_reference_to_an_element_that_is_not_the_payload_is_refused(
    rsa_pairs: dict[str, Pair], trust_alice: TrustStore
) -> None:
    # A correct signature over the Person element, hung on the payload root: the reference
    # resolves, the digest matches, but what is signed is not the message.
    document = payload()
    document.find(f"{T}Person").set("Id", "person")
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signed = signer.sign(
        document,
        key=load_private_key(rsa_pairs["alice"].key),
        cert=rsa_pairs["alice"].cert.read_bytes().decode(),
        reference_uri="#person",
    )
    assert signed[-1].tag == SIG and signed.get("Id") is None
    with pytest.raises(SignatureInvalidError, match="carries no Id attribute"):
        trust_alice.verify(in_place(envelope_with(signed)))
    signed.set("Id", "root")  # the payload has an Id, but the Reference names another one
    with pytest.raises(SignatureInvalidError, match="does not name the signed element"):
        trust_alice.verify(in_place(envelope_with(signed)))


def test_signed_element_outside_the_body_is_refused(alice: Signer, trust_alice: TrustStore) -> None:
    # A correctly signed payload moved into the header: not the message's payload.
    signed = serialize(alice.sign(payload()), declaration=False)
    raw = build_envelope(b'<x:Other xmlns:x="urn:x"/>', signed)
    header_block = parse_xml(raw)[0][0]
    with pytest.raises(SignatureInvalidError, match="not the SOAP Body's payload element"):
        trust_alice.verify(header_block)


def test_payload_nested_below_the_body_child_is_refused(
    alice: Signer, trust_alice: TrustStore
) -> None:
    signed = serialize(alice.sign(payload()), declaration=False)
    raw = build_envelope(b'<x:Wrap xmlns:x="urn:x">' + signed + b"</x:Wrap>")
    nested = parse_xml(raw)[0][0][0]
    with pytest.raises(SignatureInvalidError, match="not the SOAP Body's payload element"):
        trust_alice.verify(nested)


@pytest.mark.parametrize("uri", ["#", "#1digit", "#a b", "other.xml#x", "#xpointer(/)"])
def test_reference_uris_outside_the_profile_are_refused(
    alice: Signer, trust_alice: TrustStore, uri: str
) -> None:
    signed = alice.sign(payload())
    signed.find(f".//{{{DS}}}Reference").set("URI", uri)
    with pytest.raises(SignatureInvalidError, match="is not accepted; expected one ds:Reference"):
        trust_alice.verify(in_place(envelope_with(signed)))


# -- refused: URI="" (the earlier profile) --------------------------------------------------


def test_empty_uri_is_refused_by_default(
    rsa_pairs: dict[str, Pair], trust_alice: TrustStore
) -> None:
    signed = legacy_sign(rsa_pairs["alice"], payload())
    assert signed.find(f".//{{{DS}}}Reference").get("URI") == ""
    with pytest.raises(SignatureInvalidError) as info:
        trust_alice.verify(in_place(envelope_with(signed)))
    assert info.value.code == "SIG_INVALID"
    assert 'URI="" means the whole envelope' in info.value.message
    assert 'URI="#<Id>"' in info.value.message, "the refusal says what the profile expects"
    assert "SIGNATURE-PROFILE.md" in info.value.message


def test_empty_uri_is_accepted_only_when_switched_on(rsa_pairs: dict[str, Pair]) -> None:
    signed = legacy_sign(rsa_pairs["alice"], payload())
    store = TrustStore.from_files([rsa_pairs["alice"].cert], accept_legacy_uri=True)
    assert c14n(store.verify(in_place(envelope_with(signed)))) == c14n(payload())
    # The switch does not relax anything else: the new profile still verifies, wrapping
    # is still refused, and the content is still checked.
    store.verify(
        in_place(
            envelope_with(
                Signer.from_files(rsa_pairs["alice"].key, rsa_pairs["alice"].cert).sign(payload())
            )
        )
    )
    altered = copy.deepcopy(signed)
    altered.find(f"{T}MessageId").text = "forged"
    with pytest.raises(SignatureInvalidError):
        store.verify(in_place(envelope_with(altered)))
    extra_transform = copy.deepcopy(signed)
    transforms = extra_transform.find(f".//{{{DS}}}Transforms")
    etree.SubElement(
        transforms, f"{{{DS}}}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"
    )
    with pytest.raises(SignatureInvalidError, match="legacy"):
        store.verify(in_place(envelope_with(extra_transform)))


def test_the_switch_comes_from_configuration() -> None:
    from gateway.config import SigningSettings

    assert SigningSettings(key=Path("k"), certificate=Path("c")).accept_legacy_uri is False


# -- refused: transforms and canonicalisation -----------------------------------------------

ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
INCLUSIVE = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"


@pytest.mark.parametrize(
    "transforms",
    [
        [ENVELOPED],
        [EXC],
        [EXC, ENVELOPED],
        [ENVELOPED, INCLUSIVE],
        [ENVELOPED, EXC + "WithComments"],
        [ENVELOPED, EXC, "http://www.w3.org/TR/1999/REC-xpath-19991116"],
        [],
    ],
    ids=["enveloped-only", "c14n-only", "swapped", "inclusive", "with-comments", "xpath", "none"],
)
def test_wrong_transforms_are_refused(
    alice: Signer, trust_alice: TrustStore, transforms: list[str]
) -> None:
    signed = alice.sign(payload())
    node = signed.find(f".//{{{DS}}}Transforms")
    for child in list(node):
        node.remove(child)
    for algorithm in transforms:
        etree.SubElement(node, f"{{{DS}}}Transform", Algorithm=algorithm)
    with pytest.raises(SignatureInvalidError, match=r"transforms .*are not accepted"):
        trust_alice.verify(in_place(envelope_with(signed)))


def test_inclusive_c14n_of_signed_info_is_refused(
    rsa_pairs: dict[str, Pair], trust_alice: TrustStore
) -> None:
    # Inclusive c14n of SignedInfo in place would pull in the envelope's namespaces.
    element = payload()
    element.set("Id", "p1")
    signed = XMLSigner(
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
        signature_algorithm=SignatureMethod.RSA_SHA256,
    ).sign(
        element,
        key=load_private_key(rsa_pairs["alice"].key),
        cert=rsa_pairs["alice"].cert.read_bytes().decode(),
        reference_uri="#p1",
    )
    with pytest.raises(SignatureInvalidError, match="SignedInfo canonicalization"):
        trust_alice.verify(in_place(envelope_with(signed)))


def test_profile_refusal_comes_before_trust(mallory: Signer, trust_alice: TrustStore) -> None:
    # Shape first, then trust, then crypto: an untrusted signer with a wrong shape is told
    # about the shape; with the right shape, about trust.
    signed = mallory.sign(payload())
    trust_alice_untrusted = pytest.raises(UntrustedSignerError)
    with trust_alice_untrusted:
        trust_alice.verify(in_place(envelope_with(signed)))
    signed.find(f".//{{{DS}}}Reference").set("URI", "")
    with pytest.raises(SignatureInvalidError):
        trust_alice.verify(in_place(envelope_with(signed)))


# -- signed receipts ------------------------------------------------------------------------


def test_signed_acknowledgement_verifies_in_place_and_validates(
    alice: Signer, trust_alice: TrustStore
) -> None:
    raw = build_ack(
        ECASE, message_id="TIS-1", status="ACCEPTED", reference="r-1", header=HEADER, signer=alice
    )
    body = in_place(raw)
    assert body.get("Id") and body[-1].tag == SIG
    verified = trust_alice.verify(body)
    assert verified.findtext(f"{{{ECASE}}}Status") == "ACCEPTED"
    schemas = SchemaRegistry(XSD)
    schemas.validate(body, "ecase/messages.xsd")  # the XSD allows the Id and the signature
    unsigned = in_place(build_ack(ECASE, message_id="TIS-1", status="ACCEPTED", reference="r"))
    assert unsigned.get("Id") is None and unsigned.find(SIG) is None


def test_signed_fault_detail_verifies_in_place(alice: Signer, trust_alice: TrustStore) -> None:
    error = SchemaValidationError("Person.PersonalCode: '010190-12345' is not valid \x01")
    raw = build_fault(error, alice)
    root = parse_xml(raw)
    detail = root.find(f".//{{{COMMON}}}ErrorDetail")
    assert detail is not None and detail.getparent().tag == "detail"
    verified = trust_alice.verify(detail)
    assert verified.findtext(f"{{{COMMON}}}Code") == "XSD_INVALID"
    assert "010190-12345" not in raw.decode(), "still masked"
    SchemaRegistry(XSD).validate(detail, "common/common.xsd")
    # The same refusal unsigned is the same fault without Id and signature.
    plain = parse_xml(build_fault(error)).find(f".//{{{COMMON}}}ErrorDetail")
    assert plain.get("Id") is None and plain.find(SIG) is None


def test_altered_receipt_is_invalid(alice: Signer, trust_alice: TrustStore) -> None:
    raw = build_ack(ECASE, message_id="TIS-1", status="ACCEPTED", reference="r", signer=alice)
    with pytest.raises(SignatureInvalidError):
        trust_alice.verify(in_place(raw.replace(b"ACCEPTED", b"DUPLICATE")))


def test_verify_bytes_of_a_payload_document(alice: Signer, trust_alice: TrustStore) -> None:
    # A payload on its own (cli verify, tests) is its own root: still the in-place profile.
    data = alice.sign_bytes(payload_bytes())
    assert c14n(trust_alice.verify_bytes(data)) == c14n(payload())
