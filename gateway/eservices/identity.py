"""The identity the E-case platform asserts for a portal user, and nothing else (SEC-03).

An :class:`Assertion` is a small XML document (``xsd/ecase/identity.xsd``) the platform signs
with its identity key after the VRAA VISS login: who (personal code), in which role (client,
employer, volunteer, municipality), for which organisation, for which request, until when.
``EServiceRequest/IdentityAssertion`` carries it base64-encoded, so it stays a document of its
own, signed in the profile of docs/SIGNATURE-PROFILE.md and verified by the same
:class:`~gateway.signing.TrustStore` as every other signature, against the certificate pinned
in ``eservices.identity_trust`` (loaded once).

:class:`IdentityVerifier` refuses, in this order (cheap checks first, the clock last):
missing or not base64/XML -> ``ESERVICE_IDENTITY_MISSING``; unsigned, altered or signed by
anyone but the platform -> ``ESERVICE_IDENTITY_FORGED``; outside the schema ->
``ESERVICE_IDENTITY_INVALID``; issued for another request ->
``ESERVICE_IDENTITY_NOT_FOR_REQUEST``; expired, too old or not yet valid ->
``ESERVICE_IDENTITY_EXPIRED``. No refusal text carries the personal code.

:class:`AssertionIssuer` is the platform's side, used by the portal simulator and the tests.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lxml import etree

from gateway.errors import (
    GatewayError,
    SchemaValidationError,
    SignatureInvalidError,
    SignatureMissingError,
    UntrustedSignerError,
)
from gateway.eservices.errors import (
    EServiceIdentityError,
    IdentityExpiredError,
    IdentityForgedError,
    IdentityMissingError,
    IdentityNotForRequestError,
)
from gateway.signing import Signer, TrustStore
from gateway.xml import SchemaRegistry, XmlLimits, parse_xml, serialize

__all__ = ["IDENTITY_NS", "IDENTITY_SCHEMA", "Assertion", "AssertionIssuer", "IdentityVerifier"]

IDENTITY_NS = "urn:lv:ecase:identity:v1"
IDENTITY_SCHEMA = "ecase/identity.xsd"
_Q = f"{{{IDENTITY_NS}}}"


@dataclass(frozen=True)
class Assertion:
    """What the platform asserts about the user of one request."""

    assertion_id: str
    issuer: str
    issued_at: datetime
    expires_at: datetime
    request_id: str
    authentication_method: str
    personal_code: str
    role: str
    organisation_number: str | None = None
    legal_form: str | None = None
    volunteer_kind: str | None = None

    def __repr__(self) -> str:
        # Never print the personal code (a repr ends up in logs and tracebacks).
        return f"Assertion(role={self.role!r}, request_id={self.request_id!r})"


def _text(root: etree._Element, path: str) -> str | None:
    found = root.find(path.replace("ia:", _Q))
    return found.text if found is not None and found.text is not None else None


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class IdentityVerifier:
    """Believes an assertion only when the platform's identity key signed it (loaded once)."""

    def __init__(
        self,
        trust: TrustStore,
        schemas: SchemaRegistry,
        limits: XmlLimits,
        *,
        max_age: float,
        leeway: float,
    ) -> None:
        self.trust = trust
        self.schemas = schemas
        self.limits = limits
        self.max_age = timedelta(seconds=max_age)
        self.leeway = timedelta(seconds=leeway)
        schemas.load(IDENTITY_SCHEMA)

    def verify(self, encoded: str | None, *, request_id: str, now: datetime) -> Assertion:
        """The assertion in ``encoded`` (base64) for request ``request_id``, or a refusal."""
        if not encoded:
            raise IdentityMissingError(
                "the request carries no identity assertion",
                details=[{"path": "identity_assertion", "message": "required"}],
            )
        try:
            raw = base64.b64decode("".join(encoded.split()), validate=True)
            document = parse_xml(raw, self.limits)
        except (binascii.Error, ValueError, GatewayError) as exc:
            raise IdentityMissingError(
                "the identity assertion is not a base64-encoded XML document",
                details=[{"path": "identity_assertion", "message": "not a signed document"}],
            ) from exc
        try:
            signed = self.trust.verify(document)
        except (SignatureMissingError, SignatureInvalidError, UntrustedSignerError) as exc:
            # Which of the three it was is in the cause and the journal; the portal hears only
            # that the platform did not sign this assertion as it stands.
            raise IdentityForgedError(
                f"the identity assertion is not signed by the E-case platform ({exc.code})",
                details=[{"path": "identity_assertion", "message": exc.code}],
            ) from exc
        try:
            self.schemas.validate(signed, IDENTITY_SCHEMA)
        except SchemaValidationError as exc:
            raise EServiceIdentityError(
                "the identity assertion does not follow xsd/ecase/identity.xsd",
                details=[{"path": "identity_assertion", "message": "schema"}],
            ) from exc
        assertion = self._read(signed)
        if assertion.request_id != request_id:
            raise IdentityNotForRequestError(
                "the identity assertion was issued for another request",
                details=[{"path": "identity_assertion.RequestId", "message": "not this request"}],
            )
        if now > assertion.expires_at + self.leeway:
            raise IdentityExpiredError(
                "the identity assertion has expired",
                details=[{"path": "identity_assertion.ExpiresAt", "message": "expired"}],
            )
        if assertion.issued_at > now + self.leeway:
            raise IdentityExpiredError(
                "the identity assertion is not valid yet",
                details=[{"path": "identity_assertion.IssuedAt", "message": "in the future"}],
            )
        if now - assertion.issued_at > self.max_age + self.leeway:
            raise IdentityExpiredError(
                "the identity assertion is older than the allowed age",
                details=[{"path": "identity_assertion.IssuedAt", "message": "too old"}],
            )
        return assertion

    @staticmethod
    def _read(root: etree._Element) -> Assertion:
        def need(path: str) -> str:
            value = _text(root, path)
            assert value is not None  # the schema requires it
            return value

        return Assertion(
            assertion_id=need("ia:AssertionId"),
            issuer=need("ia:Issuer"),
            issued_at=_when(need("ia:IssuedAt")),
            expires_at=_when(need("ia:ExpiresAt")),
            request_id=need("ia:RequestId"),
            authentication_method=need("ia:AuthenticationMethod"),
            personal_code=need("ia:PersonalCode"),
            role=need("ia:Role"),
            organisation_number=_text(root, "ia:Organisation/ia:RegistrationNumber"),
            legal_form=_text(root, "ia:Organisation/ia:LegalForm"),
            volunteer_kind=_text(root, "ia:VolunteerKind"),
        )


