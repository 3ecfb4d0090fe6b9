"""The local HTTP API for PLUS, the inbound SOAP endpoints, health, readiness and metrics."""

from __future__ import annotations

import hmac
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path as FilePath
from typing import Any

import structlog
from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import __version__
from gateway.api.admin import router as admin_router
from gateway.api.errors import error_response, gateway_error_response, install_error_handlers
from gateway.api.limits import JsonBodyLimits
from gateway.api.models import (
    Accepted,
    ErrorBody,
    ErrorInfo,
    InboxItem,
    InboxPage,
    MessageStatus,
    Readiness,
)
from gateway.api.openapi import complete_responses, require_header
from gateway.api.queries import create_queries_router
from gateway.calendar.api import create_calendar_router
from gateway.delivery import DeliveryWorker
from gateway.errors import (
    CanonicalInvalidError,
    GatewayError,
    SoapContentTypeError,
    UnknownOperationError,
    XmlTooLargeError,
)
from gateway.eservices.api import create_eservices_router
from gateway.facade.api import install_facade
from gateway.jobs.api import jobs_router
from gateway.logging import mask_text
from gateway.opendata.api import create_statistics_router
from gateway.pipeline import Exchange
from gateway.pipeline.steps import is_urgent
from gateway.registries.api import create_registries_router
from gateway.reports.api import create_reports_router
from gateway.runtime import Runtime
from gateway.soap.envelope import build_ack, build_fault
from gateway.soap.http import check_content_type
from gateway.store import IdempotencyConflictError
from gateway.store.health import store_health
from gateway.store.rejections import journal_rejection

__all__ = ["create_app"]

log = structlog.get_logger(__name__)

_ERRORS = {"model": ErrorBody}
_USER_ID_PATTERN = r"[A-Za-z0-9_\-:.]{1,64}"
_USER_ID = re.compile(_USER_ID_PATTERN)
#: Idempotency-Key length, as checked and as published.
_KEY_MAX = 200
#: The largest integer SQLite (and PostgreSQL's bigint) stores: no cursor can be beyond it.
_MAX_CURSOR = 2**63 - 1


def _xml_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/xml": {"schema": {"type": "string"}}}}


