"""Cross-checks against an independent XMLDSig implementation: libxmlsec1, twice over.

* python-xmlsec (libxmlsec1 bound into Python, a dev dependency), and
* the ``xmlsec1`` command line (Debian's xmlsec1, installed by .ci/run), on files: the way a
  partner's developer would check a message.

Both ways, *in place inside a SOAP envelope*: our signatures verify where they sit in the
message, and signatures made in place by libxmlsec1 (``Reference URI="#<Id>"``) are accepted by
our trust store. If two implementations agree both ways, our signatures are standard XMLDSig
and not merely "whatever signxml accepts". The integration test
tests/integration/test_signature_interop.py does the same on messages captured from the wire.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod

from gateway.errors import SignatureInvalidError, UntrustedSignerError
from gateway.ns import DS, SOAP_ENV
from gateway.signing import Signer, TrustStore
from gateway.signing.keys import load_private_key
from gateway.soap.envelope import build_envelope, parse_envelope
from gateway.xml import XmlLimits, parse_xml, serialize

from . import xmlsec1
from .support import PAYLOAD_NS, Pair, c14n, payload, payload_bytes

xmlsec = pytest.importorskip("xmlsec")
consts = xmlsec.constants

ROOT = f"{{{PAYLOAD_NS}}}CaseNotification"
HEADER = b'<h:Trace xmlns:h="urn:trace">abc</h:Trace>'
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"


def in_envelope(signed: bytes | etree._Element) -> bytes:
    data = signed if isinstance(signed, bytes) else serialize(signed, declaration=False)
    if data.startswith(b"<?xml"):
        data = data[data.index(b"?>") + 2 :]
    return build_envelope(data, HEADER)


def body_of(raw: bytes) -> etree._Element:
    return parse_envelope(raw, XmlLimits(), understood=frozenset()).body


# -- python-xmlsec --------------------------------------------------------------------------


def _py_verify_in_place(raw: bytes, cert_pem: bytes) -> None:
    """Verify inside the envelope with libxmlsec1, the key from the pinned certificate."""
    root = parse_xml(raw)
    payload_element = root.find(f"{{{SOAP_ENV}}}Body")[0]
    node = xmlsec.tree.find_node(payload_element, consts.NodeSignature)
    ctx = xmlsec.SignatureContext()
    ctx.register_id(payload_element, "Id")
    ctx.key = xmlsec.Key.from_memory(cert_pem, consts.KeyDataFormatCertPem)
    ctx.verify(node)


def _py_sign_in_place(pair: Pair, data: bytes, transform: object, ref_id: str = "p1") -> bytes:
    """Enveloped, Reference URI="#p1", exc-c14n, SHA-256, X509Data: signed inside the envelope."""
    root = parse_xml(in_envelope(data))
    payload_element = root.find(f"{{{SOAP_ENV}}}Body")[0]
    payload_element.set("Id", ref_id)
    signature = xmlsec.template.create(
        payload_element, consts.TransformExclC14N, transform, ns="ds"
    )
    payload_element.append(signature)
    ref = xmlsec.template.add_reference(signature, consts.TransformSha256, uri=f"#{ref_id}")
    xmlsec.template.add_transform(ref, consts.TransformEnveloped)
    xmlsec.template.add_transform(ref, consts.TransformExclC14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(key_info))
    ctx = xmlsec.SignatureContext()
    ctx.register_id(payload_element, "Id")
    key = xmlsec.Key.from_file(str(pair.key), consts.KeyDataFormatPem)
    key.load_cert_from_file(str(pair.cert), consts.KeyDataFormatPem)
    ctx.key = key
    ctx.sign(signature)
    return serialize(root)


@pytest.mark.parametrize("signer_name", ["alice", "alice_ec"])
def test_our_signature_verifies_in_place_with_python_xmlsec(
    signer_name: str, request: pytest.FixtureRequest
) -> None:
    signer: Signer = request.getfixturevalue(signer_name)
    raw = in_envelope(signer.sign_bytes(payload_bytes()))
    _py_verify_in_place(raw, signer.certificate.public_bytes(serialization.Encoding.PEM))


def test_python_xmlsec_rejects_our_signature_after_tampering(alice: Signer) -> None:
    # Makes sure the positive cross-check above is not vacuous.
    raw = in_envelope(alice.sign_bytes(payload_bytes())).replace(b"VPD-2024-000123", b"VPD-9")
    with pytest.raises(xmlsec.Error):
        _py_verify_in_place(raw, alice.certificate.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize(
    ("pair_fixture", "name", "transform"),
    [
        ("rsa_pairs", "alice", "TransformRsaSha256"),
        ("ec_pairs", "alice-ec", "TransformEcdsaSha256"),
    ],
)
def test_python_xmlsec_signature_in_place_verifies_with_our_trust_store(
    pair_fixture: str, name: str, transform: str, request: pytest.FixtureRequest
) -> None:
    pair: Pair = request.getfixturevalue(pair_fixture)[name]
    raw = _py_sign_in_place(pair, payload_bytes(), getattr(consts, transform))
    body = body_of(raw)
    assert body[-1].tag == f"{{{DS}}}Signature"
    verified = TrustStore.from_files([pair.cert]).verify(body)
    assert c14n(verified) == c14n(payload())
    assert verified.find(f"{{{PAYLOAD_NS}}}MessageId").text == "msg-0"


def test_python_xmlsec_signature_by_unpinned_key_is_untrusted(
    rsa_pairs: dict[str, Pair],
) -> None:
    raw = _py_sign_in_place(rsa_pairs["mallory"], payload_bytes(), consts.TransformRsaSha256)
    with pytest.raises(UntrustedSignerError):
        TrustStore.from_files([rsa_pairs["alice"].cert]).verify(body_of(raw))


def test_python_xmlsec_signature_tampered_is_invalid(rsa_pairs: dict[str, Pair]) -> None:
    raw = _py_sign_in_place(rsa_pairs["alice"], payload_bytes(), consts.TransformRsaSha256)
    with pytest.raises(SignatureInvalidError):
        TrustStore.from_files([rsa_pairs["alice"].cert]).verify(
            body_of(raw.replace(b"msg-0", b"msg-1"))
        )


# -- the xmlsec1 command line ---------------------------------------------------------------


@pytest.mark.parametrize("signer_name", ["alice", "alice_ec"])
def test_xmlsec1_verifies_our_signature_in_place(
    signer_name: str, request: pytest.FixtureRequest, tmp_path: Path, rsa_pairs, ec_pairs
) -> None:
    signer: Signer = request.getfixturevalue(signer_name)
    pair = rsa_pairs["alice"] if signer_name == "alice" else ec_pairs["alice-ec"]
    message = tmp_path / "message.xml"
    message.write_bytes(in_envelope(signer.sign_bytes(payload_bytes())))
    done = xmlsec1.verify(message, pair.cert, ROOT)
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout + done.stderr
    # Not vacuous: another key, or one changed byte, fails.
    wrong = xmlsec1.verify(message, rsa_pairs["mallory"].cert, ROOT)
    assert wrong.returncode != 0
    message.write_bytes(message.read_bytes().replace(b"VPD-2024-000123", b"VPD-2024-000124"))
    assert xmlsec1.verify(message, pair.cert, ROOT).returncode != 0


def test_xmlsec1_fails_the_earlier_empty_uri_profile_in_place(
    rsa_pairs: dict[str, Pair], tmp_path: Path
) -> None:
    # Why the profile changed: URI="" inside SOAP means the whole envelope, so a payload
    # signed on its own fails once it is in the message (and verifies only when cut out).
    pair = rsa_pairs["alice"]
    signed = XMLSigner(
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
    ).sign(payload(), key=load_private_key(pair.key), cert=pair.cert.read_bytes().decode())
    alone, message = tmp_path / "alone.xml", tmp_path / "message.xml"
    alone.write_bytes(serialize(signed))
    message.write_bytes(in_envelope(signed))
    assert xmlsec1.verify(alone, pair.cert).returncode == 0
    assert xmlsec1.verify(message, pair.cert).returncode != 0


def _xmlsec1_signed_envelope(
    tmp_path: Path,
    pair: Pair,
    *,
    ref_id: str = "p1",
    uri: str | None = None,
    transforms: tuple[str, ...] | None = None,
    header: bytes = HEADER,
) -> bytes:
    """A SOAP envelope whose payload xmlsec1 --sign signed in place from a template."""
    template = xmlsec1.signature_template(
        f"#{ref_id}" if uri is None else uri, transforms=transforms
    ).encode()
    body = payload_bytes().replace(
        b"<t:CaseNotification ", f'<t:CaseNotification Id="{ref_id}" '.encode(), 1
    )
    body = body.replace(b"</t:CaseNotification>", template + b"</t:CaseNotification>")
    path = tmp_path / "template.xml"
    path.write_bytes(build_envelope(body, header))
    return xmlsec1.sign(path, pair.key, pair.cert, ROOT)


def test_xmlsec1_signature_in_place_is_accepted(rsa_pairs: dict[str, Pair], tmp_path: Path) -> None:
    pair = rsa_pairs["alice"]
    raw = _xmlsec1_signed_envelope(tmp_path, pair)
    assert b'URI="#p1"' in raw and b"<ds:X509Certificate>" in raw
    (tmp_path / "signed.xml").write_bytes(raw)
    assert xmlsec1.verify(tmp_path / "signed.xml", pair.cert, ROOT).returncode == 0
    verified = TrustStore.from_files([pair.cert]).verify(body_of(raw))
    assert c14n(verified) == c14n(payload())


def test_xmlsec1_signature_by_another_key_is_untrusted(
    rsa_pairs: dict[str, Pair], tmp_path: Path
) -> None:
    raw = _xmlsec1_signed_envelope(tmp_path, rsa_pairs["mallory"])
    with pytest.raises(UntrustedSignerError):
        TrustStore.from_files([rsa_pairs["alice"].cert]).verify(body_of(raw))


def test_xmlsec1_empty_uri_is_refused(rsa_pairs: dict[str, Pair], tmp_path: Path) -> None:
    # xmlsec1 signs the whole envelope for URI="": a valid signature, but not our profile.
    pair = rsa_pairs["alice"]
    raw = _xmlsec1_signed_envelope(tmp_path, pair, uri="")
    (tmp_path / "signed.xml").write_bytes(raw)
    assert xmlsec1.verify(tmp_path / "signed.xml", pair.cert).returncode == 0
    with pytest.raises(SignatureInvalidError, match='URI="" means the whole envelope'):
        TrustStore.from_files([pair.cert]).verify(body_of(raw))


def test_xmlsec1_wrong_transforms_are_refused(rsa_pairs: dict[str, Pair], tmp_path: Path) -> None:
    # Enveloped only: the digest input is then inclusive c14n, which in place pulls in the
    # envelope's namespace declarations. Valid for xmlsec1, refused by the profile.
    pair = rsa_pairs["alice"]
    raw = _xmlsec1_signed_envelope(tmp_path, pair, transforms=(ENVELOPED,))
    (tmp_path / "signed.xml").write_bytes(raw)
    assert xmlsec1.verify(tmp_path / "signed.xml", pair.cert, ROOT).returncode == 0
    with pytest.raises(SignatureInvalidError, match="transforms"):
        TrustStore.from_files([pair.cert]).verify(body_of(raw))


def test_xmlsec1_duplicate_id_in_the_header_is_refused(
    rsa_pairs: dict[str, Pair], tmp_path: Path
) -> None:
    # A header block carrying the payload's Id: whichever one a toolkit resolves, we refuse.
    pair = rsa_pairs["alice"]
    raw = _xmlsec1_signed_envelope(tmp_path, pair)
    forged = raw.replace(
        b'<h:Trace xmlns:h="urn:trace">', b'<h:Trace xmlns:h="urn:trace" Id="p1">', 1
    )
    assert forged != raw
    with pytest.raises(SignatureInvalidError, match="2 elements in the message carry the Id"):
        TrustStore.from_files([pair.cert]).verify(body_of(forged))