class AssertionIssuer:
    """The platform's side: builds and signs assertions (the portal simulator, tests)."""

    def __init__(self, signer: Signer, issuer: str = "E-lietas platforma (VISS)") -> None:
        self.signer = signer
        self.issuer = issuer

    def issue(
        self,
        *,
        request_id: str,
        personal_code: str,
        role: str,
        organisation_number: str | None = None,
        legal_form: str | None = None,
        volunteer_kind: str | None = None,
        issued_at: datetime | None = None,
        lifetime: float = 300.0,
    ) -> str:
        """A signed assertion, base64-encoded as EServiceRequest carries it."""
        issued = issued_at or datetime.now(UTC)
        root = etree.Element(f"{_Q}IdentityAssertion", nsmap={"ia": IDENTITY_NS})

        def add(parent: etree._Element, name: str, value: str) -> etree._Element:
            child = etree.SubElement(parent, f"{_Q}{name}")
            child.text = value
            return child

        add(root, "AssertionId", f"IA-{uuid.uuid4()}")
        add(root, "Issuer", self.issuer)
        add(root, "IssuedAt", issued.isoformat(timespec="seconds"))
        add(
            root,
            "ExpiresAt",
            (issued + timedelta(seconds=lifetime)).isoformat(timespec="seconds"),
        )
        add(root, "RequestId", request_id)
        add(root, "AuthenticationMethod", "viss")
        add(root, "PersonalCode", personal_code)
        add(root, "Role", role)
        if organisation_number is not None:
            org = etree.SubElement(root, f"{_Q}Organisation")
            add(org, "RegistrationNumber", organisation_number)
            add(org, "LegalForm", legal_form or "")
        if volunteer_kind is not None:
            add(root, "VolunteerKind", volunteer_kind)
        signed = self.signer.sign(root, id_value=f"ia-{uuid.uuid4().hex}")
        return base64.b64encode(serialize(signed, declaration=False)).decode("ascii")
