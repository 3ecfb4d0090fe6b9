"""Cross-checks against an independent XMLDSig implementation (libxmlsec1 via python-xmlsec).

If both implementations agree in both directions, our signatures are standard XMLDSig and not
merely "whatever signxml accepts".
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree

from gateway.errors import SignatureInvalidError, UntrustedSignerError
from gateway.ns import DS
from gateway.signing import Signer, TrustStore
from gateway.xml import parse_xml, serialize

from .support import PAYLOAD_NS, Pair, c14n, payload, payload_bytes

xmlsec = pytest.importorskip("xmlsec")
consts = xmlsec.constants


def _xmlsec_verify(data: bytes, cert_pem: bytes) -> None:
    """Verify with libxmlsec1, using only the public key of the given certificate."""
    root = parse_xml(data)
    node = xmlsec.tree.find_node(root, consts.NodeSignature)
    assert node is not None
    ctx = xmlsec.SignatureContext()
    # Load the key from the certificate we trust, not from the document's KeyInfo.
    ctx.key = xmlsec.Key.from_memory(cert_pem, consts.KeyDataFormatCertPem)
    ctx.verify(node)


def _xmlsec_sign(pair: Pair, data: bytes, transform: object) -> bytes:
    """Enveloped, exc-c14n, SHA-256, X509Data with the certificate, built by xmlsec.template."""
    root = parse_xml(data)
    signature = xmlsec.template.create(root, consts.TransformExclC14N, transform, ns="ds")
    root.append(signature)
    ref = xmlsec.template.add_reference(signature, consts.TransformSha256, uri="")
    xmlsec.template.add_transform(ref, consts.TransformEnveloped)
    xmlsec.template.add_transform(ref, consts.TransformExclC14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    x509_data = xmlsec.template.add_x509_data(key_info)
    xmlsec.template.x509_data_add_certificate(x509_data)

    ctx = xmlsec.SignatureContext()
    key = xmlsec.Key.from_file(str(pair.key), consts.KeyDataFormatPem)
    key.load_cert_from_file(str(pair.cert), consts.KeyDataFormatPem)
    ctx.key = key
    ctx.sign(signature)
    return serialize(root)


@pytest.mark.parametrize("signer_name", ["alice", "alice_ec"])
def test_our_signature_verifies_with_xmlsec(
    signer_name: str, request: pytest.FixtureRequest
) -> None:
    signer: Signer = request.getfixturevalue(signer_name)
    data = signer.sign_bytes(payload_bytes())
    cert_pem = signer.certificate.public_bytes(serialization.Encoding.PEM)
    _xmlsec_verify(data, cert_pem)


def test_xmlsec_rejects_our_signature_after_tampering(alice: Signer) -> None:
    # Makes sure the positive cross-check above is not vacuous.
    data = alice.sign_bytes(payload_bytes()).replace(b"VPD-2024-000123", b"VPD-2024-999999")
    cert_pem = alice.certificate.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(xmlsec.Error):
        _xmlsec_verify(data, cert_pem)


@pytest.mark.parametrize(
    ("pair_fixture", "name", "transform"),
    [
        ("rsa_pairs", "alice", "TransformRsaSha256"),
        ("ec_pairs", "alice-ec", "TransformEcdsaSha256"),
    ],
)
def test_xmlsec_signature_verifies_with_our_trust_store(
    pair_fixture: str, name: str, transform: str, request: pytest.FixtureRequest
) -> None:
    pair: Pair = request.getfixturevalue(pair_fixture)[name]
    data = _xmlsec_sign(pair, payload_bytes(), getattr(consts, transform))

    root = parse_xml(data)
    signature = root[-1]
    assert signature.tag == f"{{{DS}}}Signature"
    assert signature.find(f".//{{{DS}}}X509Certificate").text.strip()

    store = TrustStore.from_files([pair.cert])
    verified = store.verify(root)
    assert c14n(verified) == c14n(payload())
    assert verified.find(f"{{{PAYLOAD_NS}}}MessageId").text == "msg-0"


def test_xmlsec_signature_by_unpinned_key_is_untrusted(
    rsa_pairs: dict[str, Pair],
) -> None:
    data = _xmlsec_sign(rsa_pairs["mallory"], payload_bytes(), consts.TransformRsaSha256)
    with pytest.raises(UntrustedSignerError):
        TrustStore.from_files([rsa_pairs["alice"].cert]).verify_bytes(data)


def test_xmlsec_signature_tampered_is_invalid(rsa_pairs: dict[str, Pair]) -> None:
    data = _xmlsec_sign(rsa_pairs["alice"], payload_bytes(), consts.TransformRsaSha256)
    data = data.replace(b"msg-0", b"msg-1")
    with pytest.raises(SignatureInvalidError):
        TrustStore.from_files([rsa_pairs["alice"].cert]).verify_bytes(data)


def test_xmlsec_signed_payload_in_soap_body(rsa_pairs: dict[str, Pair]) -> None:
    signed = _xmlsec_sign(rsa_pairs["alice"], payload_bytes(), consts.TransformRsaSha256)
    body_payload = etree.tostring(parse_xml(signed))
    envelope = parse_xml(
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:z="urn:z">'
        b"<s:Body>" + body_payload + b"</s:Body></s:Envelope>"
    )
    store = TrustStore.from_files([rsa_pairs["alice"].cert])
    assert c14n(store.verify(envelope[0][0])) == c14n(payload())
