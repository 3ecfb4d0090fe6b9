"""Local API of registry queries (mounted by :func:`gateway.api.app.create_app`).

    POST /v1/registries/{viis|iis|vid|rd}/queries  one registry, synchronously
    POST /v1/registries/profile                    all four in parallel, a status for each
    GET  /v1/audit/queries?personal_code=&from=&to= who looked at this person's data

A bad personal code is a 422 naming ``body.personal_code`` and nothing leaves the gateway.
Failures: 503 (registry unavailable or its circuit open), 504 (timeout), 502 (fault or an
answer that is not usable); the error body names the registry.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model, field_validator

from gateway.api.errors import ErrorResponse
from gateway.api.fields import PERSONAL_CODE_PATTERN, XmlText
from gateway.api.models import ErrorBody
from gateway.errors import GatewayError
from gateway.registries.client import Answer, QueryContext
from gateway.registries.contract import REGISTRIES
from gateway.registries.errors import http_status
from gateway.registries.personal_code import problem

if TYPE_CHECKING:
    from gateway.registries.service import Outcome, RegistryService

__all__ = [
    "AuditPage",
    "ProfileResponse",
    "RegistryAnswer",
    "RegistryQuery",
    "create_registries_router",
]

_IDENT = r"^[A-Za-z0-9_\-:.]{1,64}$"
_CASE = r"^[A-Za-z0-9][A-Za-z0-9_\-:./]{0,63}$"


class Registry(StrEnum):
    """The registries reachable through VISS."""

    viis = "viis"
    iis = "iis"
    vid = "vid"
    rd = "rd"


class RegistryQuery(BaseModel):
    """Who asks about whom, and why (all four fields are audited)."""

    model_config = ConfigDict(extra="forbid")

    personal_code: str = Field(
        pattern=PERSONAL_CODE_PATTERN,
        description="Personal code DDMMYY-NNNNN (checksum verified) or a new code 32NNNN-NNNNN",
        examples=["161175-19997"],
    )
    purpose: XmlText = Field(min_length=1, max_length=500, description="Why the data is needed")
    officer_id: str = Field(pattern=_IDENT, description="The VPD officer asking")
    case_id: str = Field(pattern=_CASE, description="The PLUS case the query is made for")

    @field_validator("personal_code")
    @classmethod
    def _valid_code(cls, value: str) -> str:
        reason = problem(value)
        if reason is not None:
            raise ValueError(f"not a valid personal code: {reason}")
        return value


class _AnswerFields(BaseModel):
    """What every registry's answer carries besides ``registry`` and ``data``."""

    status: Literal["ok", "not_found"]
    query_id: str = Field(description="The VISS message id of the query (in the audit)")
    response_id: str = Field(description="The registry's reference of its answer")
    answered_at: str
    cached: bool = Field(description="True when served from the (optional) answer cache")
    answer_sha256: str = Field(description="SHA-256 of `data` as audited")


def _answer_model(name: str, message_type: str) -> type[_AnswerFields]:
    # One model per registry: ``registry`` is a constant and ``data`` refers to that registry's
    # message type only. A NOT_FOUND answer (result and ids, no data) satisfies every
    # registry's schema, so an untagged oneOf over the four matched several branches.
    data = Annotated[
        dict[str, Any],
        WithJsonSchema(
            {
                # allOf: a bare $ref beside a description is looked up by pydantic, which
                # does not know the mappings' schemas (added to the document afterwards).
                "allOf": [{"$ref": f"#/components/schemas/{message_type}"}],
                "description": f"The answer, mapped to JSON ({message_type})",
            }
        ),
    ]
    return create_model(
        f"{name.capitalize()}Answer",
        __base__=_AnswerFields,
        __doc__=f"A verified answer of {name.upper()} ({message_type}).",
        registry=(Literal[name], ...),  # type: ignore[arg-type]
        data=(data, ...),
    )


#: The answer model of each registry, by name.
ANSWER_MODELS: dict[str, type[_AnswerFields]] = {
    name: _answer_model(name, contract.message_type) for name, contract in REGISTRIES.items()
}
#: A registry's verified answer, mapped to JSON: one of the registries' answer models, told
#: apart by ``registry`` (an OpenAPI discriminator; the branches never overlap).
RegistryAnswer: Any = Annotated[
    Union[tuple(ANSWER_MODELS.values())],  # noqa: UP007
    Field(discriminator="registry"),
]


class ProfileError(BaseModel):
    """Why one registry gave no answer."""

    code: str
    message: str


class ProfileEntry(BaseModel):
    """One registry's part of a profile."""

    status: Literal["ok", "not_found", "timeout", "unavailable", "error"]
    answer: RegistryAnswer | None = None
    error: ProfileError | None = None


