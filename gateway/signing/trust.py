"""Verifying incoming enveloped signatures against pinned certificates and/or a CA.

The profile (docs/SIGNATURE-PROFILE.md) is the one a standard toolkit verifies *in place*,
inside the SOAP message as received: the signed element (the SOAP Body's payload element, or a
fault's ``c:ErrorDetail``) carries an ``Id`` attribute, and its enveloped ``ds:Signature`` (the
one direct ``ds:Signature`` child) has exactly one ``ds:Reference URI="#<that Id>"`` with the
transforms enveloped-signature then exclusive c14n, exclusive c14n for SignedInfo, SHA-2, and
the signer's certificate in ``KeyInfo/X509Data/X509Certificate``. No other element anywhere in
the message may carry an ID-like attribute (``Id``, ``ID``, ``id``, ``xml:id``, ``wsu:Id``...)
with the same value, so every toolkit resolves the reference to the same element.
``Reference URI=""`` (the whole *document*, which inside SOAP is the whole envelope) is
accepted only when ``accept_legacy_uri`` is set, for a transition from the earlier profile.

How a failure is classified (the partner sees the code, so it must be right):

* ``SIG_MISSING``: the payload carries no ``ds:Signature`` at all.
* ``SIG_INVALID``: a signature is there but is malformed, misplaced, duplicated, outside the
  profile above (the message says what the profile expects), or its digest/signature value
  does not match: the content was altered.
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

The digest is computed over the signed element serialised on its own. With exclusive c14n
that is byte for byte what a verifier computes in place (exclusive c14n does not import the
ancestors' namespace declarations or ``xml:`` attributes), which the xmlsec1 interop tests
check on messages captured from the wire.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
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
from gateway.ns import DS, SOAP_ENV
from gateway.signing.keys import fingerprint, load_certificates
from gateway.xml import XmlLimits, parse_xml, refuse_comments_and_pis

__all__ = ["ENVELOPED", "EXC_C14N_URI", "ID_ATTRIBUTE", "PROFILE", "TrustStore"]

ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
EXC_C14N_URI = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value
#: The attribute (no namespace, declared ``xs:ID`` in every signed element's XSD) that the
#: signature's Reference names.
ID_ATTRIBUTE = "Id"
#: What the refusals say is expected; the partner-facing description is SIGNATURE-PROFILE.md.
PROFILE = (
    'one ds:Reference URI="#<Id>" naming the Id attribute of the signed element (the SOAP '
    "Body's payload element), transforms enveloped-signature then exclusive c14n "
    f"({EXC_C14N_URI}), exclusive c14n for SignedInfo, SHA-256/384/512, the certificate in "
    "KeyInfo/X509Data/X509Certificate; see docs/SIGNATURE-PROFILE.md"
)
_PROFILE_TRANSFORMS = [ENVELOPED, EXC_C14N_URI]
_SOAP11_ENV = SOAP_ENV
_SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
_SOAP_ENVELOPES = frozenset({_SOAP11_ENV, _SOAP12_ENV})
# XML 1.0 NCName, restricted to what IDs look like in practice (an xs:ID is an NCName).
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,127}$")

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
        accept_legacy_uri: bool = False,
    ) -> None:
        if not pinned and not ca_certificates:
            # A store that trusts nothing rejects every message: surely a configuration slip.
            raise ConfigError("trust store has neither pinned certificates nor a CA")
        self._pinned = {fingerprint(c): c for c in pinned}
        self._ca_store = verification.Store(ca_certificates) if ca_certificates else None
        #: X509Certificate elements accepted in one KeyInfo (a leaf and a few intermediates).
        self.max_certificates = max_certificates
        #: Also accept the earlier profile, Reference URI="" over the payload cut out of the
        #: message (``signing.accept_legacy_uri``; off by default). Standard toolkits read
        #: URI="" inside SOAP as the whole envelope, so only a transition should need it.
        self.accept_legacy_uri = accept_legacy_uri

    @classmethod
    def from_files(
        cls,
        certificates: list[Path],
        ca: Path | None = None,
        *,
        max_certificates: int = XmlLimits.max_certificates,
        accept_legacy_uri: bool = False,
    ) -> TrustStore:
        """Load pinned certificates (PEM or DER; a PEM file may hold several) and a CA bundle.

        ``max_certificates`` caps the certificates one signature's KeyInfo may carry
        (``XmlLimits.max_certificates``; the chain is built pairwise, so thousands would cost
        minutes). ``accept_legacy_uri`` also accepts the earlier ``Reference URI=""`` profile.
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
        return cls(
            pinned,
            ca_certs,
            max_certificates=max_certificates,
            accept_legacy_uri=accept_legacy_uri,
        )

    @property
    def fingerprints(self) -> frozenset[str]:
        """SHA-256 fingerprints of the pinned certificates."""
        return frozenset(self._pinned)

    # -- verification ---------------------------------------------------------------------

    def verify(self, element: etree._Element) -> etree._Element:
        """Verify the enveloped signature on ``element`` and return only the signed content.

        ``element`` is the signed element where it was received: the payload element inside
        the parsed SOAP message (its Body's single child, or a fault's ``ErrorDetail``), or
        the root of a payload document on its own. The whole message it belongs to is checked
        for the uniqueness of its Id. The returned element is the verifier's own re-parse of
        the canonical signed bytes (without the signature), so nothing unsigned can reach the
        caller. Raises SignatureMissingError, SignatureInvalidError or UntrustedSignerError
        (see the module docstring).
        """
        signature = self._locate_signature(element)
        self._check_profile(signature, element)
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

    def _check_profile(self, signature: etree._Element, element: etree._Element) -> None:
        # Checked on the unverified SignedInfo: if an attacker edits it, the signature value
        # will not match later anyway; this only refuses shapes we never accept, and says
        # what the profile expects.
        signed_info = signature.find(_ds("SignedInfo"))
        if signed_info is None:
            raise SignatureInvalidError(f"the signature has no SignedInfo; expected {PROFILE}")
        c14n = signed_info.find(_ds("CanonicalizationMethod"))
        if c14n is None or c14n.get("Algorithm") != EXC_C14N_URI:
            method = None if c14n is None else c14n.get("Algorithm")
            raise SignatureInvalidError(
                f"SignedInfo canonicalization {_quote(method)} is not accepted; expected {PROFILE}"
            )
        references = signed_info.findall(_ds("Reference"))
        if len(references) != 1:
            raise SignatureInvalidError(
                f"expected exactly one Reference, found {len(references)}; expected {PROFILE}"
            )
        reference = references[0]
        uri = reference.get("URI")
        transforms = [t.get("Algorithm") for t in reference.iterfind(f".//{_ds('Transform')}")]
        if uri == "" and self.accept_legacy_uri:
            # The earlier profile: the payload as its own document (transition only).
            if ENVELOPED not in transforms or any(
                t not in (ENVELOPED, EXC_C14N_URI) for t in transforms
            ):
                raise SignatureInvalidError(
                    'a legacy Reference URI="" needs the enveloped-signature and exclusive '
                    f"c14n transforms only; expected {PROFILE}"
                )
            self._check_placement(element, None)
            return
        if uri is None or not uri.startswith("#") or not _NCNAME.match(uri[1:]):
            shown = "none" if uri is None else _quote(uri)
            why = ' (inside a SOAP message URI="" means the whole envelope)' if uri == "" else ""
            raise SignatureInvalidError(
                f"Reference URI {shown} is not accepted{why}; expected {PROFILE}"
            )
        wanted = uri[1:]
        carried = element.get(ID_ATTRIBUTE)
        if carried is None:
            raise SignatureInvalidError(
                f"the signed element carries no {ID_ATTRIBUTE} attribute for Reference "
                f"{_quote(uri)}; expected {PROFILE}"
            )
        if carried != wanted:
            raise SignatureInvalidError(
                f"Reference {_quote(uri)} does not name the signed element (its "
                f"{ID_ATTRIBUTE} is {_quote(carried)}); expected {PROFILE}"
            )
        if transforms != _PROFILE_TRANSFORMS:
            raise SignatureInvalidError(
                f"Reference transforms {', '.join(_quote(t) for t in transforms) or 'none'} "
                f"are not accepted; expected {PROFILE}"
            )
        self._check_placement(element, wanted)

    @staticmethod
    def _check_placement(element: etree._Element, wanted: str | None) -> None:
        """The signed element is the message's payload, and the only one carrying its Id."""
        root = element.getroottree().getroot()
        if element is not root and not _is_payload(element, root):
            raise SignatureInvalidError(
                f"the signed element {_quote(etree.QName(element).localname)} is not the "
                f"SOAP Body's payload element; expected {PROFILE}"
            )
        if wanted is None:
            return
        # Every toolkit has its own idea of which attribute is an ID (xmlsec1 what it is told,
        # xml-crypto any Id/ID/id, libxml2 xml:id, WS-Security wsu:Id): any element other
        # than the signed one with an ID-like attribute of the same value could be the one a
        # partner's toolkit resolves, so the value must be unique across the whole message.
        carriers = 0
        for candidate in root.iter():
            if not isinstance(candidate.tag, str):
                continue
            for name, value in candidate.attrib.items():
                if value == wanted and etree.QName(name).localname.lower() == "id":
                    carriers += 1
                    break
        if carriers != 1:
            raise SignatureInvalidError(
                f"{carriers} elements in the message carry the Id {_quote(wanted)}; exactly "
                f"one, the signed element, must; expected {PROFILE}"
            )

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
            result = XMLVerifier().verify(
                standalone, x509_cert=cert, expect_config=config, id_attribute=ID_ATTRIBUTE
            )
        except _VERIFY_ERRORS as exc:
            # signxml's messages may describe the certificate (its subject) or quote input.
            raise SignatureInvalidError(mask_text(f"signature does not verify: {exc}")) from exc
        # expect_references=1 makes signxml return a single VerifyResult, not a list.
        if not isinstance(result, VerifyResult) or result.signed_xml is None:
            raise SignatureInvalidError("the signed content is not an XML element")
        return result.signed_xml


def _quote(value: str | None) -> str:
    # Partner-supplied text in a fault message: bounded, and masked like every other.
    if value is None:
        return "none"
    shown = value if len(value) <= 80 else value[:77] + "..."
    return mask_text(repr(shown))


def _is_payload(element: etree._Element, root: etree._Element) -> bool:
    """``element`` is the Body's child of the SOAP envelope ``root``, or a fault's detail entry."""
    if etree.QName(root).namespace not in _SOAP_ENVELOPES or etree.QName(root).localname != (
        "Envelope"
    ):
        return False
    parent = element.getparent()
    if parent is not None and parent.tag == "detail":
        # SOAP 1.1 Fault/detail/<entry>: the signed receipt of a fault is its ErrorDetail.
        fault = parent.getparent()
        if fault is None or fault.tag != f"{{{_SOAP11_ENV}}}Fault":
            return False
        parent = fault.getparent()
        element = fault
    return (
        parent is not None
        and etree.QName(parent).localname == "Body"
        and etree.QName(parent).namespace == etree.QName(root).namespace
        and parent.getparent() is root
        and [c for c in parent if isinstance(c.tag, str)] == [element]
    )


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"bad base64: {exc}") from exc
