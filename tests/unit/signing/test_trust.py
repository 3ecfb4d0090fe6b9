from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from gateway.errors import (
    ConfigError,
    SignatureInvalidError,
    SignatureMissingError,
    UntrustedSignerError,
)
from gateway.ns import DS, SOAP_ENV
from gateway.signing import Signer, TrustStore
from gateway.signing.keys import load_private_key
from gateway.xml import parse_xml, serialize

from .support import PAYLOAD_NS, CaSetup, Pair, c14n, issue_ca, issue_leaf, payload, payload_bytes

T = f"{{{PAYLOAD_NS}}}"
SIG = f"{{{DS}}}Signature"


def signed_bytes(signer: Signer) -> bytes:
    return serialize(signer.sign(payload()), declaration=False)


# -- the three outcomes ---------------------------------------------------------------------


def test_no_signature_is_missing(trust_alice: TrustStore) -> None:
    with pytest.raises(SignatureMissingError) as info:
        trust_alice.verify(payload())
    assert info.value.code == "SIG_MISSING"


def test_enveloping_signature_is_invalid(alice: Signer, trust_alice: TrustStore) -> None:
    signature = alice.sign(payload()).find(SIG)
    with pytest.raises(SignatureInvalidError, match="enveloping"):
        trust_alice.verify(signature)


def test_altered_text_is_invalid(alice: Signer, trust_alice: TrustStore) -> None:
    signed = alice.sign(payload())
    signed.find(f"{T}Person/{T}FirstName").text = "Pēteris"
    with pytest.raises(SignatureInvalidError) as info:
        trust_alice.verify(signed)
    assert info.value.code == "SIG_INVALID"
    assert isinstance(info.value.__cause__, Exception), "third-party error kept as the cause"


def test_altered_attribute_is_invalid(alice_ec: Signer, trust_alice: TrustStore) -> None:
    signed = alice_ec.sign(payload())
    signed.find(f"{T}Person").set("role", "victim")
    with pytest.raises(SignatureInvalidError):
        trust_alice.verify(signed)


def test_removed_element_is_invalid(alice: Signer, trust_alice: TrustStore) -> None:
    signed = alice.sign(payload())
    signed.remove(signed.find(f"{T}Obligation"))
    with pytest.raises(SignatureInvalidError):
        trust_alice.verify(signed)


def test_altered_signature_value_is_invalid(alice: Signer, trust_alice: TrustStore) -> None:
    signed = alice.sign(payload())
    value = signed.find(f"{SIG}/{{{DS}}}SignatureValue")
    value.text = ("B" if value.text[0] == "A" else "A") + value.text[1:]
    with pytest.raises(SignatureInvalidError):
        trust_alice.verify(signed)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda sig: sig.find(f"{{{DS}}}SignatureValue").__setattr__("text", "***not base64***"),
        lambda sig: sig.find(f"{{{DS}}}SignatureValue").__setattr__("text", None),
        lambda sig: sig.remove(sig.find(f"{{{DS}}}SignedInfo")),
        lambda sig: sig.remove(sig.find(f"{{{DS}}}KeyInfo")),
        lambda sig: sig.find(f".//{{{DS}}}X509Certificate").__setattr__("text", "QUJD"),
        lambda sig: sig.find(f".//{{{DS}}}SignatureMethod").set(
            "Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
        ),
        lambda sig: sig.find(f".//{{{DS}}}DigestMethod").set(
            "Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1"
        ),
        lambda sig: sig.find(f".//{{{DS}}}Transform").set(
            "Algorithm", "http://www.w3.org/TR/1999/REC-xslt-19991116"
        ),
    ],
    ids=[
        "bad-base64",
        "empty-value",
        "no-signedinfo",
        "no-keyinfo",
        "bad-cert",
        "sha1-method",
        "sha1-digest",
        "xslt",
    ],
)
def test_malformed_signature_is_invalid(alice: Signer, trust_alice: TrustStore, mangle) -> None:
    signed = alice.sign(payload())
    mangle(signed.find(SIG))
    with pytest.raises(SignatureInvalidError):
        trust_alice.verify(signed)


