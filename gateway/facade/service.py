"""The facade's loaded resources and its rules across store areas.

:class:`Facade` is built once by the runtime: the seal (key and certificate read, trust roots
parsed), the token verifier (issuer keys or JWKS URL), the store area. Routes (api.py) call its
methods; every rule that spans areas (who may see an application, what a certificate
certifies, what an attachment may be) lives here, every rule that must be atomic lives in the
store's statements.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import structlog

from gateway.config import Settings
from gateway.facade.auth import Jwks, Principal, TokenVerifier
from gateway.facade.cache import PageCache
from gateway.facade.certificate import CertificateData, Seal, render_pdf
from gateway.facade.errors import (
    ConflictError,
    ForbiddenError,
    MediaTypeError,
    NotFoundError,
    TooLargeError,
    UnprocessableError,
)
from gateway.facade.keys import seal_paths
from gateway.facade.statistics import build_cut, suppress
from gateway.store import Store
from gateway.store.facade import FacadeStore
from gateway.store.facade.certificates import certificate_not_found
from gateway.store.facade.people import application_not_found

__all__ = ["PREFIX", "Facade"]

log = structlog.get_logger(__name__)

#: Where the facade lives in the gateway's URL space.
PREFIX = "/v1/volunteering"

#: Leading bytes of each accepted attachment type: the declared type must match the content.
_MAGIC = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}


def _hours(minutes: int | None) -> float | None:
    return None if minutes is None else round(minutes / 60, 2)


class Facade:
    """The volunteer facade over the gateway's store."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.config = settings.facade
        self.base_url = (self.config.public_url or settings.api.base_url()).rstrip("/")
        self.store = FacadeStore(store.db)
        #: Encoded public list pages, voided by this instance's writes (gateway/facade/cache.py).
        self.pages = PageCache(self.config.list_cache_seconds, self.store.listings.version)
        key, certificate = seal_paths(settings)
        self.seal = Seal(key, certificate, self.config.seal.trust)
        self.verifier = TokenVerifier(
            self.config.auth, Jwks.from_settings(self.config.auth, settings.paths.keys)
        )

    # -- views ------------------------------------------------------------------------------

    def opportunity_view(self, row: dict[str, Any]) -> dict[str, Any]:
        """A store row as :class:`~gateway.facade.models.OpportunityOut`."""
        org = row["organisation"]
        contacts = org["profile"].get("contacts") or {}
        return {
            "id": row["id"],
            "url": f"{self.base_url}{PREFIX}/opportunities/{row['id']}",
            "external_ref": row.get("external_ref"),
            "title": row["title"],
            "place": {
                "city": row["city"],
                "municipality": row["municipality"],
                "digital": bool(row["digital"]),
            },
            "time": {
                "starts_at": row["starts_at"],
                "ends_at": row["ends_at"],
                "expected_hours": row["expected_hours"],
            },
            "duties": row["duties"],
            "deadline": row["deadline"],
            "desired_profile": row["desired_profile"],
            "skills": json.loads(row["skills"]),
            "volunteers_needed": row["volunteers_needed"],
            "applied": row["applied"],
            "approved": row["approved"],
            "seats_left": max(0, row["volunteers_needed"] - row["applied"]),
            "benefits": row["benefits"],
            "kind": row["kind"],
            "status": row["status"],
            "organiser": {
                "id": org["id"],
                "name": org["name"],
                "email": contacts.get("email"),
                "phone": contacts.get("phone"),
                "website": org["profile"].get("website"),
            },
        }

    def organisation_view(self, org: dict[str, Any]) -> dict[str, Any]:
        """A store row as :class:`~gateway.facade.models.OrganisationOut`."""
        return {
            **org["profile"],
            "id": org["id"],
            "created_at": org["created_at"],
            "updated_at": org["updated_at"],
        }

    @staticmethod
    def application_view(row: dict[str, Any], *, for_organisation: bool) -> dict[str, Any]:
        """An application; organisations see an applicant's contacts only if identified."""
        out = {
            k: row[k]
            for k in (
                "id",
                "opportunity_id",
                "opportunity_title",
                "organisation_id",
                "volunteer_id",
                "status",
                "motivation",
                "decision_reason",
                "created_at",
                "decided_at",
            )
        }
        if for_organisation:
            identified = row.get("volunteer_mode") == "identified"
            out["volunteer"] = {
                "alias": row["volunteer_alias"],
                "mode": row["volunteer_mode"],
                **(
                    {k: row.get(k) for k in ("first_name", "last_name", "email", "phone")}
                    if identified
                    else {}
                ),
            }
        return out

    @staticmethod
    def hours_view(row: dict[str, Any]) -> dict[str, Any]:
        """A day of hours with both records and their difference."""
        mine, theirs = row["volunteer_minutes"], row["organiser_minutes"]
        return {
            "date": row["work_date"],
            "volunteer_hours": _hours(mine),
            "organiser_hours": _hours(theirs),
            "approved_hours": _hours(row["approved_minutes"]),
            "state": row["state"],
            "difference": _hours(mine - theirs)
            if mine is not None and theirs is not None
            else None,
            "volunteer_note": row["volunteer_note"],
            "organiser_note": row["organiser_note"],
            "approved_at": row["approved_at"],
        }

    def certificate_view(self, row: dict[str, Any]) -> dict[str, Any]:
        """A certificate's metadata (never its PDF bytes)."""
        number = row.get("number")
        return {
            **{
                k: row.get(k)
                for k in (
                    "id",
                    "number",
                    "application_id",
                    "organisation_id",
                    "volunteer_id",
                    "origin",
                    "status",
                    "competences",
                    "description",
                    "return_reason",
                    "period_from",
                    "period_to",
                    "pdf_sha256",
                    "issued_at",
                )
            },
            "hours": _hours(row.get("minutes")),
            "verification_url": self.verification_url(number) if number else None,
            "attachments": row.get("attachments", []),
        }

    def verification_url(self, number: str) -> str:
        """The public URL that answers whether certificate ``number`` is authentic."""
        return f"{self.base_url}{PREFIX}/certificates/{number}/verify"

    # -- access -----------------------------------------------------------------------------

    def volunteer_of(self, principal: Principal) -> dict[str, Any]:
        """The caller's volunteer record; 404 VOLUNTEER_NOT_REGISTERED if none."""
        principal.require("volunteer")
        found = self.store.people.by_subject(principal.subject)
        if found is None:
            raise NotFoundError(
                "VOLUNTEER_NOT_REGISTERED",
                "register first: POST /v1/volunteering/volunteers",
                path="header.Authorization",
            )
        return found

    def application_for(self, principal: Principal, app_id: int) -> tuple[dict[str, Any], str]:
        """An application the caller may act on, and as which side (volunteer|organisation).

        Another volunteer's or another organisation's application is a 404, not a 403, so
        ids reveal nothing.
        """
        row = self.store.people.application(app_id)
        if (
            "organisation_user" in principal.roles
            and principal.organisation == row["organisation_id"]
        ):
            return row, "organisation"
        if "volunteer" in principal.roles:
            me = self.store.people.by_subject(principal.subject)
            if me is not None and me["id"] == row["volunteer_id"]:
                return row, "volunteer"
        if not principal.roles & {"volunteer", "organisation_user"}:
            raise ForbiddenError(
                "ROLE_REQUIRED",
                "this call needs the role volunteer or organisation_user",
                path="header.Authorization",
            )
        raise application_not_found()

    def certificate_for(self, principal: Principal, cert_id: int) -> tuple[dict[str, Any], str]:
        """A certificate the caller may see, and as which side."""
        row = self.store.certificates.get(cert_id)
        if (
            "organisation_user" in principal.roles
            and principal.organisation == row["organisation_id"]
        ):
            return row, "organisation"
        if "volunteer" in principal.roles:
            me = self.store.people.by_subject(principal.subject)
            if me is not None and me["id"] == row["volunteer_id"]:
                return row, "volunteer"
        raise certificate_not_found()

    # -- certificates -----------------------------------------------------------------------

    def draft(self, principal: Principal, origin: str, data: dict[str, Any]) -> dict[str, Any]:
        """A certificate by the organiser (draft) or the volunteer (submitted)."""
        app, side = self.application_for(principal, data["application_id"])
        if side != origin:
            raise application_not_found()
        if app["status"] != "approved":
            raise ConflictError(
                "APPLICATION_NOT_APPROVED",
                "a certificate needs an approved application",
                path="body.application_id",
            )
        return self.store.certificates.create(
            application=app,
            origin=origin,
            competences=data["competences"],
            description=data.get("description"),
        )

    def attach(self, cert_id: int, filename: str, media_type: str, b64: str) -> dict[str, Any]:
        """Check an attachment's type and size, then store it (415 / 413 otherwise)."""
        declared = media_type.split(";", 1)[0].strip().lower()
        if declared not in self.config.attachment_types:
            raise MediaTypeError(
                "ATTACHMENT_TYPE",
                f"attachments may be {', '.join(self.config.attachment_types)}",
                path="body.media_type",
            )
        limit = self.config.attachment_max_bytes
        # Decoded size from the encoded length, before decoding anything.
        if len(b64) * 3 // 4 > limit + 2:
            raise self._too_large(limit)
        try:
            content = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UnprocessableError(
                "ATTACHMENT_ENCODING", "content_base64 is not base64", path="body.content_base64"
            ) from exc
        if len(content) > limit:
            raise self._too_large(limit)
        if not content.startswith(_MAGIC.get(declared, (b"",))):
            raise MediaTypeError(
                "ATTACHMENT_TYPE",
                f"the content is not {declared}",
                path="body.content_base64",
            )
        return self.store.certificates.attach(
            cert_id,
            filename=filename,
            media_type=declared,
            content=content,
            sha256=hashlib.sha256(content).hexdigest(),
            limit=self.config.attachments_per_certificate,
        )

    @staticmethod
    def _too_large(limit: int) -> TooLargeError:
        return TooLargeError(
            "ATTACHMENT_TOO_LARGE",
            f"an attachment may be at most {limit} bytes",
            path="body.content_base64",
        )

    def issue(self, cert_id: int, principal: Principal) -> dict[str, Any]:
        """Approve and issue: render the PDF, seal it, number it; 409 if already issued."""
        cert = self.store.certificates.get(cert_id)
        if cert["status"] not in ("draft", "submitted"):
            raise ConflictError(
                "CERTIFICATE_STATE",
                f"a {cert['status']} certificate cannot be issued",
                path="path.certificate_id",
            )
        summary = self.store.hours.approved_summary(cert["application_id"])
        if summary["minutes"] <= 0:
            raise UnprocessableError(
                "NO_APPROVED_HOURS",
                "the application has no approved hours to certify",
                path="path.certificate_id",
            )
        app = self.store.people.application(cert["application_id"])
        person = self.store.people.volunteer(cert["volunteer_id"])
        org = self.store.listings.organisation(cert["organisation_id"])
        now = datetime.now(UTC)
        number = f"{self.config.certificate_prefix}-{now.year}-{cert_id:06d}"
        holder = (
            f"{person['first_name']} {person['last_name']}"
            if person["mode"] == "identified"
            else f"{person['alias']} (bez personas datiem / registered without personal data)"
        )
        files = self.store.certificates.attachment_contents(cert_id)
        data = CertificateData(
            number=number,
            holder=holder,
            organisation=org["name"],
            registration_number=org["id"],
            opportunity=app["opportunity_title"],
            period_from=summary["first"],
            period_to=summary["last"],
            hours=summary["minutes"] / 60,
            competences=cert["competences"],
            description=cert["description"],
            issued_at=now,
            verification_url=self.verification_url(number),
            attachments=files,
        )
        sealed = self.seal.seal(render_pdf(data), reason=f"Izziņa {number}")
        digest = hashlib.sha256(sealed).hexdigest()
        issued = self.store.certificates.issue(
            cert_id,
            number=number,
            minutes=summary["minutes"],
            period=(summary["first"], summary["last"]),
            pdf=sealed,
            sha256=digest,
        )
        log.info(
            "certificate issued", certificate_id=cert_id, number=number, organisation_id=org["id"]
        )
        return issued

    def sample_pdf(self) -> bytes:
        """The published template filled with placeholder data, unsealed, marked SAMPLE."""
        return render_pdf(
            CertificateData(
                number=f"{self.config.certificate_prefix}-GGGG-NNNNNN",
                holder="Vārds Uzvārds / alias",
                organisation="Organizācijas nosaukums",
                registration_number="40000000000",
                opportunity="Brīvprātīgā darba iespējas nosaukums",
                period_from=None,
                period_to=None,
                hours=0,
                competences=["Kompetence / competence"],
                description="Apraksts / description",
                issued_at=datetime(2026, 1, 1, tzinfo=UTC),
                verification_url=f"{self.base_url}{PREFIX}/certificates/NUMBER/verify",
                sample=True,
            )
        )

    def verification(self, number: str, sha256: str | None) -> dict[str, Any]:
        """Whether certificate ``number`` is authentic (its stored seal validates) and, given a
        SHA-256, whether that copy is the issued one."""
        row = self.store.certificates.by_number(number)
        if row is None or row["status"] != "issued":
            raise NotFoundError(
                "CERTIFICATE_NOT_FOUND", "no certificate with this number", path="path.number"
            )
        if row["pdf"] is not None:
            check = self.seal.check(row["pdf"])
            authentic, seal = check.ok, check.summary
        else:
            # Erased holder: the PDF is gone; the number and the digest of the issued file
            # remain and still tell whether a copy someone presents is the one issued.
            authentic, seal = True, "PDF erased with its holder's data; digest kept"
        org = self.store.listings.organisation(row["organisation_id"])
        return {
            "number": number,
            "authentic": authentic,
            "unchanged": None if sha256 is None else sha256.lower() == row["pdf_sha256"],
            "status": "holder_erased" if row["holder_erased"] else "issued",
            "organisation": org["name"],
            "hours": _hours(row["minutes"]),
            "period_from": row["period_from"],
            "period_to": row["period_to"],
            "issued_at": row["issued_at"],
            "pdf_sha256": row["pdf_sha256"],
            "seal": seal,
        }

    def verify_copy(self, pdf_b64: str) -> dict[str, Any]:
        """Check a presented PDF: its seal (pyHanko) and that it is a certificate we issued."""
        try:
            pdf = base64.b64decode(pdf_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UnprocessableError(
                "PDF_ENCODING", "pdf_base64 is not base64", path="body.pdf_base64"
            ) from exc
        self.seal.require_valid(pdf)
        digest = hashlib.sha256(pdf).hexdigest()
        row = self.store.certificates.by_sha256(digest)
        if row is None:
            raise UnprocessableError(
                "CERTIFICATE_UNKNOWN",
                "the seal validates but no issued certificate has this content",
                path="body.pdf_base64",
            )
        return self.verification(row["number"], digest)

    # -- statistics -------------------------------------------------------------------------

    def statistics(
        self,
        cut: str,
        by: str,
        *,
        organisation_id: str | None = None,
        volunteer_id: int | None = None,
    ) -> dict[str, Any]:
        """A cut by one dimension; the policy cut is suppressed (gateway/facade/statistics.py)."""
        source = self.store.statistics
        hours_rows = source.approved_hours(
            organisation_id=organisation_id, volunteer_id=volunteer_id
        )
        postings = [] if cut == "volunteer" else source.postings(organisation_id=organisation_id)
        cells, total = build_cut(hours_rows, postings, by)
        min_cell = None
        registered = None
        if cut == "policy":
            min_cell = self.config.min_cell
            cells, total = suppress(cells, total, min_cell)
            registered = source.registered_volunteers()
            if registered < min_cell:
                registered = None
        return {
            "cut": cut,
            "by": by,
            "min_cell": min_cell,
            "cells": cells,
            "total": total,
            "registered_volunteers": registered,
        }
