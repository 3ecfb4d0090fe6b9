"""Bounded work before trust is decided (the KeyInfo certificate cap), no PIs in signed text,
no personal data in signature errors."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from gateway.errors import (
    SignatureInvalidError,
    UntrustedSignerError,
    XmlCommentOrPiError,
    XmlLimitError,
)
from gateway.ns import DS
from gateway.signing import Signer, TrustStore
from gateway.xml import XmlLimits, parse_xml, serialize

from .support import PAYLOAD_NS, Pair, c14n, payload

T = f"{{{PAYLOAD_NS}}}"
X509 = f"{{{DS}}}KeyInfo/{{{DS}}}X509Data"


def with_certificates(signer: Signer, total: int, text: str | None = None) -> etree._Element:
    """A payload signed by ``signer`` whose KeyInfo carries ``total`` certificates.

    KeyInfo is outside what the signature covers, so the padding does not break it.
    """
    signed = signer.sign(payload())
    data = signed.find(f"{{{DS}}}Signature/{X509}")
    assert data is not None
    first = data[0]
    for _ in range(total - 1):
        extra = etree.SubElement(data, f"{{{DS}}}X509Certificate")
        extra.text = first.text if text is None else text
    return signed


def test_default_cap_is_a_handful() -> None:
    assert XmlLimits().max_certificates == 4


def test_up_to_the_cap_verifies(alice: Signer, trust_alice: TrustStore) -> None:
    verified = trust_alice.verify(with_certificates(alice, 4))
    assert c14n(verified) == c14n(payload())


def test_over_the_cap_is_refused(alice: Signer, trust_alice: TrustStore) -> None:
    with pytest.raises(XmlLimitError) as info:
        trust_alice.verify(with_certificates(alice, 5))
    assert info.value.code == "XML_LIMIT"
    assert info.value.details[0]["limit"] == "max_certificates"
    assert info.value.details[0]["max"] == 4


def test_cap_is_counted_before_any_certificate_is_decoded(
    alice: Signer, trust_alice: TrustStore
) -> None:
    # Garbage after the first: decoding would say SIG_INVALID; the count comes first.
    signed = with_certificates(alice, 3000, text="not base64")
    with pytest.raises(XmlLimitError):
        trust_alice.verify(signed)
    with pytest.raises(SignatureInvalidError, match="unreadable"):
        trust_alice.verify(with_certificates(alice, 2, text="not base64"))


def test_cap_is_configurable(rsa_pairs: dict[str, Pair], alice: Signer) -> None:
    strict = TrustStore.from_files([rsa_pairs["alice"].cert], max_certificates=1)
    assert strict.max_certificates == 1
    strict.verify(with_certificates(alice, 1))
    with pytest.raises(XmlLimitError):
        strict.verify(with_certificates(alice, 2))


def test_trusts_signer_is_false_past_the_cap(alice: Signer, trust_alice: TrustStore) -> None:
    assert trust_alice.trusts_signer(with_certificates(alice, 1))
    assert not trust_alice.trusts_signer(with_certificates(alice, 5))


def test_processing_instruction_in_signed_text_is_refused(
    alice: Signer, trust_alice: TrustStore
) -> None:
    # Signed with the instruction in place (c14n keeps processing instructions), so the
    # signature is valid; the verified tree would still read the first name as "Jā".
    document = payload()
    name = document.find(f"{T}Person/{T}FirstName")
    assert name is not None
    name.text = "Jā"
    pi = etree.ProcessingInstruction("x")
    pi.tail = "nis"
    name.append(pi)
    signed = alice.sign(document)
    with pytest.raises(XmlCommentOrPiError) as info:
        trust_alice.verify(parse_xml(serialize(signed)))
    assert info.value.code == "XML_COMMENT_OR_PI"


def test_verify_does_not_touch_the_input(alice: Signer, trust_alice: TrustStore) -> None:
    signed = alice.sign(payload())
    signed.tail = "tail text after an element cut from a larger tree"
    before = etree.tostring(signed)
    verified = trust_alice.verify(signed)
    assert etree.tostring(signed) == before
    assert verified is not signed


def test_untrusted_personal_certificate_is_not_quoted_with_its_personal_code(
    trust_alice: TrustStore,
) -> None:
    # eID certificates carry the personal code in the subject's serialNumber.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Test Person"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "PNOLV-150390-12345"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    signed = Signer(key, cert, "rsa-sha256").sign(payload())
    with pytest.raises(UntrustedSignerError) as info:
        trust_alice.verify(signed)
    assert "150390-12345" not in info.value.message
    assert "sha256" in info.value.message
