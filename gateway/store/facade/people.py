"""Volunteers, their applications and the messages through the platform; export and erasure.

The seat rule is one conditional UPDATE of the opportunity's live counter (``applied <
volunteers_needed`` and the deadline not passed): of two last-seat applications at once exactly
one changes a row, on SQLite (one writer) and on PostgreSQL (the second UPDATE waits for the
first's row lock, then re-evaluates its WHERE) alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.facade.errors import ConflictError, NotFoundError
from gateway.store.db import Database
from gateway.store.facade.changes import list_version
from gateway.store.facade.listings import opportunity_not_found
from gateway.store.facade.tables import (
    applications,
    attachments,
    certificates,
    hours,
    messages,
    opportunities,
    volunteers,
)
from gateway.store.schema import utcnow

__all__ = ["People"]

_A = applications.c
_O = opportunities.c
_V = volunteers.c

#: Columns of a volunteer that are personal data (cleared by erasure).
PERSONAL_COLUMNS = ("first_name", "last_name", "email", "phone", "personal_code", "municipality")


class People:
    """Volunteers, applications and messages over the shared :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: Applying, deciding and withdrawing move the live counters the public list shows.
        self.version = list_version(db)

    # -- volunteers -------------------------------------------------------------------------

    def register(self, subject: str, data: dict[str, Any]) -> dict[str, Any]:
        """Register the token's subject as a volunteer; 409 when already registered."""
        values = {k: data.get(k) for k in ("alias", *PERSONAL_COLUMNS)}
        try:
            with self.db.transaction() as conn:
                new_id = conn.execute(
                    insert(volunteers).values(
                        subject=subject, mode=data["mode"], **values, created_at=utcnow()
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
        except IntegrityError as exc:
            raise ConflictError(
                "ALREADY_REGISTERED", "this account is already registered as a volunteer"
            ) from exc
        return self.volunteer(int(new_id))

    def volunteer(self, volunteer_id: int) -> dict[str, Any]:
        """A volunteer by id; 404 when unknown."""
        with self.db.connect() as conn:
            row = conn.execute(select(volunteers).where(_V.id == volunteer_id)).mappings().first()
        if row is None:
            raise NotFoundError("VOLUNTEER_NOT_FOUND", "no such volunteer")
        return dict(row)

    def by_subject(self, subject: str) -> dict[str, Any] | None:
        """The volunteer registered for a token subject, if any (erased ones have none)."""
        with self.db.connect() as conn:
            row = conn.execute(select(volunteers).where(_V.subject == subject)).mappings().first()
        return dict(row) if row else None

    # -- applications -----------------------------------------------------------------------

    def apply(
        self, volunteer_id: int, opp_id: int, motivation: str | None, now: datetime
    ) -> dict[str, Any]:
        """Take a seat on an opportunity: 409 DEADLINE_PASSED, OPPORTUNITY_FULL or
        ALREADY_APPLIED; a withdrawn application may apply again."""
        try:
            with self.db.transaction() as conn:
                opp = (
                    conn.execute(select(_O.id, _O.status).where(_O.id == opp_id)).mappings().first()
                )
                if opp is None:
                    raise opportunity_not_found()
                earlier = (
                    conn.execute(
                        select(_A.id, _A.status).where(
                            _A.opportunity_id == opp_id, _A.volunteer_id == volunteer_id
                        )
                    )
                    .mappings()
                    .first()
                )
                if earlier is not None and earlier["status"] != "withdrawn":
                    raise ConflictError(
                        "ALREADY_APPLIED",
                        "you have already applied for this opportunity",
                        path="path.opportunity_id",
                    )
                self._take_seat(conn, opp_id, now)
                if earlier is None:
                    app_id = conn.execute(
                        insert(applications).values(
                            opportunity_id=opp_id,
                            volunteer_id=volunteer_id,
                            status="pending",
                            motivation=motivation,
                            created_at=now,
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
                else:
                    app_id = earlier["id"]
                    conn.execute(
                        update(applications)
                        .where(_A.id == app_id)
                        .values(
                            status="pending",
                            motivation=motivation,
                            decided_at=None,
                            decision_reason=None,
                        )
                    )
        except IntegrityError as exc:
            # The same volunteer twice at once: the unique (opportunity, volunteer) decides.
            raise ConflictError(
                "ALREADY_APPLIED",
                "you have already applied for this opportunity",
                path="path.opportunity_id",
            ) from exc
        self.version.bump()
        return self.application(int(app_id))

    @staticmethod
    def _take_seat(conn: Connection, opp_id: int, now: datetime) -> None:
        taken = conn.execute(
            update(opportunities)
            .where(
                _O.id == opp_id,
                _O.status == "published",
                _O.deadline > now,
                _O.applied < _O.volunteers_needed,
            )
            .values(applied=_O.applied + 1)
        )
        if taken.rowcount == 1:
            return
        opp = conn.execute(select(_O.status, _O.deadline).where(_O.id == opp_id)).mappings().one()
        if opp["status"] != "published" or opp["deadline"] <= now:
            raise ConflictError(
                "DEADLINE_PASSED",
                "the application deadline of this opportunity has passed",
                path="path.opportunity_id",
            )
        raise ConflictError(
            "OPPORTUNITY_FULL",
            "every seat of this opportunity is taken",
            path="path.opportunity_id",
        )

    def application(self, app_id: int) -> dict[str, Any]:
        """An application with its opportunity's organisation and title; 404 when unknown."""
        with self.db.connect() as conn:
            row = self._application(conn, app_id)
        return row

    @staticmethod
    def _application(conn: Connection, app_id: int) -> dict[str, Any]:
        row = (
            conn.execute(
                select(
                    applications,
                    _O.organisation_id,
                    _O.title.label("opportunity_title"),
                    _V.alias.label("volunteer_alias"),
                    _V.mode.label("volunteer_mode"),
                )
                .join(opportunities, _O.id == _A.opportunity_id)
                .join(volunteers, _V.id == _A.volunteer_id)
                .where(_A.id == app_id)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise application_not_found()
        return dict(row)

    def applications(
        self,
        *,
        volunteer_id: int | None = None,
        organisation_id: str | None = None,
        opportunity_id: int | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """Applications of a volunteer or of an organisation, newest first."""
        query = (
            select(
                applications,
                _O.organisation_id,
                _O.title.label("opportunity_title"),
                _V.alias.label("volunteer_alias"),
                _V.mode.label("volunteer_mode"),
                _V.first_name,
                _V.last_name,
                _V.email,
                _V.phone,
            )
            .join(opportunities, _O.id == _A.opportunity_id)
            .join(volunteers, _V.id == _A.volunteer_id)
            .order_by(_A.id.desc())
        )
        if volunteer_id is not None:
            query = query.where(_A.volunteer_id == volunteer_id)
        if organisation_id is not None:
            query = query.where(_O.organisation_id == organisation_id)
        if opportunity_id is not None:
            query = query.where(_A.opportunity_id == opportunity_id)
        if status is not None:
            query = query.where(_A.status == status)
        with self.db.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def decide(self, app_id: int, org_id: str, approve: bool, reason: str | None) -> dict[str, Any]:
        """Approve or decline a pending application of the organisation's posting."""
        with self.db.transaction() as conn:
            row = self._application(conn, app_id)
            if row["organisation_id"] != org_id:
                raise application_not_found()
            if row["status"] != "pending":
                raise ConflictError(
                    "APPLICATION_STATE",
                    f"the application is {row['status']}, not pending",
                    path="path.application_id",
                )
            now = utcnow()
            conn.execute(
                update(applications)
                .where(_A.id == app_id, _A.status == "pending")
                .values(
                    status="approved" if approve else "declined",
                    decision_reason=reason,
                    decided_at=now,
                )
            )
            counters = (
                {"approved": _O.approved + 1}
                if approve
                # A declined application gives its seat back.
                else {"applied": _O.applied - 1}
            )
            conn.execute(
                update(opportunities).where(_O.id == row["opportunity_id"]).values(**counters)
            )
        self.version.bump()
        return self.application(app_id)

    def withdraw(self, app_id: int, volunteer_id: int) -> dict[str, Any]:
        """The volunteer withdraws a pending or approved application; its seat is freed."""
        with self.db.transaction() as conn:
            row = self._application(conn, app_id)
            if row["volunteer_id"] != volunteer_id:
                raise application_not_found()
            if row["status"] not in ("pending", "approved"):
                raise ConflictError(
                    "APPLICATION_STATE",
                    f"the application is {row['status']}",
                    path="path.application_id",
                )
            conn.execute(update(applications).where(_A.id == app_id).values(status="withdrawn"))
            counters: dict[str, Any] = {"applied": _O.applied - 1}
            if row["status"] == "approved":
                counters["approved"] = _O.approved - 1
            conn.execute(
                update(opportunities).where(_O.id == row["opportunity_id"]).values(**counters)
            )
        self.version.bump()
        return self.application(app_id)

    # -- messages ---------------------------------------------------------------------------

    def post_message(self, app_id: int, sender: str, body: str) -> dict[str, Any]:
        """Add a message to an application's thread."""
        with self.db.transaction() as conn:
            new_id = conn.execute(
                insert(messages).values(
                    application_id=app_id, sender=sender, body=body, created_at=utcnow()
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            row = conn.execute(select(messages).where(messages.c.id == new_id)).mappings().one()
        return dict(row)

    def messages(self, app_id: int) -> list[dict[str, Any]]:
        """The thread of one application, oldest first."""
        with self.db.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    select(messages)
                    .where(messages.c.application_id == app_id)
                    .order_by(messages.c.id)
                ).mappings()
            ]

    # -- export and erasure -----------------------------------------------------------------

    def export(self, volunteer_id: int) -> dict[str, Any]:
        """Everything the facade holds about one volunteer (GDPR art. 15 and 20)."""
        with self.db.connect() as conn:
            person = dict(
                conn.execute(select(volunteers).where(_V.id == volunteer_id)).mappings().one()
            )
            apps = [
                dict(r)
                for r in conn.execute(
                    select(applications, _O.title.label("opportunity_title"))
                    .join(opportunities, _O.id == _A.opportunity_id)
                    .where(_A.volunteer_id == volunteer_id)
                    .order_by(_A.id)
                ).mappings()
            ]
            ids = [a["id"] for a in apps]
            thread = [
                dict(r)
                for r in conn.execute(
                    select(messages)
                    .where(messages.c.application_id.in_(ids))
                    .order_by(messages.c.id)
                ).mappings()
            ]
            days = [
                dict(r)
                for r in conn.execute(
                    select(hours).where(hours.c.application_id.in_(ids)).order_by(hours.c.id)
                ).mappings()
            ]
            certs = [
                dict(r)
                for r in conn.execute(
                    select(certificates.c.id, certificates.c.number, certificates.c.status)
                    .where(certificates.c.volunteer_id == volunteer_id)
                    .order_by(certificates.c.id)
                ).mappings()
            ]
        person.pop("subject", None)
        return {
            "volunteer": person,
            "applications": apps,
            "messages": thread,
            "hours": days,
            "certificates": certs,
        }

    def erase(self, volunteer_id: int) -> dict[str, int]:
        """Erase a volunteer's personal data, in one transaction.

        Kept, anonymised: the volunteer row (an id, mode ``erased``), applications with their
        status (the live counters stay right), hours without notes, issued certificates
        without their PDF (number, hours, organisation and the PDF's SHA-256 stay, so
        statistics and verification of copies still work). Removed: names, contacts,
        personal code, the token subject, motivations, messages, unissued drafts and the
        content of attachments.
        """
        now = utcnow()
        with self.db.transaction() as conn:
            app_ids = [
                r[0] for r in conn.execute(select(_A.id).where(_A.volunteer_id == volunteer_id))
            ]
            conn.execute(
                update(volunteers)
                .where(_V.id == volunteer_id)
                .values(
                    subject=None,
                    mode="erased",
                    alias="erased",
                    erased_at=now,
                    **dict.fromkeys(PERSONAL_COLUMNS),
                )
            )
            conn.execute(
                update(applications)
                .where(_A.volunteer_id == volunteer_id)
                .values(motivation=None, decision_reason=None)
            )
            conn.execute(delete(messages).where(messages.c.application_id.in_(app_ids)))
            kept_hours = conn.execute(
                update(hours)
                .where(hours.c.application_id.in_(app_ids))
                .values(volunteer_note=None, organiser_note=None)
            ).rowcount
            cert_ids = [
                r[0]
                for r in conn.execute(
                    select(certificates.c.id).where(certificates.c.volunteer_id == volunteer_id)
                )
            ]
            drafts = [
                r[0]
                for r in conn.execute(
                    select(certificates.c.id).where(
                        certificates.c.volunteer_id == volunteer_id,
                        certificates.c.status != "issued",
                    )
                )
            ]
            conn.execute(delete(attachments).where(attachments.c.certificate_id.in_(drafts)))
            conn.execute(delete(certificates).where(certificates.c.id.in_(drafts)))
            conn.execute(
                update(attachments)
                .where(attachments.c.certificate_id.in_(cert_ids))
                .values(content=None)
            )
            kept_certs = conn.execute(
                update(certificates)
                .where(certificates.c.volunteer_id == volunteer_id)
                .values(pdf=None, holder_erased=True, description=None, updated_at=now)
            ).rowcount
        return {"hours": int(kept_hours or 0), "certificates": int(kept_certs or 0)}


def application_not_found() -> NotFoundError:
    """The 404 of an unknown application (or one the caller may not see)."""
    return NotFoundError("APPLICATION_NOT_FOUND", "no such application", path="path.application_id")
