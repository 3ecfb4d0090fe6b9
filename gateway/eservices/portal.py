"""The portal simulator: plays the e-services' users with real signed identity assertions.

:class:`PortalSim` is the E-case portal behind the platform simulator: the institution
``portal`` (an :class:`~gateway.sim.InstitutionSim`, so its messages are signed with the
portal's demo key and its answers checked like any institution's) plus the platform's identity
key (``simulators.identity``) that signs each user's :class:`~gateway.eservices.identity`
assertion for the very request it sends. The personas (:data:`PERSONAS`) are a client, a minor
client, an entitled employer (a municipal institution), an unentitled one (a private SIA), a
VPD volunteer (companion) and a municipality. Keys come from ``plus-gateway keys init``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.eservices.identity import AssertionIssuer
from gateway.signing import Signer
from gateway.sim.institution import InstitutionSim

__all__ = ["PERSONAS", "Persona", "PortalSim"]


@dataclass(frozen=True)
class Persona:
    """A portal user (fictional; personal codes valid by checksum)."""

    name: str
    role: str
    personal_code: str
    organisation_number: str | None = None
    legal_form: str | None = None
    volunteer_kind: str | None = None

    def __repr__(self) -> str:
        return f"Persona({self.name!r}, {self.role!r})"


PERSONAS: dict[str, Persona] = {
    "client": Persona("client", "client", "150390-12343"),
    "minor_client": Persona("minor_client", "client", "120312-20566"),
    "employer": Persona(
        "employer", "employer", "050385-10456", "90000012345", "municipal_institution"
    ),
    "unentitled_employer": Persona(
        "unentitled_employer",
        "employer",
        "010101-20116",
        "40003123456",
        "limited_liability_company",
    ),
    "volunteer": Persona("volunteer", "volunteer", "211180-10232", volunteer_kind="companion"),
    "municipality": Persona(
        "municipality", "municipality", "300575-11002", "90000056789", "municipal_institution"
    ),
}


class PortalSim:
    """Sends e-service requests to the gateway as the portal, on behalf of a persona."""

    def __init__(self, settings: Settings, portal: InstitutionSim | None = None) -> None:
        name = settings.eservices.portal
        self.portal = portal or InstitutionSim(settings, name)
        idp = settings.simulators.get("identity")
        if idp is None or idp.key is None or idp.certificate is None:
            raise ConfigError("simulators.identity: the platform's identity key is required")
        self.issuer = AssertionIssuer(Signer.from_files(idp.key, idp.certificate))

    def canonical(
        self,
        persona: Persona,
        eservice: str,
        *,
        kind: str = "request",
        form: str | None = None,
        version: str | None = None,
        data: dict[str, Any] | str | None = None,
        subject: str | None = None,
        client_id: str | None = None,
        assertion: str | bool | None = True,
        issued_at: datetime | None = None,
        lifetime: float = 300.0,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """An EServiceRequest as canonical JSON, with a fresh assertion for its id.

        ``assertion``: True issues one; a string is sent as it is (forged, reused); False or
        None sends none.
        """
        message_id = request_id or f"EPORTAL-{uuid.uuid4()}"
        out: dict[str, Any] = {
            "message_id": message_id,
            "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "eservice": eservice,
            "kind": kind,
        }
        if assertion is True:
            out["identity_assertion"] = self.issuer.issue(
                request_id=message_id,
                personal_code=persona.personal_code,
                role=persona.role,
                organisation_number=persona.organisation_number,
                legal_form=persona.legal_form,
                volunteer_kind=persona.volunteer_kind,
                issued_at=issued_at,
                lifetime=lifetime,
            )
        elif isinstance(assertion, str):
            out["identity_assertion"] = assertion
        if subject is not None:
            out["subject_personal_code"] = subject
        if client_id is not None:
            out["client_id"] = client_id
        if form is not None:
            out["form"] = form
        if version is not None:
            out["form_version"] = version
        if data is not None:
            out["form_data"] = data if isinstance(data, str) else json.dumps(data)
        return out

    def send(self, canonical: dict[str, Any]) -> dict[str, Any]:
        """Sign and send ``canonical``; the gateway's acknowledgement (a fault raises)."""
        return self.portal.send("eservice_request", canonical=canonical, keep_id=True)

    def request(self, persona: Persona | str, eservice: str, **kwargs: Any) -> dict[str, Any]:
        """Build and send one request; returns ``{"request_id", "ack"}``."""
        who = PERSONAS[persona] if isinstance(persona, str) else persona
        canonical = self.canonical(who, eservice, **kwargs)
        ack = self.send(canonical)
        return {"request_id": canonical["message_id"], "ack": ack}

    def received(self, request_id: str) -> list[dict[str, Any]]:
        """What the portal received about ``request_id`` (answers, pending notes), in order."""
        return [
            {"message_type": r.message_type, **r.canonical}
            for r in self.portal.records.received()
            if r.canonical.get("request_id") == request_id
        ]

    @staticmethod
    def persona(name: str, **changes: Any) -> Persona:
        """A persona from :data:`PERSONAS`, optionally changed (another code, legal form)."""
        return replace(PERSONAS[name], **changes)