def test_unknown_signer_is_untrusted(mallory: Signer, trust_alice: TrustStore) -> None:
    with pytest.raises(UntrustedSignerError) as info:
        trust_alice.verify(mallory.sign(payload()))
    assert info.value.code == "SIG_UNTRUSTED"
    assert mallory.fingerprint in info.value.message


def test_unknown_signer_and_altered_content_is_invalid(
    mallory: Signer, trust_alice: TrustStore
) -> None:
    # Untrusted *and* broken: the content was altered, which is the more basic failure.
    signed = mallory.sign(payload())
    signed.find(f"{T}MessageId").text = "msg-forged"
    with pytest.raises(SignatureInvalidError):
        trust_alice.verify(signed)


def test_trusted_cert_in_keyinfo_but_signed_by_another_key(
    alice: Signer, mallory: Signer, trust_alice: TrustStore
) -> None:
    # Mallory signs, then swaps in Alice's certificate: verification uses the pinned key only.
    signed = mallory.sign(payload())
    alice_cert = alice.sign(payload()).find(f".//{{{DS}}}X509Certificate").text
    signed.find(f".//{{{DS}}}X509Certificate").text = alice_cert
    with pytest.raises(SignatureInvalidError):
        trust_alice.verify(signed)


def test_expired_pinned_certificate_is_untrusted(
    tmp_path: Path, rsa_pairs: dict[str, Pair]
) -> None:
    ca_key, ca_cert = issue_ca(tmp_path, "Expiring CA")
    now = dt.datetime.now(dt.UTC)
    pair = issue_leaf(
        tmp_path,
        ca_key,
        ca_cert,
        "expired",
        not_before=now - dt.timedelta(days=60),
        not_after=now - dt.timedelta(days=1),
    )
    # Signer.from_files refuses an expired certificate, so build the Signer directly.
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    signer = Signer(load_private_key(pair.key), cert, "rsa-sha256")
    store = TrustStore.from_files([pair.cert])
    with pytest.raises(UntrustedSignerError, match="validity"):
        store.verify(signer.sign(payload()))


# -- CA-issued certificates -----------------------------------------------------------------


def test_ca_issued_certificate_accepted_via_ca(ca_setup: CaSetup) -> None:
    signer = Signer.from_files(ca_setup.leaf.key, ca_setup.leaf.cert)
    store = TrustStore.from_files([], ca=ca_setup.ca_cert)
    assert c14n(store.verify(signer.sign(payload()))) == c14n(payload())


def test_ca_issued_certificate_rejected_without_ca(
    ca_setup: CaSetup, rsa_pairs: dict[str, Pair]
) -> None:
    signer = Signer.from_files(ca_setup.leaf.key, ca_setup.leaf.cert)
    store = TrustStore.from_files([rsa_pairs["alice"].cert])
    with pytest.raises(UntrustedSignerError):
        store.verify(signer.sign(payload()))


def test_ca_issued_certificate_rejected_by_another_ca(tmp_path: Path, ca_setup: CaSetup) -> None:
    _, other_ca = issue_ca(tmp_path, "Other CA")
    signer = Signer.from_files(ca_setup.leaf.key, ca_setup.leaf.cert)
    with pytest.raises(UntrustedSignerError):
        TrustStore.from_files([], ca=other_ca).verify(signer.sign(payload()))


def test_self_signed_cert_is_not_accepted_by_ca(alice: Signer, ca_setup: CaSetup) -> None:
    with pytest.raises(UntrustedSignerError):
        TrustStore.from_files([], ca=ca_setup.ca_cert).verify(alice.sign(payload()))


def test_pinned_and_ca_together(alice: Signer, ca_setup: CaSetup, rsa_pairs) -> None:
    store = TrustStore.from_files([rsa_pairs["alice"].cert], ca=ca_setup.ca_cert)
    ca_signer = Signer.from_files(ca_setup.leaf.key, ca_setup.leaf.cert)
    store.verify(alice.sign(payload()))
    store.verify(ca_signer.sign(payload()))


