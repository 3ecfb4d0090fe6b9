"""Verifying incoming enveloped signatures against pinned certificates and/or a CA.

How a failure is classified (the partner sees the code, so it must be right):

* ``SIG_MISSING``: the payload carries no ``ds:Signature`` at all.
* ``SIG_INVALID``: a signature is there but is malformed, misplaced, duplicated, outside our
  profile (one Reference with URI="", enveloped + c14n transforms, SHA-2, X509Certificate in
  KeyInfo), or its digest/signature value does not match: the content was altered.
* ``SIG_UNTRUSTED``: the signature is cryptographically intact for the certificate in its
  KeyInfo, but that certificate is neither pinned (SHA-256 fingerprint) nor issued by the
  configured CA, or is outside its validity period.

Before anything is decoded, KeyInfo may carry at most ``max_certificates`` certificates (4 by
default, ``XML_LIMIT`` otherwise), and the payload no processing instruction
(``XML_COMMENT_OR_PI``): it survives canonicalisation and would split the signed text.

Trust is decided *before* the cryptographic check, on the certificate the signature names. For
a trusted certificate the signature is verified with that certificate's key, so only a key we
trust can ever make content come back. For an untrusted certificate the signature is still
checked with the certificate's own key, only to tell "untrusted" from "altered"; that path
always raises, so an attacker gains nothing from choosing the certificate.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import replace
from pathlib import Path

import cryptography.exceptions
from cryptography import x509
from cryptography.x509 import verification
from lxml import etree
from signxml import SignatureConfiguration, VerifyResult, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import SignXMLException

from gateway.errors import (
    ConfigError,
    SignatureInvalidError,
    SignatureMissingError,
    UntrustedSignerError,
    XmlLimitError,
)
from gateway.logging import mask_text
from gateway.ns import DS
from gateway.signing.keys import fingerprint, load_certificates
from gateway.xml import XmlLimits, parse_xml, refuse_comments_and_pis

__all__ = ["TrustStore"]

_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_C14N_TRANSFORMS = frozenset(m.value for m in CanonicalizationMethod)
_ALLOWED_TRANSFORMS = _C14N_TRANSFORMS | {_ENVELOPED}

# Only what partners are expected to use: RSA PKCS#1 v1.5 and ECDSA with SHA-2.
_CONFIG = SignatureConfiguration(
    require_x509=True,
    location="./",
    expect_references=1,
    signature_methods=frozenset(
        {
            SignatureMethod.RSA_SHA256,
            SignatureMethod.RSA_SHA384,
            SignatureMethod.RSA_SHA512,
            SignatureMethod.ECDSA_SHA256,
            SignatureMethod.ECDSA_SHA384,
            SignatureMethod.ECDSA_SHA512,
        }
    ),
    digest_algorithms=frozenset(
        {DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}
    ),
)

# Everything signxml, lxml and cryptography raise for a bad signature or a malformed one.
# signxml lets some plain Python errors escape (b64decode of a missing text is a TypeError,
# an unknown curve URI a KeyError, mismatched key types NotImplementedError): still input errors.
_VERIFY_ERRORS = (
    SignXMLException,
    cryptography.exceptions.InvalidSignature,
    cryptography.exceptions.UnsupportedAlgorithm,
    etree.LxmlError,
    ValueError,
    TypeError,
    KeyError,
    NotImplementedError,
)


def _ds(local: str) -> str:
    return f"{{{DS}}}{local}"


def _require_digital_signature(
    policy: verification.Policy, cert: x509.Certificate, key_usage: x509.KeyUsage | None
) -> None:
    if key_usage is None or not key_usage.digital_signature:
        raise ValueError("certificate KeyUsage does not allow digitalSignature")


class TrustStore:
    """The certificates whose signatures a partner's messages may carry.

    Holds pinned certificates (matched by SHA-256 fingerprint) and/or a CA store, all parsed
    once at start-up. Stateless per call and safe to share between threads.
    """

    def __init__(
        self,
        pinned: list[x509.Certificate],
        ca_certificates: list[x509.Certificate] | None = None,
        *,
        max_certificates: int = XmlLimits.max_certificates,
    ) -> None:
        if not pinned and not ca_certificates:
            # A store that trusts nothing rejects every message: surely a configuration slip.
            raise ConfigError("trust store has neither pinned certificates nor a CA")
        self._pinned = {fingerprint(c): c for c in pinned}
        self._ca_store = verification.Store(ca_certificates) if ca_certificates else None
        #: X509Certificate elements accepted in one KeyInfo (a leaf and a few intermediates).
        self.max_certificates = max_certificates

    @classmethod
    def from_files(
        cls,
        certificates: list[Path],
        ca: Path | None = None,
        *,
        max_certificates: int = XmlLimits.max_certificates,
    ) -> TrustStore:
        """Load pinned certificates (PEM or DER; a PEM file may hold several) and a CA bundle.

        ``max_certificates`` caps the certificates one signature's KeyInfo may carry
        (``XmlLimits.max_certificates``; the chain is built pairwise, so thousands would cost
        minutes).
        """
        pinned = [cert for path in certificates for cert in load_certificates(path)]
        ca_certs = load_certificates(ca) if ca is not None else None
        if ca_certs is not None and ca is not None:
            for cert in ca_certs:
                try:
                    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
                except x509.ExtensionNotFound:
                    constraints = None
                if constraints is None or not constraints.value.ca:
                    raise ConfigError(f"{ca} holds a certificate that is not a CA: {cert.subject}")
        return cls(pinned, ca_certs, max_certificates=max_certificates)

    @property
    def fingerprints(self) -> frozenset[str]:
        """SHA-256 fingerprints of the pinned certificates."""
        return frozenset(self._pinned)

    # -- verification ---------------------------------------------------------------------

    def verify(self, element: etree._Element) -> etree._Element:
        """Verify the enveloped signature on ``element`` and return only the signed content.

        ``element`` is a payload root, possibly cut out of a SOAP body. The returned element is
        the verifier's own re-parse of the canonical signed bytes (without the signature), so
        nothing unsigned can reach the caller. Raises SignatureMissingError,
        SignatureInvalidError or UntrustedSignerError (see the module docstring).
        """
        signature = self._locate_signature(element)
        self._check_profile(signature)
        # Processing instructions survive c14n, so the signed content would come back with
        # its text split (150390<?x?>-12345 reads as 150390). Comments do not survive it.
        refuse_comments_and_pis(element, "a signed payload", comments=False)
        chain = self._embedded_certificates(signature)
        leaf, intermediates = self._split_chain(chain)
        # Trust is decided here, on the certificate alone, before any canonicalisation or
        # digest: cheap, and bounded by the certificate cap above.
        reason = self._untrusted_reason(leaf, intermediates)
        # The element serialised on its own, without its tail (signxml would serialise the
        # tail too and choke on text after an element cut from a larger tree). signxml parses
        # these bytes itself, so this is the only copy we make; no re-parse of our own.
        standalone = etree.tostring(element, with_tail=False)
        if reason is None:
            return self._verify_with(standalone, leaf, _CONFIG)
        # Untrusted: find out whether the signature is at least intact, to report the right
        # code. The certificate's validity period is deliberately ignored here, so an expired
        # certificate is reported as untrusted rather than as a broken signature.
        config = replace(_CONFIG, verification_time=leaf.not_valid_before_utc)
        self._verify_with(standalone, leaf, config)
        # A personal certificate's subject may carry a personal code (serialNumber PNOLV-...).
        raise UntrustedSignerError(
            mask_text(
                f"signature is intact but the signer is not trusted: {reason} "
                f"(subject {leaf.subject.rfc4514_string()}, sha256 {fingerprint(leaf)})"
            )
        )

    def trusts_signer(self, element: etree._Element) -> bool:
        """Whether the certificate named by ``element``'s signature is one this store trusts.

        No cryptography: this only tells who claims to have signed, for naming the real
        signer of a message that claims another sender. Any malformed signature is False.
        """
        try:
            signature = self._locate_signature(element)
            leaf, intermediates = self._split_chain(self._embedded_certificates(signature))
        except (SignatureMissingError, SignatureInvalidError, XmlLimitError):
            return False
        return self._untrusted_reason(leaf, intermediates) is None

    def verify_bytes(self, data: bytes) -> etree._Element:
        """Parse ``data`` with the hardened parser and :meth:`verify` its root."""
        return self.verify(parse_xml(data))

    @staticmethod
    def _locate_signature(element: etree._Element) -> etree._Element:
        if element.tag == _ds("Signature"):
            raise SignatureInvalidError("enveloping signatures are not accepted, only enveloped")
        everywhere = element.findall(f".//{_ds('Signature')}")
        if not everywhere:
            raise SignatureMissingError("the payload carries no ds:Signature")
        direct = [s for s in everywhere if s.getparent() is element]
        if len(direct) != 1 or len(everywhere) != 1:
            # More than one signature, or one in an unexpected place: the classic shapes of a
            # signature-wrapping attack. Refuse rather than guess which one is meant.
            raise SignatureInvalidError(
                f"expected exactly one ds:Signature as a direct child of the payload root, "
                f"found {len(direct)} there and {len(everywhere)} in total"
            )
        return direct[0]

    @staticmethod
    def _check_profile(signature: etree._Element) -> None:
        # Checked on the unverified SignedInfo: if an attacker edits it, the signature value
        # will not match later anyway; this only refuses shapes we never accept.
        references = signature.findall(f"{_ds('SignedInfo')}/{_ds('Reference')}")
        if len(references) != 1:
            raise SignatureInvalidError(f"expected exactly one Reference, found {len(references)}")
        uri = references[0].get("URI")
        if uri != "":
            raise SignatureInvalidError(
                f'only Reference URI="" (the whole payload) is accepted, not {uri!r}'
            )
        transforms = [t.get("Algorithm") for t in references[0].iterfind(f".//{_ds('Transform')}")]
        if _ENVELOPED not in transforms:
            raise SignatureInvalidError("the Reference lacks the enveloped-signature transform")
        unexpected = [t for t in transforms if t not in _ALLOWED_TRANSFORMS]
        if unexpected:
            raise SignatureInvalidError(f"transform not accepted: {unexpected[0]}")

    def _embedded_certificates(self, signature: etree._Element) -> list[x509.Certificate]:
        texts: list[str] = []
        for e in signature.iterfind(f"{_ds('KeyInfo')}/{_ds('X509Data')}/{_ds('X509Certificate')}"):
            if len(texts) == self.max_certificates:
                # Counted before any certificate is decoded or compared: the leaf is found
                # pairwise, and the CA verifier tries the intermediates pairwise too.
                raise XmlLimitError(
                    f"the signature's KeyInfo carries more than {self.max_certificates} "
                    f"certificates (limit max_certificates={self.max_certificates})",
                    details=[
                        {
                            "path": "Signature.KeyInfo",
                            "limit": "max_certificates",
                            "max": self.max_certificates,
                        }
                    ],
                )
            texts.append(e.text or "")
        if not texts:
            raise SignatureInvalidError("the signature carries no KeyInfo/X509Data/X509Certificate")
        try:
            return [x509.load_der_x509_certificate(_b64(text)) for text in texts]
        except ValueError as exc:
            raise SignatureInvalidError(f"unreadable X509Certificate in KeyInfo: {exc}") from exc

    @staticmethod
    def _split_chain(
        chain: list[x509.Certificate],
    ) -> tuple[x509.Certificate, list[x509.Certificate]]:
        # XMLDSig does not order X509Data; the leaf is the certificate that issued no other.
        if len(chain) == 1:
            return chain[0], []
        leaves = [c for c in chain if not any(o is not c and o.issuer == c.subject for o in chain)]
        leaf = leaves[0] if len(leaves) == 1 else chain[0]
        return leaf, [c for c in chain if c is not leaf]

    def _untrusted_reason(
        self, leaf: x509.Certificate, intermediates: list[x509.Certificate]
    ) -> str | None:
        now = dt.datetime.now(dt.UTC)
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            return "certificate is outside its validity period"
        if fingerprint(leaf) in self._pinned:
            return None
        if self._ca_store is None:
            return "certificate is not pinned"
        ee_policy = verification.ExtensionPolicy.permit_all().require_present(
            x509.KeyUsage, verification.Criticality.AGNOSTIC, _require_digital_signature
        )
        verifier = (
            verification.PolicyBuilder()
            .store(self._ca_store)
            .time(now)
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy
            )
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, intermediates)
        except (verification.VerificationError, ValueError) as exc:
            return f"certificate is not pinned and not issued by the configured CA ({exc})"
        return None

    @staticmethod
    def _verify_with(
        standalone: bytes, cert: x509.Certificate, config: SignatureConfiguration
    ) -> etree._Element:
        try:
            # A fresh XMLVerifier per call: verify() stores its arguments on the instance.
            # x509_cert makes signxml verify with *this* certificate's key and ignore KeyInfo.
            result = XMLVerifier().verify(standalone, x509_cert=cert, expect_config=config)
        except _VERIFY_ERRORS as exc:
            # signxml's messages may describe the certificate (its subject) or quote input.
            raise SignatureInvalidError(mask_text(f"signature does not verify: {exc}")) from exc
        # expect_references=1 makes signxml return a single VerifyResult, not a list.
        if not isinstance(result, VerifyResult) or result.signed_xml is None:
            raise SignatureInvalidError("the signed content is not an XML element")
        return result.signed_xml


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"bad base64: {exc}") from exc