class ProfileResponse(BaseModel):
    """Every registry's answer, each with its own status."""

    registries: dict[str, ProfileEntry]


class AuditRow(BaseModel):
    """One audited query."""

    at: datetime
    registry: str
    officer_id: str
    purpose: str
    case_id: str
    personal_code: str
    query_id: str
    response_id: str | None
    status: str
    error_code: str | None
    answer_sha256: str | None
    cached: bool
    duration_ms: int | None


class AuditPage(BaseModel):
    """Who looked at this person's data, newest first."""

    items: list[AuditRow]


def _answer(answer: Answer) -> dict[str, Any]:
    """The answer as its model's JSON (field order of :class:`_AnswerFields`, then the rest).

    Built as a plain dict and returned as a ``JSONResponse``: the answer is already verified,
    XSD-validated and mapped, and having FastAPI validate and serialize it again through the
    response model cost about a millisecond per query (per registry in a profile). The models
    stay the documented contract; tests compare this with their JSON.
    """
    return {
        "status": answer.status,
        "query_id": answer.query_id,
        "response_id": answer.response_id,
        "answered_at": answer.answered_at,
        "cached": answer.cached,
        "answer_sha256": answer.sha256,
        "registry": answer.registry,
        "data": answer.data,
    }


def _error_response(error: GatewayError, registry: str) -> JSONResponse:
    body = {"error": {**error.as_dict(), "registry": registry, "details": error.details}}
    return ErrorResponse(body, status_code=http_status(error))


def _entry(outcome: Outcome) -> dict[str, Any]:
    """One registry's :class:`ProfileEntry`, as its JSON."""
    if outcome.answer is not None:
        return {"status": outcome.answer.status, "answer": _answer(outcome.answer), "error": None}
    assert outcome.error is not None
    error = {"code": outcome.error.code, "message": outcome.error.message}
    return {"status": outcome.status, "answer": None, "error": error}


def _bound(day: date | None, *, end: bool) -> datetime | None:
    # "to" includes its whole day: the bound is the next midnight (UTC), exclusive.
    if day is None or (end and day == date.max):
        return None  # nothing is after the last day there is
    return datetime.combine(day, time.min, tzinfo=UTC) + timedelta(days=1 if end else 0)


def create_registries_router(service: RegistryService) -> APIRouter:
    """The router over a built :class:`RegistryService`."""
    router = APIRouter()
    errors = {"model": ErrorBody}

    def context(body: RegistryQuery) -> QueryContext:
        return QueryContext(officer_id=body.officer_id, purpose=body.purpose, case_id=body.case_id)

    @router.post(
        "/v1/registries/profile",
        response_model=ProfileResponse,
        responses={422: errors},
        tags=["registries"],
        summary="Query all four registries in parallel",
        description="Each registry answers on its own: a slow or broken registry gets status "
        "timeout, unavailable or error without hiding the others' answers.",
    )
    async def profile(body: RegistryQuery) -> Any:
        outcomes = await run_in_threadpool(service.profile, body.personal_code, context(body))
        return JSONResponse({"registries": {n: _entry(o) for n, o in outcomes.items()}})

    @router.post(
        "/v1/registries/{registry}/queries",
        response_model=RegistryAnswer,
        responses={422: errors, 502: errors, 503: errors, 504: errors},
        tags=["registries"],
        summary="Query one registry (VIIS education, IIS disability, VID employment, RD social)",
    )
    async def query(registry: Registry, body: RegistryQuery) -> Any:
        outcome = await run_in_threadpool(
            service.query, registry.value, body.personal_code, context(body)
        )
        if outcome.answer is None:
            assert outcome.error is not None
            return _error_response(outcome.error, registry.value)
        return JSONResponse(_answer(outcome.answer))

    @router.get(
        "/v1/audit/queries",
        response_model=AuditPage,
        responses={422: errors},
        tags=["registries"],
        summary="Who looked at this person's data (registry queries)",
    )
    def audit(
        personal_code: str = Query(
            ...,
            pattern=PERSONAL_CODE_PATTERN,
            description="The person's personal code (DDMMYY-NNNNN)",
            examples=["161175-19997"],
        ),
        from_: Annotated[
            date | None, Query(alias="from", description="From this day (UTC)")
        ] = None,
        to: Annotated[date | None, Query(description="Up to and including this day (UTC)")] = None,
        limit: int = Query(1000, ge=1, le=10_000),
    ) -> AuditPage:
        rows = service.audit.search(
            personal_code,
            since=_bound(from_, end=False),
            until=_bound(to, end=True),
            limit=limit,
        )
        return AuditPage(items=[AuditRow(**r) for r in rows])

    return router