def _error(status: int, code: str, message: str, details: list[Any] | None = None) -> JSONResponse:
    return error_response(status, code, message, details)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _RequestContext:
    """Binds a request id to every log line and checks the API key on /v1 calls.

    A plain ASGI middleware: Starlette's ``@app.middleware("http")`` wraps every response in
    a stream and cost about a millisecond of CPU per request in the benchmark.
    """

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:100] or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        # The volunteer facade is public-facing with its own bearer tokens (gateway/facade/),
        # so PLUS's local API key does not guard it.
        if (
            self.api_key
            and scope["path"].startswith("/v1/")
            and not scope["path"].startswith("/v1/volunteering/")
        ):
            given = headers.get(b"x-api-key", b"")
            if not hmac.compare_digest(given, self.api_key):
                response = _error(401, "UNAUTHORIZED", "missing or wrong X-API-Key header")
                await response(scope, receive, send)
                return
        id_header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(runtime: Runtime, worker: DeliveryWorker | None = None) -> FastAPI:
    """Build the FastAPI application over an already loaded runtime."""
    settings = runtime.settings
    api_key = settings.api.api_key.get_secret_value() if settings.api.api_key else None
    app = FastAPI(
        title="plus-gateway local API",
        version=__version__,
        description=(
            "Local API for PLUS. Outbound messages are accepted (202) only once signed and "
            "durably stored; inbound partner messages wait in the inbox until acknowledged. "
            "Every error body is `{error: {code, message, details}}` with a stable code."
        ),
    )
    app.state.runtime = runtime
    app.state.worker = worker
    app.include_router(admin_router)
    install_error_handlers(app)

    # Added first, so it runs inside _RequestContext: the API key is checked before a body
    # is read, and a refused body still gets its X-Request-ID.
    app.add_middleware(
        JsonBodyLimits,
        max_bytes=settings.api.max_body_bytes,
        max_depth=settings.api.max_json_depth,
    )
    app.add_middleware(_RequestContext, api_key=api_key)

    @app.exception_handler(GatewayError)
    async def on_gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        if request.url.path.startswith("/v1/outbound/") and not isinstance(
            exc, IdempotencyConflictError
        ):
            # A refused outbound message was never stored: the id minted for it names nothing
            # PLUS could look up. (A conflict names the earlier message, which is stored.)
            exc.message_id = None
        return gateway_error_response(exc)

    # -- outbound -------------------------------------------------------------------------

    async def accept_outbound(
        message_type: str, request: Request, idempotency_key: str | None, user_id: str | None
    ) -> Response:
        mapping = runtime.mappings.get(message_type)
        if mapping.direction != "outbound":
            raise UnknownOperationError(f"{message_type} is not sent by PLUS")
        if not idempotency_key or len(idempotency_key) > _KEY_MAX:
            return _error(
                400,
                "IDEMPOTENCY_KEY_REQUIRED",
                f"an Idempotency-Key header (1..{_KEY_MAX} characters) is required",
                [{"path": "header.Idempotency-Key", "message": "required"}],
            )
        raw = await request.body()
        try:
            # NaN and Infinity are not JSON; a number of more than 4300 digits is refused by
            # Python with a ValueError (not a JSONDecodeError), so catch every ValueError.
            canonical = json.loads(raw, parse_constant=_no_constant)
        except ValueError as exc:
            raise CanonicalInvalidError(
                "body is not valid JSON",
                details=[{"path": "", "message": str(exc)}],
            ) from exc
        if user_id is not None and not _USER_ID.fullmatch(user_id):
            return _error(
                422,
                "REQUEST_INVALID",
                "X-User-Id must be 1..64 letters, digits or _-:.",
                [{"path": "header.X-User-Id", "message": "invalid"}],
            )
        exchange = Exchange(
            direction="out",
            partner="",  # resolved by the route's address step
            mapping=mapping,
            canonical=canonical,
            idempotency_key=idempotency_key,
            user_id=user_id,
            correlation_id=request.headers.get("x-correlation-id"),
        )
        exchange = await run_in_threadpool(runtime.routes.outbound, exchange)
        structlog.contextvars.bind_contextvars(
            message_id=exchange.message_id, correlation_id=exchange.correlation_id
        )
        if worker is not None and exchange.created:
            worker.wake()
        status, institution = "pending", exchange.partner
        if not exchange.created:
            # An idempotent repeat answers where the first message stands now.
            row = runtime.store.outbox.get(exchange.message_id)
            if row:
                status, institution = row["status"], row["partner"]
        log.info(
            "outbound accepted",
            message_type=message_type,
            institution=institution,
            idempotent_repeat=not exchange.created,
        )
        body = Accepted(
            id=exchange.message_id,
            status=status,
            message_type=message_type,
            institution=institution,
        )
        headers = {"Location": f"/v1/messages/{exchange.message_id}"}
        if not exchange.created:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(body.model_dump(), status_code=202, headers=headers)

    for mapping in runtime.mappings.all():
        if mapping.direction != "outbound":
            continue

        def make(message_type: str) -> Callable[..., Awaitable[Response]]:
            async def endpoint(
                request: Request,
                idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
                user_id: str | None = Header(
                    None,
                    alias="X-User-Id",
                    description="The officer on whose behalf PLUS sends (the userId header)",
                ),
            ) -> Response:
                return await accept_outbound(message_type, request, idempotency_key, user_id)

            return endpoint

        app.add_api_route(
            f"/v1/outbound/{mapping.message_type}",
            make(mapping.message_type),
            methods=["POST"],
            status_code=202,
            response_model=Accepted,
            responses={
                202: {
                    "description": "Signed and durably stored; delivery follows",
                    "headers": {
                        "Location": {
                            "description": "The message's status: /v1/messages/{id}",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        "Idempotent-Replayed": {
                            "description": "`true` when this answers an earlier request "
                            "with the same Idempotency-Key and body",
                            "schema": {"type": "string", "enum": ["true"]},
                        },
                    },
                },
                400: _ERRORS,
                404: _ERRORS,
                409: _ERRORS,
                422: _ERRORS,
                503: _ERRORS,
            },
            summary=f"Send: {mapping.title}",
            description=mapping.description,
            tags=["outbound"],
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{mapping.message_type}"}
                        }
                    },
                }
            },
        )

    @app.post("/v1/outbound/{message_type}", include_in_schema=False)
    async def unknown_outbound(message_type: str) -> Response:
        runtime.mappings.get(message_type)  # raises UnknownOperationError -> 404
        raise UnknownOperationError(f"{message_type} is not sent by PLUS")

    @app.get(
        "/v1/messages/{message_id}",
        response_model=MessageStatus,
        responses={404: _ERRORS},
        tags=["outbound"],
        summary="Status of an outbound message",
    )
    def message_status(message_id: str) -> Any:
        row = runtime.store.outbox.get(message_id)
        if row is None:
            return _error(404, "NOT_FOUND", f"no outbound message {message_id}")
        last_error = (
            ErrorInfo(code=row["last_error_code"], message=row["last_error"] or "")
            if row["last_error_code"]
            else None
        )
        return MessageStatus(
            id=row["message_id"],
            message_type=row["message_type"],
            institution=row["partner"],
            operation=row["operation"],
            status=row["status"],
            attempts=row["attempts"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            next_attempt_at=row["next_attempt_at"] if row["status"] == "pending" else None,
            delivered_at=row["delivered_at"],
            last_error=last_error,
            acknowledgement=json.loads(row["ack"]) if row["ack"] else None,
        )

    # -- inbox ----------------------------------------------------------------------------

    def _inbox_item(row: dict[str, Any]) -> InboxItem:
        return InboxItem(
            id=row["message_id"],
            cursor=row["id"],
            institution=row["partner"],
            operation=row["operation"],
            message_type=row["message_type"],
            partner_message_id=row["partner_message_id"],
            received_at=row["received_at"],
            acked_at=row["acked_at"],
            message=json.loads(row["canonical"]),
        )

    @app.get(
        "/v1/inbox", response_model=InboxPage, tags=["inbox"], summary="Pull received messages"
    )
    def inbox_page(
        after: int = Query(
            0, ge=0, le=_MAX_CURSOR, description="Cursor: return messages after this one"
        ),
        limit: int = Query(50, ge=1, le=500),
        include_acked: bool = Query(False, description="Also return acknowledged messages"),
    ) -> InboxPage:
        rows = runtime.store.inbox.page(after, limit, include_acked=include_acked)
        items = [_inbox_item(r) for r in rows]
        return InboxPage(items=items, next_cursor=items[-1].cursor if items else after)

    @app.post(
        "/v1/inbox/{message_id}/ack",
        response_model=InboxItem,
        responses={404: _ERRORS},
        tags=["inbox"],
        summary="Acknowledge a received message (idempotent)",
    )
    def inbox_ack(message_id: str) -> Any:
        row = runtime.store.inbox.ack(message_id)
        if row is None:
            return _error(404, "NOT_FOUND", f"no inbox message {message_id}")
        return _inbox_item(row)

    app.include_router(create_registries_router(runtime.registries))
    app.include_router(create_queries_router(runtime.queries))
    app.include_router(create_statistics_router(runtime))
    app.include_router(create_reports_router(runtime))
    app.include_router(create_eservices_router(runtime))
    app.include_router(jobs_router)
    app.include_router(create_calendar_router(runtime.calendar))
    if runtime.facade is not None:
        # The volunteer facade under /v1/volunteering (gateway/facade/api.py).
        install_facade(app, runtime.facade)

    # -- SOAP -----------------------------------------------------------------------------

    # Documented as an enum, so clients (and the fuzzer) see the real endpoints; any other
    # name is a 404 in the error shape, as documented.
    endpoint_param = Path(
        description="`ecase`, or the name of an institution connected directly",
        json_schema_extra={"enum": sorted(runtime.wsdl_documents)},
    )
    xsd_root = FilePath(settings.paths.xsd)
    xsd_param = Path(
        description="A schema under xsd/, as the served WSDLs import it",
        json_schema_extra={
            "enum": sorted(p.relative_to(xsd_root).as_posix() for p in xsd_root.rglob("*.xsd"))
        },
    )

    @app.get(
        "/soap/{endpoint}",
        tags=["soap"],
        summary="Our WSDL (?wsdl) at `ecase` or a direct institution's endpoint",
        response_class=Response,
        responses={200: _xml_doc("The WSDL"), 404: _ERRORS},
    )
    def soap_wsdl(endpoint: str = endpoint_param) -> Response:
        document = runtime.wsdl_documents.get(endpoint)
        if document is None:
            return _error(404, "NOT_FOUND", f"no SOAP service at /soap/{endpoint}")
        return Response(document, media_type="text/xml; charset=utf-8")

    def receipt(done: Exchange) -> bytes:
        # Run in a worker thread: signing the receipt costs about a millisecond, which on
        # the event loop would hold up every other request meanwhile.
        assert done.mapping is not None and done.partner_message_id is not None
        return build_ack(
            done.mapping.root.split("}")[0].lstrip("{"),
            message_id=done.partner_message_id,
            status="ACCEPTED" if done.created else "DUPLICATE",
            reference=done.message_id,
            # X-Road style: the answer carries the request's header blocks back.
            header=done.header.serialize() if done.header else None,
            # A signed receipt: the sender can prove what the gateway accepted.
            signer=runtime.signer,
        )

    def refuse(exchange: Exchange, exc: GatewayError) -> bytes:
        _journal_rejection(runtime, exchange, exc)
        # A signed receipt of the refusal (c:ErrorDetail signed with the gateway's key).
        return build_fault(exc, runtime.signer)

    @app.post(
        "/soap/{endpoint}",
        tags=["soap"],
        summary="Inbound SOAP: `ecase` for every E-case institution, or a direct one's name",
        description="SOAP 1.1 per the WSDL at the same address (`?wsdl`); partners' toolkits, "
        "not PLUS, call it. A refused message is a SOAP Fault with HTTP 500, as SOAP 1.1 "
        "requires (415 for a Content-Type other than text/xml).",
        response_class=Response,
        responses={
            200: _xml_doc("A SOAP envelope with the signed acknowledgement"),
            404: _ERRORS,
            415: _xml_doc("A SOAP Fault: the Content-Type is not text/xml"),
            500: _xml_doc("A SOAP Fault: the message is refused (c:ErrorDetail/c:Code says why)"),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"text/xml": {"schema": {"type": "string"}}},
            }
        },
    )
    async def soap_inbound(request: Request, endpoint: str = endpoint_param) -> Response:
        if endpoint not in runtime.wsdl_documents:
            return _error(404, "NOT_FOUND", f"no SOAP service at /soap/{endpoint}")
        exchange = Exchange(
            direction="in",
            partner="",
            endpoint=endpoint,
            soap_action=request.headers.get("soapaction"),
        )
        try:
            # Before the body is read: a request that is not SOAP 1.1 is not worth reading.
            check_content_type(request.headers.get("content-type"))
            exchange.raw = await _read_limited(request, settings.xml.max_bytes)
            exchange = await run_in_threadpool(runtime.routes.inbound, exchange)
        except GatewayError as exc:
            exc.bind(partner=exchange.partner or None, operation=exchange.operation)
            fault = await run_in_threadpool(refuse, exchange, exc)
            # SOAP 1.1 answers faults with 500; a wrong media type is an HTTP-level 415.
            status = 415 if isinstance(exc, SoapContentTypeError) else 500
            return Response(fault, status_code=status, media_type="text/xml; charset=utf-8")
        assert exchange.mapping is not None
        structlog.contextvars.bind_contextvars(
            message_id=exchange.message_id, correlation_id=exchange.correlation_id
        )
        log.info(
            "inbound accepted",
            institution=exchange.partner,
            operation=exchange.operation,
            duplicate=not exchange.created,
        )
        if (
            worker is not None
            and exchange.created
            and is_urgent(exchange.mapping, exchange.canonical)
        ):
            worker.wake()  # a monitoring violation must not wait for the poll interval
        ack = await run_in_threadpool(receipt, exchange)
        return Response(ack, media_type="text/xml; charset=utf-8")

    @app.get(
        "/xsd/{path:path}",
        tags=["soap"],
        summary="Schemas imported by the served WSDLs",
        response_class=Response,
        responses={200: _xml_doc("The XSD"), 404: _ERRORS},
    )
    def xsd_file(path: str = xsd_param) -> Response:
        root = FilePath(settings.paths.xsd).resolve()
        try:
            target = (root / path).resolve()
            found = target.is_relative_to(root) and target.suffix == ".xsd" and target.is_file()
        except (ValueError, OSError):  # a NUL byte, a name too long for the file system
            found = False
        if not found:
            return _error(404, "NOT_FOUND", "no such schema")
        return Response(target.read_bytes(), media_type="text/xml; charset=utf-8")

    # -- operations -----------------------------------------------------------------------

    @app.get("/health", tags=["operations"], summary="Liveness")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["operations"],
        summary="Readiness with details",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready (the checks say why)"}},
    )
    def ready() -> JSONResponse:
        checks: dict[str, Any] = {}
        # A write probe, not a ping: a full disk answers reads and refuses every accept.
        checks["store"] = store_health(runtime.store)
        checks["schemas"] = len(runtime.schemas.names())
        checks["routes"] = len(runtime.routes.routes)
        checks["registries"] = runtime.registries.breaker_states()
        checks["institution_queries"] = runtime.queries.breaker_states()
        jobs = getattr(app.state, "jobs", None)
        if jobs is not None:
            # Details only: a failing job (CKAN down) does not make the gateway unready.
            checks["jobs"] = jobs.health()
        # Delivery switched off by configuration (an accept-only instance) is not a failure;
        # a worker that should run and does not is.
        delivering = worker is not None and settings.delivery.enabled
        if worker is not None:
            checks["delivery"] = "ok" if worker.alive else "stopped" if delivering else "disabled"
            # Details only: a partner that is down (its breaker open, its messages waiting)
            # does not make the gateway unready.
            checks["delivery_partners"] = worker.health()
        ok = checks["store"] == "ok" and (not delivering or (worker is not None and worker.alive))
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    def metrics() -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for m in runtime.mappings.all():
            # PLUS sends the request schema; what it receives in the inbox is the full one.
            components[m.message_type] = (
                m.request_schema if m.direction == "outbound" else m.json_schema
            )
        for path, item in schema["paths"].items():
            if path.startswith("/v1/outbound/"):
                # Checked by accept_outbound (400 IDEMPOTENCY_KEY_REQUIRED, 422): documented
                # here, since a required FastAPI header would answer a missing one otherwise.
                require_header(
                    item["post"],
                    "Idempotency-Key",
                    {"type": "string", "minLength": 1, "maxLength": _KEY_MAX},
                )
                for parameter in item["post"].get("parameters", []):
                    if parameter.get("name") == "X-User-Id":
                        parameter["schema"] = {"type": "string", "pattern": f"^{_USER_ID_PATTERN}$"}
        complete_responses(
            schema,
            api_key=api_key is not None,
            max_body_bytes=settings.api.max_body_bytes,
            max_json_depth=settings.api.max_json_depth,
        )
        app.openapi_schema = schema
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app