# -- signature wrapping ---------------------------------------------------------------------


def test_wrapping_signed_content_moved_under_a_forged_root(
    alice: Signer, trust_alice: TrustStore
) -> None:
    # Classic XSW: the forged root carries the real signature; the signed original is hidden
    # in an extension element so that "the signature verifies" over *something*.
    signed = alice.sign(payload())
    signature = signed.find(SIG)
    signed.remove(signature)
    forged = payload()
    forged.find(f"{T}Person/{T}LastName").text = "Forged"
    hideout = etree.SubElement(forged, f"{T}Extension")
    hideout.append(signed)
    forged.append(signature)
    with pytest.raises(SignatureInvalidError):
        trust_alice.verify(forged)


def test_wrapping_signed_document_nested_in_a_forged_root(
    alice: Signer, trust_alice: TrustStore
) -> None:
    # The signature stays with its content but one level down: not where we accept it.
    forged = payload()
    forged.find(f"{T}MessageId").text = "msg-forged"
    forged.append(alice.sign(payload()))
    with pytest.raises(SignatureInvalidError, match="direct child"):
        trust_alice.verify(forged)


def test_wrapping_unsigned_sibling_with_the_same_name(
    alice: Signer, trust_alice: TrustStore
) -> None:
    signed = alice.sign(payload())
    person = signed.find(f"{T}Person")
    evil = copy.deepcopy(person)
    evil.find(f"{T}PersonalCode").text = "320000-00000"
    person.addprevious(evil)
    with pytest.raises(SignatureInvalidError):
        trust_alice.verify(signed)


def test_wrapping_second_signature_is_refused(
    alice: Signer, mallory: Signer, trust_alice: TrustStore
) -> None:
    signed = alice.sign(payload())
    extra = mallory.sign(payload()).find(SIG)
    signed.append(extra)
    with pytest.raises(SignatureInvalidError, match="exactly one"):
        trust_alice.verify(signed)
    # ...and also when the second one comes first.
    signed = alice.sign(payload())
    signed.insert(0, copy.deepcopy(extra))
    with pytest.raises(SignatureInvalidError, match="exactly one"):
        trust_alice.verify(signed)


def test_wrapping_reference_to_an_id_is_refused(alice: Signer, trust_alice: TrustStore) -> None:
    signed = alice.sign(payload())
    signed.find(f".//{{{DS}}}Reference").set("URI", "#part")
    with pytest.raises(SignatureInvalidError, match="URI"):
        trust_alice.verify(signed)


def test_comment_injection_returns_only_signed_text(alice: Signer, trust_alice: TrustStore) -> None:
    # Exclusive c14n without comments ignores comments, so this still verifies; what comes
    # back must be the canonical signed text, not the first fragment of a split text node.
    signed = alice.sign(payload())
    name = signed.find(f"{T}Person/{T}FirstName")
    name.text = "Jā"
    comment = etree.Comment(" injected ")
    comment.tail = "nis"
    name.append(comment)
    verified = trust_alice.verify(signed)
    assert verified.find(f"{T}Person/{T}FirstName").text == "Jānis"
    assert not list(verified.iter(etree.Comment))


def test_only_signed_content_is_returned(alice: Signer, trust_alice: TrustStore) -> None:
    signed = alice.sign(payload())
    verified = trust_alice.verify(signed)
    assert verified is not signed
    assert verified.find(SIG) is None
    assert c14n(verified) == c14n(payload())


# -- SOAP embedding -------------------------------------------------------------------------


def _in_envelope(payload_xml: bytes) -> bytes:
    return (
        (
            f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:t="{PAYLOAD_NS}" '
            'xmlns:x="urn:unrelated" xmlns="urn:default-on-envelope">'
            "<soap:Header><x:Trace>abc</x:Trace></soap:Header>"
            '<soap:Body xmlns:wsu="urn:wsu" xmlns:c="urn:lv:vpd:plus:common:v1">'
        ).encode()
        + payload_xml
        + b"\n  </soap:Body></soap:Envelope>"
    )


