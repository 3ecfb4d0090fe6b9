"""Signing outgoing payloads with an enveloped XMLDSig signature (docs/SIGNATURE-PROFILE.md)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from gateway.errors import ConfigError
from gateway.ns import DS
from gateway.signing.keys import (
    ALGORITHMS,
    PrivateKey,
    fingerprint,
    load_certificates,
    load_private_key,
)
from gateway.signing.trust import ID_ATTRIBUTE
from gateway.xml import parse_xml, serialize

__all__ = ["EXC_C14N", "Signer", "new_id"]

#: Exclusive canonicalisation: the signed bytes do not depend on namespace declarations of
#: ancestors, so a payload signed standalone still verifies inside (or cut out of) a SOAP body.
EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0

_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,127}$")

_SIGNATURE_METHODS = {
    "rsa-sha256": SignatureMethod.RSA_SHA256,
    "ecdsa-sha256": SignatureMethod.ECDSA_SHA256,
}


def new_id() -> str:
    """A fresh value for the signed element's ``Id``: an NCName no other message shares."""
    return f"id-{uuid.uuid4().hex}"


class Signer:
    """Signs payload elements with one preloaded key and certificate.

    Build it once at start-up with :meth:`from_files`; the instance holds no per-call state,
    so one object can be shared by every thread (signxml's ``XMLSigner`` does keep state
    during ``sign``, which is why a fresh, cheap one is made per call).
    """

    def __init__(self, key: PrivateKey, certificate: x509.Certificate, algorithm: str) -> None:
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown signature algorithm {algorithm!r}; use one of {ALGORITHMS}")
        self._key = key
        self.algorithm = algorithm
        self.certificate = certificate
        self.fingerprint = fingerprint(certificate)

    @classmethod
    def from_files(cls, key_path: Path, cert_path: Path, algorithm: str = "rsa-sha256") -> Signer:
        """Load the private key and its certificate; ConfigError naming the path on any problem.

        The certificate must hold the public half of the key (otherwise every partner would
        reject every message) and must be valid now.
        """
        key = load_private_key(key_path, algorithm)
        certificate = load_certificates(cert_path)[0]
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if certificate.public_key().public_bytes(
            serialization.Encoding.DER, spki
        ) != key.public_key().public_bytes(serialization.Encoding.DER, spki):
            raise ConfigError(f"certificate {cert_path} does not belong to key {key_path}")
        now = dt.datetime.now(dt.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise ConfigError(
                f"certificate {cert_path} is not valid now (valid "
                f"{certificate.not_valid_before_utc:%Y-%m-%d} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%d})"
            )
        return cls(key, certificate, algorithm)

    def sign(self, element: etree._Element, *, id_value: str | None = None) -> etree._Element:
        """Return a signed copy of ``element``; the input is left untouched.

        The copy gets an ``Id`` attribute (``id_value``, else the one it has, else a fresh
        one) and an enveloped signature over exactly that element: ``Reference URI="#<Id>"``
        with the enveloped-signature and exclusive c14n transforms, exclusive c14n for
        SignedInfo, SHA-256, the certificate in KeyInfo/X509Data. So a standard toolkit
        verifies it in place once it is the payload of a SOAP Body. The ``ds:Signature`` is
        appended as the last child of the root, where the XSDs allow it.
        """
        if element.find(f".//{{{DS}}}Signature") is not None:
            # A second signature would make the result unverifiable by our own TrustStore
            # (exactly one is allowed) and signxml would treat an Id="placeholder" one specially.
            raise ValueError("element already contains a ds:Signature")
        # A standalone copy without the element's tail: signxml serialises the element with
        # its tail and re-parses it, which fails on a tail with text (element cut from a tree).
        standalone = parse_xml(etree.tostring(element, with_tail=False))
        reference = id_value or standalone.get(ID_ATTRIBUTE) or new_id()
        if not _NCNAME.match(reference):
            raise ValueError(f"{reference!r} is not a usable Id (an XML NCName)")
        standalone.set(ID_ATTRIBUTE, reference)
        signer = XMLSigner(
            signature_algorithm=_SIGNATURE_METHODS[self.algorithm],
            digest_algorithm=DigestAlgorithm.SHA256,
            c14n_algorithm=EXC_C14N,
        )
        signed: etree._Element = signer.sign(
            standalone,
            key=self._key,
            cert=[self.certificate],
            reference_uri=f"#{reference}",
            id_attribute=ID_ATTRIBUTE,
        )
        return signed

    def sign_bytes(self, data: bytes) -> bytes:
        """Parse ``data`` with the hardened parser, sign it and serialise the result."""
        return serialize(self.sign(parse_xml(data)))

    def __repr__(self) -> str:
        return f"Signer(algorithm={self.algorithm!r}, fingerprint={self.fingerprint[:16]}...)"
