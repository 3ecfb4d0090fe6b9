from __future__ import annotations

import base64
import datetime as dt
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import signxml.signer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

import gateway.signing.keys as keys_module
from gateway.errors import ConfigError
from gateway.ns import DS
from gateway.signing import Signer, TrustStore, fingerprint, init_keys
from gateway.xml import parse_xml, serialize

from .support import Pair, c14n, payload, payload_bytes

DSIG = {"ds": DS}
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


@pytest.mark.parametrize("signer_name", ["alice", "alice_ec"])
def test_round_trip_returns_the_signed_element(
    signer_name: str, request: pytest.FixtureRequest, trust_alice: TrustStore
) -> None:
    signer: Signer = request.getfixturevalue(signer_name)
    original = payload()
    signed = signer.sign(original)

    verified = trust_alice.verify(signed)

    assert c14n(verified) == c14n(original)
    assert verified.find(f".//{{{DS}}}Signature") is None


def test_round_trip_through_bytes(alice: Signer, trust_alice: TrustStore) -> None:
    signed = alice.sign_bytes(payload_bytes())
    assert c14n(trust_alice.verify_bytes(signed)) == c14n(payload())


@pytest.mark.parametrize(
    ("signer_name", "method"),
    [
        ("alice", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"),
        ("alice_ec", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"),
    ],
)
def test_signature_shape(signer_name: str, method: str, request: pytest.FixtureRequest) -> None:
    signer: Signer = request.getfixturevalue(signer_name)
    signed = signer.sign(payload())

    signature = signed[-1]
    assert signature.tag == f"{{{DS}}}Signature", "ds:Signature must be the last child"
    assert len(signed.findall(f".//{{{DS}}}Signature")) == 1
    assert signature.xpath(
        "ds:SignedInfo/ds:CanonicalizationMethod/@Algorithm", namespaces=DSIG
    ) == [EXC_C14N]
    assert signature.xpath("ds:SignedInfo/ds:SignatureMethod/@Algorithm", namespaces=DSIG) == [
        method
    ]
    (reference,) = signature.xpath("ds:SignedInfo/ds:Reference", namespaces=DSIG)
    # In place: the Reference names the signed element's Id, never URI="" (the whole document).
    assert re.fullmatch(r"id-[0-9a-f]{32}", signed.get("Id"))
    assert reference.get("URI") == "#" + signed.get("Id")
    assert reference.xpath("ds:Transforms/ds:Transform/@Algorithm", namespaces=DSIG) == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        EXC_C14N,
    ]
    assert reference.xpath("ds:DigestMethod/@Algorithm", namespaces=DSIG) == [
        "http://www.w3.org/2001/04/xmlenc#sha256"
    ]
    (cert_text,) = signature.xpath(
        "ds:KeyInfo/ds:X509Data/ds:X509Certificate/text()", namespaces=DSIG
    )
    embedded = x509.load_der_x509_certificate(base64.b64decode(cert_text))
    assert embedded == signer.certificate
    # No KeyValue next to the certificate: two key sources would be an ambiguity.
    assert signature.find(f"{{{DS}}}KeyInfo/{{{DS}}}KeyValue") is None


def test_sign_leaves_input_untouched(alice: Signer) -> None:
    original = payload()
    before = c14n(original)
    alice.sign(original)
    assert c14n(original) == before


def test_sign_refuses_an_already_signed_element(alice: Signer) -> None:
    with pytest.raises(ValueError, match="already"):
        alice.sign(alice.sign(payload()))


def test_sign_element_cut_from_a_larger_tree(alice: Signer, trust_alice: TrustStore) -> None:
    outer = parse_xml(
        b'<w:Wrap xmlns:w="urn:wrap"><w:Other/>'
        + payload_bytes()
        + b"tail text that belongs to the wrapper</w:Wrap>"
    )
    signed = alice.sign(outer[1])
    assert c14n(trust_alice.verify(signed)) == c14n(payload())


def test_fingerprint_and_certificate(alice: Signer, rsa_pairs: dict[str, Pair]) -> None:
    cert = x509.load_pem_x509_certificate(rsa_pairs["alice"].cert.read_bytes())
    assert alice.certificate == cert
    assert alice.fingerprint == cert.fingerprint(hashes.SHA256()).hex()
    assert len(alice.fingerprint) == 64
    assert alice.fingerprint not in repr(alice)


def test_keys_are_loaded_once_and_signer_is_thread_safe(
    rsa_pairs: dict[str, Pair], trust_alice: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = keys_module.serialization.load_pem_private_key

    def counting(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(keys_module.serialization, "load_pem_private_key", counting)
    monkeypatch.setattr(signxml.signer, "load_pem_private_key", counting)

    signer = Signer.from_files(rsa_pairs["alice"].key, rsa_pairs["alice"].cert)
    documents = [payload_bytes(n_obligations=3, marker=str(i)) for i in range(50)]

    def sign_and_verify(data: bytes) -> bytes:
        verified = trust_alice.verify(signer.sign(parse_xml(data)))
        return c14n(verified)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(sign_and_verify, documents))

    assert results == [c14n(parse_xml(d)) for d in documents]
    assert calls["n"] == 1, "the private key must be parsed once, at load time"


# -- from_files errors ----------------------------------------------------------------------


def test_missing_key_file_names_the_path(tmp_path: Path, rsa_pairs: dict[str, Pair]) -> None:
    missing = tmp_path / "nope-key.pem"
    with pytest.raises(ConfigError, match=re.escape("nope-key.pem")):
        Signer.from_files(missing, rsa_pairs["alice"].cert)


def test_missing_cert_file_names_the_path(tmp_path: Path, rsa_pairs: dict[str, Pair]) -> None:
    missing = tmp_path / "nope-cert.pem"
    with pytest.raises(ConfigError, match=re.escape("nope-cert.pem")):
        Signer.from_files(rsa_pairs["alice"].key, missing)


def test_garbage_key_file(tmp_path: Path, rsa_pairs: dict[str, Pair]) -> None:
    bad = tmp_path / "bad-key.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match=re.escape("bad-key.pem")):
        Signer.from_files(bad, rsa_pairs["alice"].cert)


def test_garbage_cert_file(tmp_path: Path, rsa_pairs: dict[str, Pair]) -> None:
    bad = tmp_path / "bad-cert.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=re.escape("bad-cert.pem")):
        Signer.from_files(rsa_pairs["alice"].key, bad)


def test_key_algorithm_mismatch(rsa_pairs: dict[str, Pair], ec_pairs: dict[str, Pair]) -> None:
    with pytest.raises(ConfigError, match=re.escape("alice-key.pem")):
        Signer.from_files(rsa_pairs["alice"].key, rsa_pairs["alice"].cert, "ecdsa-sha256")
    with pytest.raises(ConfigError, match=re.escape("alice-ec-key.pem")):
        Signer.from_files(ec_pairs["alice-ec"].key, ec_pairs["alice-ec"].cert, "rsa-sha256")


def test_unknown_algorithm(rsa_pairs: dict[str, Pair]) -> None:
    with pytest.raises(ConfigError, match="rsa-sha1"):
        Signer.from_files(rsa_pairs["alice"].key, rsa_pairs["alice"].cert, "rsa-sha1")


def test_certificate_of_another_key(rsa_pairs: dict[str, Pair]) -> None:
    with pytest.raises(ConfigError, match="does not belong"):
        Signer.from_files(rsa_pairs["alice"].key, rsa_pairs["mallory"].cert)


def test_expired_certificate_is_refused_at_load(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now - dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = tmp_path / "old-key.pem", tmp_path / "old-cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ConfigError, match="not valid now"):
        Signer.from_files(key_path, cert_path)


# -- init_keys ------------------------------------------------------------------------------


def test_init_keys_rsa(tmp_path: Path) -> None:
    made = init_keys(tmp_path / "k", ["tis", "plus"])
    assert set(made) == {"tis", "plus"}
    key_path, cert_path = made["tis"]
    assert key_path.name == "tis-key.pem"
    assert cert_path.name == "tis-cert.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600

    assert b"BEGIN PRIVATE KEY" in key_path.read_bytes()  # PKCS#8
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "tis"
    assert (
        cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
        == "plus-gateway demo"
    )
    assert cert.issuer == cert.subject
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=729) < lifetime < dt.timedelta(days=731)
    # Usable straight away.
    signer = Signer.from_files(key_path, cert_path)
    assert signer.fingerprint == fingerprint(cert)


def test_init_keys_ec(tmp_path: Path) -> None:
    key_path, _ = init_keys(tmp_path, ["viss"], algorithm="ecdsa-sha256")["viss"]
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)


def test_init_keys_does_not_overwrite_unless_forced(tmp_path: Path) -> None:
    key_path, cert_path = init_keys(tmp_path, ["tis"])["tis"]
    first = (key_path.read_bytes(), cert_path.read_bytes())

    init_keys(tmp_path, ["tis"])
    assert (key_path.read_bytes(), cert_path.read_bytes()) == first

    key_path.chmod(0o644)
    init_keys(tmp_path, ["tis"], force=True)
    assert key_path.read_bytes() != first[0]
    assert cert_path.read_bytes() != first[1]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_init_keys_refuses_half_a_pair(tmp_path: Path) -> None:
    (tmp_path / "tis-key.pem").write_text("orphan")
    with pytest.raises(ConfigError, match=re.escape("tis-key.pem")):
        init_keys(tmp_path, ["tis"])


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden"])
def test_init_keys_refuses_unsafe_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError):
        init_keys(tmp_path, [name])


