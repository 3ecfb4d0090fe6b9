"""The e-services on the local API: PLUS answers portal requests and registers the parties.

::

    GET  /v1/eservices/requests?status=pending&after=&limit=   requests, oldest first
    GET  /v1/eservices/requests/{id}                           one request and its answer
    POST /v1/eservices/requests/{id}/answer                    PLUS's answer (202)
    PUT  /v1/eservices/parties                                 an employer, municipality or
                                                               VPD volunteer, and its clients

The answer crosses the ``eservice_answer`` route (data scope, signature, outbox, DVS
notification) exactly as ``POST /v1/outbound/eservice_answer`` would; this endpoint only takes
the request id from the path and ``content`` as an object. The Idempotency-Key defaults to
``eservice-answer:<id>``, so a repeated answer is idempotent and a different second answer is
``409 ESERVICE_ALREADY_ANSWERED``; an unknown request is ``404 ESERVICE_REQUEST_UNKNOWN``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.errors import error_response, gateway_error_response
from gateway.api.models import ErrorBody
from gateway.errors import GatewayError
from gateway.eservices.errors import AlreadyAnsweredError, UnknownRequestError
from gateway.eservices.scope import ScopeResult
from gateway.pipeline.exchange import Exchange
from gateway.store.eservices import Party

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = ["AnswerBody", "PartyBody", "create_eservices_router"]

_REQUEST_ID = r"^[A-Za-z0-9_\-:.]{1,64}$"
#: Every error answer's one shape (gateway/api/errors.py).
_ERROR: dict[str, Any] = {"model": ErrorBody}


class AnswerBody(BaseModel):
    """PLUS's answer to one request."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["answered", "accepted", "rejected"]
    #: The answer's data; the gateway strips it to the requester's data scope.
    content: dict[str, Any] | None = None
    #: The person's official e-address is active: notify through DVS too (ES-16, ES-31).
    notify_e_address: bool = False
    #: The subject is a minor (the stricter scope), when the personal code cannot tell.
    minor: bool = False