def test_signed_payload_inside_soap_body_verifies(alice: Signer, trust_alice: TrustStore) -> None:
    envelope = parse_xml(_in_envelope(signed_bytes(alice)))
    body_child = envelope.find(f"{{{SOAP_ENV}}}Body")[0]
    assert c14n(trust_alice.verify(body_child)) == c14n(payload())


def test_signed_payload_cut_out_of_soap_body_verifies(
    alice_ec: Signer, trust_alice: TrustStore
) -> None:
    envelope = parse_xml(_in_envelope(signed_bytes(alice_ec)))
    body_child = envelope.find(f"{{{SOAP_ENV}}}Body")[0]
    # Cut out: serialised on its own, it now carries the ancestors' namespace declarations.
    cut = etree.tostring(body_child, with_tail=False)
    assert b"urn:unrelated" in cut
    assert c14n(trust_alice.verify(parse_xml(cut))) == c14n(payload())


def test_payload_relying_on_ancestor_namespace_declarations(
    alice: Signer, trust_alice: TrustStore
) -> None:
    # The sender signed standalone; an intermediary re-serialised the payload inside the SOAP
    # body and dropped the now-redundant xmlns:t/xmlns:c on the payload root.
    data = signed_bytes(alice)
    stripped = re.sub(rb' xmlns:(t|c)="[^"]*"', b"", data, count=2)
    assert stripped.count(b"xmlns:t=") == 0
    envelope = parse_xml(_in_envelope(stripped))
    body_child = envelope.find(f"{{{SOAP_ENV}}}Body")[0]
    assert c14n(trust_alice.verify(body_child)) == c14n(payload())


def test_altered_payload_inside_soap_body_is_invalid(
    alice: Signer, trust_alice: TrustStore
) -> None:
    data = signed_bytes(alice).replace(b"B\xc4\x93rzi\xc5\x86\xc5\xa1", b"Forged")
    envelope = parse_xml(_in_envelope(data))
    with pytest.raises(SignatureInvalidError):
        trust_alice.verify(envelope.find(f"{{{SOAP_ENV}}}Body")[0])


# -- loading --------------------------------------------------------------------------------


def test_trust_store_needs_something_to_trust() -> None:
    with pytest.raises(ConfigError):
        TrustStore.from_files([])


def test_trust_store_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("gone.pem")):
        TrustStore.from_files([tmp_path / "gone.pem"])


def test_trust_store_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"\x00\x01 garbage")
    with pytest.raises(ConfigError, match=re.escape("bad.pem")):
        TrustStore.from_files([bad])
    with pytest.raises(ConfigError, match=re.escape("bad.pem")):
        TrustStore.from_files([], ca=bad)


def test_trust_store_ca_file_must_hold_ca_certificates(rsa_pairs: dict[str, Pair]) -> None:
    with pytest.raises(ConfigError, match="not a CA"):
        TrustStore.from_files([], ca=rsa_pairs["alice"].cert)


def test_trust_store_pem_bundle_and_der(
    tmp_path: Path, rsa_pairs: dict[str, Pair], alice: Signer, mallory: Signer
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        rsa_pairs["alice"].cert.read_bytes() + rsa_pairs["mallory"].cert.read_bytes()
    )
    der = tmp_path / "alice.der"
    der.write_bytes(alice.certificate.public_bytes(serialization.Encoding.DER))
    store = TrustStore.from_files([bundle])
    assert store.fingerprints == {alice.fingerprint, mallory.fingerprint}
    store.verify(mallory.sign(payload()))
    assert TrustStore.from_files([der]).fingerprints == {alice.fingerprint}


def test_verify_bytes(alice: Signer, trust_alice: TrustStore) -> None:
    assert c14n(trust_alice.verify_bytes(alice.sign_bytes(payload_bytes()))) == c14n(payload())
