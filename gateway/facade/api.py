"""Routes of the volunteer facade under ``/v1/volunteering`` (mounted by ``create_app``).

Public, no login: the list of current opportunities (JSON, iCalendar, schema.org JSON-LD), one
opportunity, an organisation's profile, the certificate template and certificate verification.
Everything else carries a bearer token (gateway/facade/auth.py) with a role:

=====================  ========================================================================
volunteer              register (anonymous or identified), apply, log hours, draft certificates,
                       messages, own statistics, export and erase own data
organisation_user      the organisation's profile, postings (also bulk import and CSV export),
                       applications, hours (own record, approval), certificates, statistics
policy_analyst         the policy cut of the statistics (JSON and CSV), small cells suppressed
=====================  ========================================================================

An organisation's data is writable only by its own users (the token's ``organisation``);
another organisation's resources answer 404 (or 403 when the organisation is in the path), so
ids reveal nothing. Every refusal is ``{error: {code, message, details[path]}}`` with a stable
code; the status codes each route can answer are in the OpenAPI document.

No ``from __future__ import annotations`` here: FastAPI resolves the dependency aliases defined
inside :func:`create_facade_router` (``Caller``, ``Listed``) from the live annotations.
"""

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.api.models import ErrorBody
from gateway.facade import models as m
from gateway.facade.auth import Principal
from gateway.facade.errors import (
    ConflictError,
    FacadeError,
    ForbiddenError,
    IssuerUnavailableError,
    NotFoundError,
    TooLargeError,
    UnprocessableError,
)
from gateway.facade.imports import export_csv, parse_import
from gateway.facade.service import PREFIX, Facade
from gateway.facade.statistics import to_csv
from gateway.facade.syndication import to_ical, to_jsonld
from gateway.store.facade import ListQuery
from gateway.store.facade.listings import SORTS, opportunity_not_found
from gateway.store.maintenance import analyze

__all__ = ["create_facade_router", "install_facade"]

_E: dict[str, Any] = {"model": ErrorBody}
_AUTH: dict[int | str, dict[str, Any]] = {401: _E, 403: _E, 422: _E, 503: _E}
_AUTH_404: dict[int | str, dict[str, Any]] = {**_AUTH, 404: _E}
_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A token of the configured issuer (facade.auth): iss, aud, sub, exp, roles",
)

OrgPath = Annotated[str, Path(pattern=r"^[0-9]{11}$", description="Registration number")]
IdPath = Annotated[int, Path(ge=1, le=2**53)]
NumberPath = Annotated[str, Path(pattern=r"^[A-Z]{1,8}-[0-9]{4}-[0-9]{6,12}$", max_length=32)]
Sort = Literal["deadline", "-deadline", "starts_at", "-created", "title"]
By = Literal["municipality", "kind", "field", "month", "year"]
assert set(Sort.__args__) == set(SORTS)  # type: ignore[attr-defined]

#: Postings created by one import from which the planner statistics are refreshed at once.
_ANALYZE_AFTER_IMPORT = 200


def _error_response(exc: FacadeError | IssuerUnavailableError) -> JSONResponse:
    body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
    headers = None
    if exc.status == 401:
        # RFC 6750: tell the client what kind of credentials would do.
        headers = {
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.code}"'
        }
    return JSONResponse(body, status_code=exc.status, headers=headers)


def install_facade(app: FastAPI, facade: Facade) -> None:
    """Mount the facade's routes on ``app`` and answer its errors with their own statuses."""

    async def on_facade_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FacadeError | IssuerUnavailableError)
        return _error_response(exc)

    # Starlette picks the handler of the nearest class in the exception's MRO, so these win
    # over the app's GatewayError handler (which maps every BadInputError to 422).
    app.add_exception_handler(FacadeError, on_facade_error)
    app.add_exception_handler(IssuerUnavailableError, on_facade_error)
    app.include_router(create_facade_router(facade))


def _day_start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time.min, tzinfo=UTC)


def _day_end(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time.max, tzinfo=UTC)


def _minutes(hours: float) -> int:
    return round(hours * 60)