class PartyBody(BaseModel):
    """An employer, municipality or VPD volunteer PLUS registers for the e-services."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["employer", "municipality", "volunteer"]
    registration_number: str | None = Field(None, pattern=r"^[0-9]{11}$")
    personal_code: str | None = Field(
        None, pattern=r"^([0-3][0-9][0-1][0-9][0-9]{2}-[0-9]{5}|3[2-9][0-9]{4}-[0-9]{5})$"
    )
    legal_form: str | None = Field(None, pattern=r"^[A-Za-z0-9_\-]{1,40}$")
    state_share_percent: float | None = Field(None, ge=0, le=100)
    volunteer_kind: Literal["probation_volunteer", "companion"] | None = None
    #: The clients assigned to it: replaces every assignment (also those work assignments and
    #: tasks made), which is how PLUS ends one; absent leaves them as they are.
    clients: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-]{0,39}$")]] | None = (
        Field(None, max_length=10000)
    )


def _scope_summary(result: ScopeResult | None) -> dict[str, Any]:
    if result is None:
        return {"stripped_fields": [], "stripped_count": 0, "removed_clients": 0}
    return {
        "stripped_fields": result.stripped_fields,
        "stripped_count": result.stripped_count,
        "removed_clients": result.removed_clients,
    }


def create_eservices_router(runtime: Runtime) -> APIRouter:
    """The ``/v1/eservices`` routes over the loaded runtime."""
    router = APIRouter(prefix="/v1/eservices", tags=["eservices"])
    store = runtime.store.eservices
    mapping = runtime.mappings.get("eservice_answer")

    def unknown(request_id: str) -> JSONResponse:
        return error_response(
            404,
            UnknownRequestError.code,
            "no e-service request with this id",
            [{"path": "request_id", "message": "unknown request"}],
        )

    @router.get("/requests", summary="E-service requests, oldest first")
    def list_requests(
        status: Literal["pending", "answered"] | None = Query(None),
        after: str | None = Query(None, pattern=_REQUEST_ID),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        rows = store.page(status=status, limit=limit, after=after)
        return {"requests": [r.public() for r in rows]}

    @router.get(
        "/requests/{request_id}",
        summary="One request, its answer and notification",
        responses={404: _ERROR},
    )
    def get_request(request_id: str) -> Any:
        row = store.get(request_id)
        return unknown(request_id) if row is None else row.public()

    @router.post(
        "/requests/{request_id}/answer",
        status_code=202,
        summary="PLUS's answer to a portal request (stripped to the requester's scope)",
        responses={404: _ERROR, 409: _ERROR, 422: _ERROR, 503: _ERROR},
    )
    async def answer(
        request_id: str,
        body: AnswerBody,
        request: Request,
        idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
        user_id: str | None = Header(None, alias="X-User-Id", pattern=r"^[A-Za-z0-9_\-:.]{1,64}$"),
    ) -> Any:
        found = await run_in_threadpool(store.get, request_id)
        if found is None:
            return unknown(request_id)
        canonical: dict[str, Any] = {
            "request_id": request_id,
            "eservice": found.eservice,
            "status": body.status,
            "notify_e_address": body.notify_e_address,
        }
        if body.content is not None:
            # The message carries its content as JSON text (the route checks that first).
            canonical["content"] = json.dumps(body.content, ensure_ascii=False)
        exchange = Exchange(
            direction="out",
            partner="",
            mapping=mapping,
            canonical=canonical,
            idempotency_key=idempotency_key or f"eservice-answer:{request_id}",
            user_id=user_id,
            correlation_id=request_id,
        )
        exchange.context["minor"] = body.minor
        try:
            exchange = await run_in_threadpool(runtime.routes.outbound, exchange)
        except UnknownRequestError:
            return unknown(request_id)
        except AlreadyAnsweredError as exc:
            return gateway_error_response(exc, 409)
        except GatewayError as exc:
            exc.message_id = None  # nothing was stored under the id minted for it
            return gateway_error_response(exc)
        worker = getattr(request.app.state, "worker", None)
        if worker is not None and exchange.created:
            worker.wake()  # the portal waits: do not wait for the poll interval
        row = store.get(request_id)
        return JSONResponse(
            {
                "id": exchange.message_id,
                "status": "pending",
                "message_type": "eservice_answer",
                "institution": exchange.partner or runtime.eservices.portal,
                "request_id": request_id,
                "notification_message_id": row.notification_message_id if row else None,
                "scope": _scope_summary(exchange.context.get("scope")),
            },
            status_code=202,
            headers={"Location": f"/v1/messages/{exchange.message_id}"},
        )

    @router.put(
        "/parties",
        summary="Register an employer, municipality or VPD volunteer",
        responses={422: _ERROR},
    )
    def put_party(body: PartyBody) -> Any:
        if body.kind == "volunteer":
            if body.personal_code is None:
                return error_response(
                    422,
                    "REQUEST_INVALID",
                    "a volunteer is registered by personal code",
                    [{"path": "personal_code", "message": "required"}],
                )
            key = runtime.eservices.access.volunteer_key(body.personal_code)
        else:
            if body.registration_number is None:
                return error_response(
                    422,
                    "REQUEST_INVALID",
                    f"an {body.kind} is registered by registration number",
                    [{"path": "registration_number", "message": "required"}],
                )
            key = runtime.eservices.access.organisation_key(body.registration_number)
        store.put_party(
            Party(
                party_key=key,
                kind=body.kind,
                legal_form=body.legal_form,
                state_share_percent=body.state_share_percent,
                volunteer_kind=body.volunteer_kind,
            ),
            body.clients,
        )
        return {"kind": body.kind, "clients": len(body.clients) if body.clients else 0}

    return router
