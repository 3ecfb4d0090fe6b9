"""``POST /v1/queries/{query}``: PLUS asks an institution about one of its clients."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.errors import ErrorResponse
from gateway.api.fields import XmlText
from gateway.api.models import ErrorBody
from gateway.channels.queries import InstitutionQueries
from gateway.errors import BadInputError, GatewayError
from gateway.registries.client import QueryContext
from gateway.registries.errors import http_status

__all__ = ["create_queries_router"]

_IDENT = r"^[A-Za-z0-9_\-:.]{1,64}$"
_CASE = r"^[A-Za-z0-9][A-Za-z0-9_\-:./]{0,63}$"


class InstitutionQuery(BaseModel):
    """Who asks, why, whom, and the query itself (everything but ``query`` is audited)."""

    model_config = ConfigDict(extra="forbid")

    institution: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9]{0,15}$",
        description="Who to ask; may be omitted when only one institution answers the query",
    )
    purpose: XmlText = Field(min_length=1, max_length=500, description="Why the data is needed")
    officer_id: str = Field(pattern=_IDENT, description="The VPD officer asking (userId header)")
    case_id: str = Field(pattern=_CASE, description="The PLUS case the query is made for")
    query: dict[str, Any] = Field(
        description="The request, per the query's request schema (components/schemas/<query>_query)"
    )


class InstitutionAnswerBody(BaseModel):
    """An institution's verified answer."""

    institution: str
    query: str
    status: str = Field(description="ok | not_found")
    query_id: str = Field(description="The id of our request (the header's id)")
    response_id: str
    answered_at: str
    answer_sha256: str = Field(description="SHA-256 of `data`, as audited")
    data: dict[str, Any]


def _error(error: GatewayError) -> JSONResponse:
    status = 422 if isinstance(error, BadInputError) else http_status(error)
    if error.code == "SOAP_UNKNOWN_OPERATION":
        status = 404
    return ErrorResponse(
        {"error": {**error.as_dict(), "details": error.details}}, status_code=status
    )


def create_queries_router(queries: InstitutionQueries) -> APIRouter:
    """The router over the built :class:`InstitutionQueries`."""
    router = APIRouter()
    errors = {"model": ErrorBody}

    @router.post(
        "/v1/queries/{query}",
        response_model=InstitutionAnswerBody,
        responses={404: errors, 422: errors, 502: errors, 503: errors, 504: errors},
        tags=["queries"],
        summary="Ask an institution about a client (synchronous, audited)",
        description="Queries: " + ", ".join(queries.names()) + ". Each institution has its "
        "channel's timeout and a circuit breaker; every query is audited (GET /v1/audit/queries).",
    )
    async def ask(
        body: InstitutionQuery,
        query: str = Path(
            description="The query's name; any other is a 404",
            json_schema_extra={"enum": list(queries.names())},
        ),
    ) -> Any:
        ctx = QueryContext(officer_id=body.officer_id, purpose=body.purpose, case_id=body.case_id)
        try:
            answer = await run_in_threadpool(queries.ask, query, body.query, ctx, body.institution)
        except GatewayError as exc:
            return _error(exc)
        return InstitutionAnswerBody(
            institution=answer.institution,
            query=answer.query,
            status=answer.status,
            query_id=answer.query_id,
            response_id=answer.response_id,
            answered_at=answer.answered_at,
            answer_sha256=answer.sha256,
            data=answer.data,
        )

    return router