def create_facade_router(facade: Facade) -> APIRouter:
    """The facade's routes over a built :class:`Facade`."""
    router = APIRouter(prefix=PREFIX, tags=["volunteering"])
    store = facade.store
    config = facade.config

    def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        token = credentials.credentials if credentials else None
        return facade.verifier.principal(f"Bearer {token}" if token else None)

    def optional_principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal | None:
        return facade.verifier.verify(credentials.credentials) if credentials else None

    Caller = Annotated[Principal, Security(principal)]

    # -- public: the list and its syndication ----------------------------------------------

    # async: it only reads the query string, so it needs no thread of the pool.
    async def list_query(
        municipality: Annotated[str | None, Query(max_length=100)] = None,
        city: Annotated[str | None, Query(max_length=100)] = None,
        digital: Annotated[bool | None, Query(description="Only digital (or only not)")] = None,
        kind: Annotated[m.Kind | None, Query()] = None,
        date_from: Annotated[
            date | None, Query(alias="from", description="Time overlaps from this day (UTC)")
        ] = None,
        date_to: Annotated[date | None, Query(alias="to", description="... to this day")] = None,
        skill: Annotated[str | None, Query(max_length=100)] = None,
        q: Annotated[str | None, Query(max_length=100, description="Text in the posting")] = None,
        organisation: Annotated[str | None, Query(pattern=r"^[0-9]{11}$")] = None,
        sort: Sort = "deadline",
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
        per_page: Annotated[int, Query(ge=1, le=config.max_page_size)] = 20,
    ) -> ListQuery:
        return ListQuery(
            municipality=municipality,
            city=city,
            digital=digital,
            kind=kind,
            date_from=_day_start(date_from),
            date_to=_day_end(date_to),
            skill=skill,
            text=q,
            organisation=organisation,
            sort=sort,
            page=page,
            per_page=per_page,
        )

    Listed = Annotated[ListQuery, Depends(list_query)]

    def _page(query: ListQuery) -> tuple[list[dict[str, Any]], int, bool]:
        rows, total, capped = store.listings.public_page(
            query, datetime.now(UTC), count_cap=config.list_count_cap
        )
        return [facade.opportunity_view(r) for r in rows], total, capped

    # The three list routes answer from facade.pages (gateway/facade/cache.py): the same bytes
    # for everyone asking the same page, computed once per list_cache_seconds or write.

    def _json_page(query: ListQuery) -> bytes:
        items, total, capped = _page(query)
        page = m.OpportunityPage.model_validate(
            {
                "items": items,
                "total": total,
                "total_capped": capped,
                "page": query.page,
                "per_page": query.per_page,
            }
        )
        # What FastAPI would make of the response model, made once for every reader.
        return page.model_dump_json(by_alias=True).encode()

    @router.get(
        "/opportunities",
        response_model=m.OpportunityPage,
        responses={422: _E},
        summary="Current opportunities (public, no login)",
        description="Every listing field with live counters. Postings past their deadline are "
        "never listed. Filters: place, kind, dates, skill, text; sorting; pagination. "
        "`total` is exact up to `facade.list_count_cap` matches (default 1000); beyond, "
        "`total_capped` is true and `total` is that bound ('1000+'). Pages are served from "
        "memory for up to `facade.list_cache_seconds` (default 2 s); a write to this "
        "instance shows at once, one to another instance within that time.",
    )
    async def list_opportunities(query: Listed) -> Response:
        body = await facade.pages.page(("json", query), lambda: _json_page(query))
        return Response(body, media_type="application/json")

    @router.get(
        "/opportunities.ics",
        response_class=Response,
        responses={
            200: {"content": {"text/calendar": {"schema": {"type": "string"}}}},
            422: _E,
        },
        summary="Current opportunities as an iCalendar feed (same filters)",
    )
    async def list_ical(query: Listed) -> Response:
        def compute() -> bytes:
            items, _, _ = _page(query)
            return to_ical(items, base_url=facade.base_url, now=datetime.now(UTC))

        body = await facade.pages.page(("ics", query), compute)
        return Response(body, media_type="text/calendar; charset=utf-8")

    @router.get(
        "/opportunities.jsonld",
        response_class=Response,
        responses={
            200: {"content": {"application/ld+json": {"schema": {"type": "object"}}}},
            422: _E,
        },
        summary="Current opportunities as schema.org JSON-LD (ItemList of JobPosting)",
    )
    async def list_jsonld(query: Listed) -> Response:
        def compute() -> bytes:
            items, _, _ = _page(query)
            document = to_jsonld(items, list_url=f"{facade.base_url}{PREFIX}/opportunities.jsonld")
            return bytes(JSONResponse(document).body)

        body = await facade.pages.page(("jsonld", query), compute)
        return Response(body, media_type="application/ld+json")

    @router.get(
        "/opportunities/{opportunity_id}",
        response_model=m.OpportunityOut,
        responses={401: _E, 404: _E, 422: _E, 503: _E},
        summary="One opportunity (public while current; its organiser also sees it archived)",
    )
    def get_opportunity(
        opportunity_id: IdPath,
        who: Annotated[Principal | None, Security(optional_principal)] = None,
    ) -> Any:
        row = store.listings.opportunity(opportunity_id)
        current = row["status"] == "published" and row["deadline"] > datetime.now(UTC)
        own = (
            who is not None
            and who.organisation == row["organisation_id"]
            and ("organisation_user" in who.roles)
        )
        if not (current or own):
            raise opportunity_not_found()
        return facade.opportunity_view(row)

    @router.get(
        "/organisations/{organisation_id}",
        response_model=m.OrganisationOut,
        responses={404: _E, 422: _E},
        summary="An organisation's public profile",
    )
    def get_organisation(organisation_id: OrgPath) -> Any:
        return facade.organisation_view(store.listings.organisation(organisation_id))

    # -- public: certificates ---------------------------------------------------------------

    @router.get(
        "/certificates/template",
        response_model=m.Template,
        summary="The published certificate template (VOL-22)",
    )
    def certificate_template() -> Any:
        return {
            "title": "Izziņa par brīvprātīgo darbu / Certificate of volunteer work",
            "fields": [
                {"name": "number", "meaning": "certificate number, unique"},
                {"name": "holder", "meaning": "the volunteer's name, or alias if anonymous"},
                {"name": "organisation", "meaning": "name and registration number"},
                {"name": "opportunity", "meaning": "what the work was"},
                {"name": "period", "meaning": "first and last day of approved hours"},
                {"name": "hours", "meaning": "approved hours (both records reconciled)"},
                {"name": "competences", "meaning": "competences gained"},
                {"name": "description", "meaning": "optional free text"},
                {"name": "attachments", "meaning": "embedded files with SHA-256"},
                {"name": "verification_url", "meaning": "where anyone can check it"},
            ],
            "sealed_with": "PAdES B-B certification signature (pyHanko), the facade's seal",
            "verification": f"{facade.base_url}{PREFIX}/certificates/{{number}}/verify",
            "sample_pdf": f"{facade.base_url}{PREFIX}/certificates/template.pdf",
        }

    @router.get(
        "/certificates/template.pdf",
        response_class=Response,
        responses={
            200: {
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
            }
        },
        summary="The template as a sample PDF (unsealed, marked SAMPLE)",
    )
    def certificate_sample() -> Response:
        return Response(facade.sample_pdf(), media_type="application/pdf")

    @router.get(
        "/certificates/{number}/verify",
        response_model=m.Verification,
        responses={404: _E, 422: _E},
        summary="Is certificate {number} authentic and unchanged? (public)",
        description="`authentic`: issued here and its seal validates (pyHanko). Give the "
        "SHA-256 of your copy as `sha256` to learn whether it is `unchanged`.",
    )
    def verify_number(
        number: NumberPath,
        sha256: Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{64}$")] = None,
    ) -> Any:
        return facade.verification(number, sha256)

    @router.post(
        "/certificates/verify",
        response_model=m.Verification,
        responses={404: _E, 422: _E},
        summary="Check a certificate PDF: its seal and that it is one issued here (public)",
    )
    def verify_copy(body: m.VerifyIn) -> Any:
        return facade.verify_copy(body.pdf_base64)

    # -- volunteers -------------------------------------------------------------------------

    @router.post(
        "/volunteers",
        status_code=201,
        response_model=m.VolunteerOut,
        responses={**_AUTH, 409: _E},
        summary="Register as a volunteer: anonymous (alias only) or identified",
    )
    def register(body: m.VolunteerIn, who: Caller) -> Any:
        who.require("volunteer")
        return store.people.register(who.subject, body.model_dump())

    @router.get(
        "/volunteers/me",
        response_model=m.VolunteerOut,
        responses=_AUTH_404,
        summary="Your volunteer record",
    )
    def me(who: Caller) -> Any:
        return facade.volunteer_of(who)

    @router.get(
        "/volunteers/me/export",
        response_model=dict[str, Any],
        responses=_AUTH_404,
        summary="Everything held about you, as JSON",
    )
    def export(who: Caller) -> Any:
        data = store.people.export(facade.volunteer_of(who)["id"])
        return JSONResponse(
            content=_jsonable(data),
            headers={"Content-Disposition": 'attachment; filename="volunteer-export.json"'},
        )

    @router.delete(
        "/volunteers/me",
        response_model=m.ErasureOut,
        responses=_AUTH_404,
        summary="Erase your personal data (hours and certificates stay, anonymised)",
    )
    def erase(who: Caller) -> Any:
        kept = store.people.erase(facade.volunteer_of(who)["id"])
        return {
            "erased": True,
            "kept_hours": kept["hours"],
            "kept_certificates": kept["certificates"],
        }

    @router.post(
        "/opportunities/{opportunity_id}/applications",
        status_code=201,
        response_model=m.ApplicationOut,
        responses={**_AUTH_404, 409: _E},
        summary="Apply (409 DEADLINE_PASSED, OPPORTUNITY_FULL, ALREADY_APPLIED)",
    )
    def apply(
        opportunity_id: IdPath,
        who: Caller,
        body: Annotated[m.ApplicationIn | None, Body()] = None,
    ) -> Any:
        volunteer = facade.volunteer_of(who)
        row = store.people.apply(
            volunteer["id"],
            opportunity_id,
            body.motivation if body else None,
            datetime.now(UTC),
        )
        return facade.application_view(row, for_organisation=False)

    @router.get(
        "/volunteers/me/applications",
        response_model=m.ApplicationList,
        responses=_AUTH_404,
        summary="Your applications",
    )
    def my_applications(who: Caller) -> Any:
        rows = store.people.applications(volunteer_id=facade.volunteer_of(who)["id"])
        return {"items": [facade.application_view(r, for_organisation=False) for r in rows]}

    @router.post(
        "/applications/{application_id}/withdraw",
        response_model=m.ApplicationOut,
        responses={**_AUTH_404, 409: _E},
        summary="Withdraw your application",
    )
    def withdraw(application_id: IdPath, who: Caller) -> Any:
        row = store.people.withdraw(application_id, facade.volunteer_of(who)["id"])
        return facade.application_view(row, for_organisation=False)

    @router.get(
        "/volunteers/me/certificates",
        response_model=m.CertificateList,
        responses=_AUTH_404,
        summary="Your certificates",
    )
    def my_certificates(who: Caller) -> Any:
        rows = store.certificates.of(volunteer_id=facade.volunteer_of(who)["id"])
        return {"items": [facade.certificate_view(r) for r in rows]}

    @router.post(
        "/volunteers/me/certificates",
        status_code=201,
        response_model=m.CertificateOut,
        responses={**_AUTH_404, 409: _E},
        summary="Draft a certificate yourself; the organiser approves or returns it (VOL-25)",
    )
    def volunteer_certificate(body: m.CertificateIn, who: Caller) -> Any:
        facade.volunteer_of(who)
        return facade.certificate_view(facade.draft(who, "volunteer", body.model_dump()))

    @router.get(
        "/volunteers/me/statistics",
        response_model=m.Statistics,
        responses=_AUTH_404,
        summary="Your approved hours by organisation, kind or period",
    )
    def my_statistics(
        who: Caller,
        by: Literal["organisation", "kind", "month", "year"] = "organisation",
    ) -> Any:
        return facade.statistics("volunteer", by, volunteer_id=facade.volunteer_of(who)["id"])

    # -- applications, hours and messages (both sides) --------------------------------------

    @router.get(
        "/applications/{application_id}",
        response_model=m.ApplicationOut,
        responses=_AUTH_404,
        summary="An application (its volunteer or organisation)",
    )
    def get_application(application_id: IdPath, who: Caller) -> Any:
        row, side = facade.application_for(who, application_id)
        if side == "organisation":
            row = next(
                r
                for r in store.people.applications(
                    organisation_id=row["organisation_id"], opportunity_id=row["opportunity_id"]
                )
                if r["id"] == application_id
            )
        return facade.application_view(row, for_organisation=side == "organisation")

    @router.put(
        "/applications/{application_id}/hours/{work_date}",
        response_model=m.HoursDay,
        responses={**_AUTH_404, 409: _E},
        summary="Record your side's hours of a day (volunteer or organiser)",
        description="Both sides record; the day's `state` shows whether the records match. "
        "409 HOURS_FINAL once the organiser approved the day.",
    )
    def record_hours(application_id: IdPath, work_date: date, body: m.HoursIn, who: Caller) -> Any:
        row, side = facade.application_for(who, application_id)
        if work_date > datetime.now(UTC).date() + timedelta(days=1):
            raise UnprocessableError(
                "HOURS_IN_FUTURE",
                "hours cannot be recorded for a future day",
                path="path.work_date",
            )
        if row["status"] != "approved":
            raise _not_approved()
        day = store.hours.record(
            application_id,
            "volunteer" if side == "volunteer" else "organiser",
            work_date,
            _minutes(body.hours),
            body.note,
        )
        return facade.hours_view(day)

    @router.get(
        "/applications/{application_id}/hours",
        response_model=m.HoursList,
        responses=_AUTH_404,
        summary="Both records of every day, reconciled",
    )
    def list_hours(application_id: IdPath, who: Caller) -> Any:
        facade.application_for(who, application_id)
        days = store.hours.of_application(application_id)
        approved = sum(d["approved_minutes"] or 0 for d in days)
        return {
            "items": [facade.hours_view(d) for d in days],
            "approved_hours": round(approved / 60, 2),
        }

    @router.post(
        "/applications/{application_id}/hours/{work_date}/approve",
        response_model=m.HoursDay,
        responses={**_AUTH_404, 409: _E},
        summary="The organiser approves a day (final); 422 HOURS_NOT_LOGGED if nobody "
        "recorded it, 409 HOURS_DISPUTED without `hours` when the records differ",
    )
    def approve_hours(
        application_id: IdPath,
        work_date: date,
        who: Caller,
        body: Annotated[m.HoursApproveIn | None, Body()] = None,
    ) -> Any:
        _row, side = facade.application_for(who, application_id)
        if side != "organisation":
            raise _organisers_only()
        hours = body.hours if body and body.hours is not None else None
        day = store.hours.approve(
            application_id, work_date, None if hours is None else _minutes(hours), who.subject
        )
        return facade.hours_view(day)

    @router.get(
        "/applications/{application_id}/messages",
        response_model=m.MessageList,
        responses=_AUTH_404,
        summary="The thread between volunteer and organiser",
    )
    def list_messages(application_id: IdPath, who: Caller) -> Any:
        facade.application_for(who, application_id)
        return {"items": store.people.messages(application_id)}

    @router.post(
        "/applications/{application_id}/messages",
        status_code=201,
        response_model=m.MessageOut,
        responses=_AUTH_404,
        summary="Write to the other side through the platform (no contacts needed)",
    )
    def post_message(application_id: IdPath, body: m.MessageIn, who: Caller) -> Any:
        _row, side = facade.application_for(who, application_id)
        return store.people.post_message(application_id, side, body.body)

    @router.post(
        "/applications/{application_id}/approve",
        response_model=m.ApplicationOut,
        responses={**_AUTH_404, 409: _E},
        summary="Approve an application",
    )
    def approve_application(application_id: IdPath, who: Caller) -> Any:
        return _decide(application_id, who, True, None)

    @router.post(
        "/applications/{application_id}/decline",
        response_model=m.ApplicationOut,
        responses={**_AUTH_404, 409: _E},
        summary="Decline an application (its seat is freed)",
    )
    def decline_application(
        application_id: IdPath,
        who: Caller,
        body: Annotated[m.DecisionIn | None, Body()] = None,
    ) -> Any:
        return _decide(application_id, who, False, body.reason if body else None)

    def _decide(app_id: int, who: Principal, approve: bool, reason: str | None) -> Any:
        _row, side = facade.application_for(who, app_id)
        if side != "organisation":
            raise _organisers_only()
        assert who.organisation is not None
        store.people.decide(app_id, who.organisation, approve, reason)
        return get_application(app_id, who)

    # -- certificates (both sides) ----------------------------------------------------------

    @router.get(
        "/certificates/{certificate_id}",
        response_model=m.CertificateOut,
        responses=_AUTH_404,
        summary="A certificate (its volunteer or organisation)",
    )
    def get_certificate(certificate_id: IdPath, who: Caller) -> Any:
        row, _side = facade.certificate_for(who, certificate_id)
        return facade.certificate_view(row)

    @router.get(
        "/certificates/{certificate_id}/pdf",
        response_class=Response,
        responses={
            200: {
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
            },
            **_AUTH_404,
        },
        summary="The sealed PDF of an issued certificate",
    )
    def certificate_pdf(certificate_id: IdPath, who: Caller) -> Response:
        row, _side = facade.certificate_for(who, certificate_id)
        pdf = store.certificates.pdf(certificate_id) if row["status"] == "issued" else None
        if pdf is None:
            raise NotFoundError(
                "CERTIFICATE_NOT_ISSUED",
                "the certificate has no PDF (not issued, or erased with its holder)",
                path="path.certificate_id",
            )
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{row["number"]}.pdf"'},
        )

    @router.put(
        "/certificates/{certificate_id}",
        response_model=m.CertificateOut,
        responses={**_AUTH_404, 409: _E},
        summary="Change an open certificate (a returned one goes back as submitted)",
    )
    def edit_certificate(certificate_id: IdPath, body: m.CertificateEdit, who: Caller) -> Any:
        row, side = facade.certificate_for(who, certificate_id)
        if side == "volunteer" and row["origin"] != "volunteer":
            raise ForbiddenError(
                "NOT_YOURS", "the organiser drafted this certificate", path="path.certificate_id"
            )
        status = "submitted" if row["origin"] == "volunteer" else "draft"
        return facade.certificate_view(
            store.certificates.edit(certificate_id, body.competences, body.description, status)
        )

    @router.post(
        "/certificates/{certificate_id}/attachments",
        status_code=201,
        response_model=m.AttachmentOut,
        responses={**_AUTH_404, 409: _E, 413: _E, 415: _E},
        summary="Attach a document (size and type limited; embedded under the seal)",
    )
    def add_attachment(certificate_id: IdPath, body: m.AttachmentIn, who: Caller) -> Any:
        facade.certificate_for(who, certificate_id)
        return facade.attach(certificate_id, body.filename, body.media_type, body.content_base64)

    @router.post(
        "/certificates/{certificate_id}/approve",
        response_model=m.CertificateOut,
        responses={**_AUTH_404, 409: _E},
        summary="The organiser approves: the PDF is generated, sealed (PAdES) and numbered",
    )
    def approve_certificate(certificate_id: IdPath, who: Caller) -> Any:
        _row, side = facade.certificate_for(who, certificate_id)
        if side != "organisation":
            raise _organisers_only()
        return facade.certificate_view(facade.issue(certificate_id, who))

    @router.post(
        "/certificates/{certificate_id}/return",
        response_model=m.CertificateOut,
        responses={**_AUTH_404, 409: _E},
        summary="The organiser returns a volunteer's certificate with a reason",
    )
    def return_certificate(certificate_id: IdPath, body: m.ReturnIn, who: Caller) -> Any:
        _row, side = facade.certificate_for(who, certificate_id)
        if side != "organisation":
            raise _organisers_only()
        return facade.certificate_view(store.certificates.send_back(certificate_id, body.reason))

    # -- organisations ----------------------------------------------------------------------

    @router.post(
        "/organisations",
        status_code=201,
        response_model=m.OrganisationOut,
        responses={**_AUTH, 409: _E},
        summary="Register your organisation (its number is your token's `organisation`)",
    )
    def create_organisation(body: m.OrganisationIn, who: Caller) -> Any:
        who.require_organisation(body.registration_number)
        org = store.listings.create_organisation(body.registration_number, body.model_dump())
        return facade.organisation_view(org)

    @router.put(
        "/organisations/{organisation_id}",
        response_model=m.OrganisationOut,
        responses=_AUTH_404,
        summary="Update your organisation's profile",
    )
    def update_organisation(organisation_id: OrgPath, body: m.OrganisationIn, who: Caller) -> Any:
        who.require_organisation(organisation_id)
        if body.registration_number != organisation_id:
            raise UnprocessableError(
                "REGISTRATION_NUMBER", "the number cannot change", path="body.registration_number"
            )
        return facade.organisation_view(
            store.listings.update_organisation(organisation_id, body.model_dump())
        )

    @router.post(
        "/organisations/{organisation_id}/opportunities",
        status_code=201,
        response_model=m.OpportunityOut,
        responses={**_AUTH_404, 409: _E},
        summary="Publish an opportunity",
    )
    def create_opportunity(organisation_id: OrgPath, body: m.OpportunityIn, who: Caller) -> Any:
        who.require_organisation(organisation_id)
        store.listings.organisation(organisation_id)
        return facade.opportunity_view(
            store.listings.create_opportunity(organisation_id, body.model_dump())
        )

    @router.get(
        "/organisations/{organisation_id}/opportunities",
        response_model=m.OpportunityList,
        responses=_AUTH_404,
        summary="Your organisation's opportunities, archived ones included",
    )
    def own_opportunities(
        organisation_id: OrgPath,
        who: Caller,
        status: Literal["published", "archived"] | None = None,
    ) -> Any:
        who.require_organisation(organisation_id)
        rows = store.listings.of_organisation(organisation_id, status)
        return {"items": [facade.opportunity_view(r) for r in rows]}

    @router.get(
        "/organisations/{organisation_id}/opportunities.csv",
        response_class=Response,
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **_AUTH},
        summary="Export your opportunities as CSV (the import format)",
    )
    def export_opportunities(organisation_id: OrgPath, who: Caller) -> Response:
        who.require_organisation(organisation_id)
        rows = store.listings.of_organisation(organisation_id, None)
        return Response(export_csv(rows), media_type="text/csv; charset=utf-8")

    @router.put(
        "/organisations/{organisation_id}/opportunities/{opportunity_id}",
        response_model=m.OpportunityOut,
        responses={**_AUTH_404, 409: _E},
        summary="Change an opportunity (another organisation's: 403)",
    )
    def update_opportunity(
        organisation_id: OrgPath, opportunity_id: IdPath, body: m.OpportunityIn, who: Caller
    ) -> Any:
        who.require_organisation(organisation_id)
        return facade.opportunity_view(
            store.listings.update_opportunity(organisation_id, opportunity_id, body.model_dump())
        )

    @router.post(
        "/organisations/{organisation_id}/opportunities/import",
        response_model=m.ImportResult,
        responses={**_AUTH_404, 409: _E, 413: _E, 415: _E},
        summary="Import opportunities in bulk: CSV or a JSON array, all or nothing",
        description="Rows are validated first; any error refuses the file with 422 "
        "IMPORT_INVALID naming each row by line (`body.line[3].deadline`). Rows with an "
        "`external_ref` update what an earlier import created.",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/json": {
                        "schema": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/OpportunityIn"},
                        }
                    },
                },
            }
        },
    )
    async def import_opportunities(organisation_id: OrgPath, request: Request, who: Caller) -> Any:
        who.require_organisation(organisation_id)
        raw = await _read_limited(request, config.import_max_bytes)
        media_type = request.headers.get("content-type", "")

        def run() -> dict[str, int]:
            store.listings.organisation(organisation_id)
            items = parse_import(raw, media_type, max_rows=config.import_max_rows)
            result = store.listings.import_many(organisation_id, items)
            if result.get("created", 0) >= _ANALYZE_AFTER_IMPORT:
                # A bulk import moves the list's planner statistics at once; the nightly
                # store-analyze job would only catch up tomorrow.
                analyze(store.db, ("vol_opportunities",))
            return result

        return await run_in_threadpool(run)

    @router.get(
        "/organisations/{organisation_id}/applications",
        response_model=m.ApplicationList,
        responses=_AUTH_404,
        summary="Applications for your organisation's opportunities",
    )
    def org_applications(
        organisation_id: OrgPath,
        who: Caller,
        opportunity_id: Annotated[int | None, Query(ge=1, le=2**53)] = None,
        status: Literal["pending", "approved", "declined", "withdrawn"] | None = None,
    ) -> Any:
        who.require_organisation(organisation_id)
        rows = store.people.applications(
            organisation_id=organisation_id, opportunity_id=opportunity_id, status=status
        )
        return {"items": [facade.application_view(r, for_organisation=True) for r in rows]}

    @router.post(
        "/organisations/{organisation_id}/certificates",
        status_code=201,
        response_model=m.CertificateOut,
        responses={**_AUTH_404, 409: _E},
        summary="Generate a certificate draft for an approved application (VOL-24)",
    )
    def org_certificate(organisation_id: OrgPath, body: m.CertificateIn, who: Caller) -> Any:
        who.require_organisation(organisation_id)
        return facade.certificate_view(facade.draft(who, "organisation", body.model_dump()))

    @router.get(
        "/organisations/{organisation_id}/certificates",
        response_model=m.CertificateList,
        responses=_AUTH_404,
        summary="Your organisation's certificates",
    )
    def org_certificates(organisation_id: OrgPath, who: Caller) -> Any:
        who.require_organisation(organisation_id)
        rows = store.certificates.of(organisation_id=organisation_id)
        return {"items": [facade.certificate_view(r) for r in rows]}

    @router.get(
        "/organisations/{organisation_id}/statistics",
        response_model=m.Statistics,
        responses=_AUTH_404,
        summary="Your organisation's own figures (not suppressed: they are its own)",
    )
    def org_statistics(organisation_id: OrgPath, who: Caller, by: By = "month") -> Any:
        who.require_organisation(organisation_id)
        return facade.statistics("organisation", by, organisation_id=organisation_id)

    # -- policy -----------------------------------------------------------------------------

    @router.get(
        "/statistics",
        response_model=m.Statistics,
        responses=_AUTH,
        summary="The policy cut: all organisations, small cells suppressed",
    )
    def policy_statistics(who: Caller, by: By = "municipality") -> Any:
        who.require("policy_analyst")
        return facade.statistics("policy", by)

    @router.get(
        "/statistics.csv",
        response_class=Response,
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **_AUTH},
        summary="The policy cut as CSV",
    )
    def policy_csv(who: Caller, by: By = "municipality") -> Response:
        who.require("policy_analyst")
        cut = facade.statistics("policy", by)
        return Response(
            to_csv(by, cut["cells"], cut["total"]), media_type="text/csv; charset=utf-8"
        )

    return router


def _not_approved() -> FacadeError:
    return ConflictError(
        "APPLICATION_NOT_APPROVED",
        "hours are recorded on an approved application",
        path="path.application_id",
    )


def _organisers_only() -> FacadeError:
    return ForbiddenError(
        "ROLE_REQUIRED", "only the organisation's users may do this", path="header.Authorization"
    )


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLargeError(
            "IMPORT_TOO_LARGE", f"an import may be at most {limit} bytes", path="body"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(
                "IMPORT_TOO_LARGE", f"an import may be at most {limit} bytes", path="body"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    return value