async def _read_limited(request: Request, limit: int) -> bytes:
    """Read the body, refusing more than ``limit`` bytes before holding them all in memory."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise XmlTooLargeError(f"request of {declared} bytes is larger than the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise XmlTooLargeError(f"request is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _journal_rejection(runtime: Runtime, exchange: Exchange, exc: GatewayError) -> None:
    # Before the sender is identified, the endpoint is all we know of who it was.
    who = exchange.partner or exchange.endpoint or "unknown"
    runtime.metrics.rejected("in", who, exc.code)
    log.warning(
        "inbound rejected",
        partner=who,
        operation=exchange.operation,
        code=exc.code,
        error=exc.message,
    )
    limits = runtime.settings.journal
    try:
        # Size and SHA-256 of the whole body, at most rejected_prefix_bytes of it, and all
        # rejected payloads under rejected_retention_bytes (gateway/store/rejections.py).
        journal_rejection(
            runtime.store,
            raw=exchange.raw,
            prefix_bytes=limits.rejected_prefix_bytes,
            retention_bytes=limits.rejected_retention_bytes,
            direction="in",
            partner=who,
            operation=exchange.operation,
            message_type=exchange.message_type,
            message_id=exchange.message_id,
            partner_message_id=exchange.partner_message_id,
            error_code=exc.code,
            # The journal's detail never holds personal data (XSD errors quote values).
            detail=mask_text(exc.message)[:2000],
        )
    except GatewayError:
        log.exception("could not journal a rejection")
