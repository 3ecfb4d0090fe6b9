"""Certificates (izziņas) from draft to sealed PDF, and their attachments.

States: ``draft`` (the organiser's, VOL-24), ``submitted`` (the volunteer's, VOL-25),
``returned`` (sent back to the volunteer with a reason), ``issued`` (numbered, sealed, final).
Issuing is a conditional UPDATE from draft or submitted, so two approvals at once issue once.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import func, insert, select, update

from gateway.facade.errors import ConflictError, NotFoundError
from gateway.store.db import Database
from gateway.store.facade.tables import attachments, certificates
from gateway.store.schema import utcnow

__all__ = ["Certificates"]

_C = certificates.c
_T = attachments.c

#: States in which a certificate may still be edited, attached to or issued.
OPEN = ("draft", "submitted", "returned")


class Certificates:
    """Certificates and attachments over the shared :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        *,
        application: dict[str, Any],
        origin: str,
        competences: list[str],
        description: str | None,
    ) -> dict[str, Any]:
        """A new draft (by the organiser) or submission (by the volunteer)."""
        now = utcnow()
        with self.db.transaction() as conn:
            new_id = conn.execute(
                insert(certificates).values(
                    application_id=application["id"],
                    volunteer_id=application["volunteer_id"],
                    organisation_id=application["organisation_id"],
                    origin=origin,
                    status="draft" if origin == "organisation" else "submitted",
                    competences=json.dumps(competences, ensure_ascii=False),
                    description=description,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return self.get(int(new_id))

    def get(self, cert_id: int) -> dict[str, Any]:
        """A certificate by id (without its PDF bytes); 404 when unknown."""
        with self.db.connect() as conn:
            row = (
                conn.execute(
                    select(*[c for c in certificates.c if c.name != "pdf"]).where(_C.id == cert_id)
                )
                .mappings()
                .first()
            )
            if row is None:
                raise certificate_not_found()
            files = self._attachments(conn, cert_id)
        return {**_parsed(row), "attachments": files}

    def by_number(self, number: str) -> dict[str, Any] | None:
        """An issued certificate by its number, with its PDF (None when unknown)."""
        with self.db.connect() as conn:
            row = conn.execute(select(certificates).where(_C.number == number)).mappings().first()
        return _parsed(row) if row else None

    def by_sha256(self, sha256: str) -> dict[str, Any] | None:
        """The issued certificate whose sealed PDF has this SHA-256, if any."""
        with self.db.connect() as conn:
            row = (
                conn.execute(
                    select(_C.number).where(_C.pdf_sha256 == sha256, _C.status == "issued")
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def pdf(self, cert_id: int) -> bytes | None:
        """The sealed PDF of an issued certificate (None before issue or after erasure)."""
        with self.db.connect() as conn:
            return conn.execute(select(_C.pdf).where(_C.id == cert_id)).scalar_one_or_none()

    def of(
        self, *, volunteer_id: int | None = None, organisation_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Certificates of a volunteer or an organisation, newest first."""
        query = select(*[c for c in certificates.c if c.name != "pdf"]).order_by(_C.id.desc())
        if volunteer_id is not None:
            query = query.where(_C.volunteer_id == volunteer_id)
        if organisation_id is not None:
            query = query.where(_C.organisation_id == organisation_id)
        with self.db.connect() as conn:
            return [{**_parsed(r), "attachments": []} for r in conn.execute(query).mappings()]

    def edit(
        self, cert_id: int, competences: list[str], description: str | None, status: str
    ) -> dict[str, Any]:
        """Change an open certificate's content (the volunteer resubmits: ``submitted``)."""
        with self.db.transaction() as conn:
            done = conn.execute(
                update(certificates)
                .where(_C.id == cert_id, _C.status.in_(OPEN))
                .values(
                    competences=json.dumps(competences, ensure_ascii=False),
                    description=description,
                    status=status,
                    return_reason=None,
                    updated_at=utcnow(),
                )
            )
        if done.rowcount == 0:
            raise _state("the certificate is issued and cannot change")
        return self.get(cert_id)

    def send_back(self, cert_id: int, reason: str) -> dict[str, Any]:
        """Return a volunteer's submission with a reason."""
        with self.db.transaction() as conn:
            done = conn.execute(
                update(certificates)
                .where(_C.id == cert_id, _C.status == "submitted")
                .values(status="returned", return_reason=reason, updated_at=utcnow())
            )
        if done.rowcount == 0:
            raise _state("only a submitted certificate can be returned")
        return self.get(cert_id)

    def issue(
        self,
        cert_id: int,
        *,
        number: str,
        minutes: int,
        period: tuple[date, date],
        pdf: bytes,
        sha256: str,
    ) -> dict[str, Any]:
        """Mark an open certificate issued with its sealed PDF; 409 if it already is."""
        now = utcnow()
        with self.db.transaction() as conn:
            done = conn.execute(
                update(certificates)
                .where(_C.id == cert_id, _C.status.in_(("draft", "submitted")))
                .values(
                    status="issued",
                    number=number,
                    minutes=minutes,
                    period_from=period[0],
                    period_to=period[1],
                    pdf=pdf,
                    pdf_sha256=sha256,
                    issued_at=now,
                    updated_at=now,
                )
            )
        if done.rowcount == 0:
            raise _state("the certificate is already issued, or returned to the volunteer")
        return self.get(cert_id)

    # -- attachments ------------------------------------------------------------------------

    def attach(
        self,
        cert_id: int,
        *,
        filename: str,
        media_type: str,
        content: bytes,
        sha256: str,
        limit: int,
    ) -> dict[str, Any]:
        """Add an attachment to an open certificate (at most ``limit`` of them)."""
        with self.db.transaction() as conn:
            status = conn.execute(select(_C.status).where(_C.id == cert_id)).scalar_one_or_none()
            if status is None:
                raise certificate_not_found()
            if status not in OPEN:
                raise _state("attachments can be added only before the certificate is issued")
            count = conn.execute(
                select(func.count()).select_from(attachments).where(_T.certificate_id == cert_id)
            ).scalar_one()
            if count >= limit:
                raise ConflictError(
                    "ATTACHMENT_LIMIT",
                    f"a certificate has at most {limit} attachments",
                    path="path.certificate_id",
                )
            new_id = conn.execute(
                insert(attachments).values(
                    certificate_id=cert_id,
                    filename=filename,
                    media_type=media_type,
                    size=len(content),
                    sha256=sha256,
                    content=content,
                    created_at=utcnow(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            row = (
                conn.execute(
                    select(*[c for c in attachments.c if c.name != "content"]).where(
                        _T.id == new_id
                    )
                )
                .mappings()
                .one()
            )
        return dict(row)

    def attachment_contents(self, cert_id: int) -> list[dict[str, Any]]:
        """Attachments with their bytes, in the order they were added (for the PDF)."""
        with self.db.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    select(attachments).where(_T.certificate_id == cert_id).order_by(_T.id)
                ).mappings()
            ]

    @staticmethod
    def _attachments(conn: Any, cert_id: int) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in conn.execute(
                select(*[c for c in attachments.c if c.name != "content"])
                .where(_T.certificate_id == cert_id)
                .order_by(_T.id)
            ).mappings()
        ]


def _parsed(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["competences"] = json.loads(out["competences"])
    return out


def _state(message: str) -> ConflictError:
    return ConflictError("CERTIFICATE_STATE", message, path="path.certificate_id")


def certificate_not_found() -> NotFoundError:
    """The 404 of an unknown certificate (or one the caller may not see)."""
    return NotFoundError("CERTIFICATE_NOT_FOUND", "no such certificate", path="path.certificate_id")