def test_init_keys_unknown_algorithm(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        init_keys(tmp_path, ["tis"], algorithm="dsa-sha256")


def test_signed_output_serializes_and_reparses(alice: Signer, trust_alice: TrustStore) -> None:
    data = serialize(alice.sign(payload()))
    assert data.startswith(b"<?xml")
    assert c14n(trust_alice.verify(parse_xml(data))) == c14n(payload())


def test_sign_keeps_or_takes_the_id(alice: Signer, trust_alice: TrustStore) -> None:
    given = alice.sign(payload(), id_value="msg-1")
    assert given.get("Id") == "msg-1"
    assert given.find(f".//{{{DS}}}Reference").get("URI") == "#msg-1"
    carried = payload()
    carried.set("Id", "own-id")
    assert alice.sign(carried).get("Id") == "own-id"
    assert c14n(trust_alice.verify(given)) == c14n(payload())
    # Two signatures of the same content never share an Id.
    assert alice.sign(payload()).get("Id") != alice.sign(payload()).get("Id")


@pytest.mark.parametrize("bad", ["1starts-with-a-digit", "has space", "a:colon", ""])
def test_sign_refuses_an_id_that_is_not_an_ncname(alice: Signer, bad: str) -> None:
    with pytest.raises(ValueError, match="Id"):
        alice.sign(payload(), id_value=bad or "#")
