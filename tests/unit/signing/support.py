"""Helpers for the signing tests: payloads, and a small CA built with cryptography."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from gateway.xml import parse_xml

PAYLOAD_NS = "urn:lv:ta:tis:plus:v1"


def payload_bytes(n_obligations: int = 12, marker: str = "0") -> bytes:
    """A TIS-like payload of about 3 KB with personal data in it (as real messages have)."""
    obligations = "".join(
        f"<t:Obligation><t:ObligationCode>OBL-{i:03d}</t:ObligationCode>"
        f"<t:Text>Pienākums nr. {i}: ierasties Valsts probācijas dienestā</t:Text>"
        f"<t:Term><t:Months>{i % 12}</t:Months><t:Days>{i}</t:Days></t:Term></t:Obligation>"
        for i in range(n_obligations)
    )
    return (
        f'<t:CaseNotification xmlns:t="{PAYLOAD_NS}" xmlns:c="urn:lv:vpd:plus:common:v1">'
        f"<t:MessageId>msg-{marker}</t:MessageId>"
        "<t:CaseRef><c:VpdCaseId>VPD-2024-000123</c:VpdCaseId></t:CaseRef>"
        '<t:Person role="offender"><t:PersonalCode>010190-12345</t:PersonalCode>'
        "<t:FirstName>Jānis</t:FirstName><t:LastName>Bērziņš</t:LastName></t:Person>"
        f"{obligations}</t:CaseNotification>"
    ).encode()


def payload() -> etree._Element:
    return parse_xml(payload_bytes())


def c14n(element: etree._Element) -> bytes:
    """Exclusive c14n of the content, without the root's ``Id`` (what the signer added)."""
    copy = etree.fromstring(etree.tostring(element, with_tail=False))
    copy.attrib.pop("Id", None)
    return etree.tostring(copy, method="c14n", exclusive=True)


@dataclass(frozen=True)
class Pair:
    key: Path
    cert: Path


@dataclass(frozen=True)
class CaSetup:
    ca_cert: Path
    leaf: Pair


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test"),
        ]
    )


def _key_usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def write_pem_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def issue_ca(directory: Path, cn: str = "Test Partner CA") -> tuple[rsa.RSAPrivateKey, Path]:
    """A CA certificate that satisfies the WebPKI CA profile cryptography's verifier applies."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{cn.replace(' ', '_')}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, path


def issue_leaf(
    directory: Path,
    ca_key: rsa.RSAPrivateKey,
    ca_cert_path: Path,
    cn: str,
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Pair:
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(days=1))
        .not_valid_after(not_after or now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign=True, ca=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pair = Pair(directory / f"{cn}-key.pem", directory / f"{cn}-cert.pem")
    write_pem_key(pair.key, key)
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pair
