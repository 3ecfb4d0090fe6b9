"""One error shape for every answer of the local API: ``{error: {code, message, details}}``.

FastAPI's own answers (``{"detail": ...}`` for an unknown path, a wrong method, a body it
cannot parse, invalid parameters) and an unexpected exception's bare ``text/plain`` 500 are
replaced here, so PLUS reads one shape with a stable code whatever went wrong.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.errors import (
    BadInputError,
    GatewayError,
    RequestTooLargeError,
    SoapContentTypeError,
    StoreUnavailableError,
    UnknownOperationError,
    XmlTooLargeError,
)
from gateway.store import IdempotencyConflictError

__all__ = [
    "ErrorResponse",
    "error_response",
    "gateway_error_response",
    "install_error_handlers",
    "status_for",
]

log = structlog.get_logger(__name__)

#: Stable codes for the statuses the framework answers by itself.
_HTTP_CODES = {
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: RequestTooLargeError.code,
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class ErrorResponse(JSONResponse):
    """JSON written as ASCII: an echoed field name holding a lone surrogate or a control
    character (``"\\ud800"``) stays a valid answer instead of failing to encode (a 500)."""

    def render(self, content: Any) -> bytes:
        """``content`` as ASCII JSON (non-ASCII characters as ``\\u`` escapes)."""
        return json.dumps(
            content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
        ).encode("ascii")


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ErrorResponse:
    """The one error body: ``{error: {code, message, details, ...extra}}``."""
    body = {"error": {"code": code, "message": message, **extra, "details": details or []}}
    return ErrorResponse(body, status_code=status, headers=headers)


def status_for(error: GatewayError) -> int:
    """The HTTP status of a gateway error answered by the local API."""
    if isinstance(error, UnknownOperationError):
        return 404
    if isinstance(error, IdempotencyConflictError):
        return 409
    if isinstance(error, XmlTooLargeError | RequestTooLargeError):
        return 413
    if isinstance(error, SoapContentTypeError):
        return 415
    if isinstance(error, BadInputError):
        return 422
    if isinstance(error, StoreUnavailableError):
        return 503
    return 500


def gateway_error_response(error: GatewayError, status: int | None = None) -> ErrorResponse:
    """A gateway error in the one shape (with partner, operation, message id when known)."""
    body = {"error": {**error.as_dict(), "details": error.details}}
    return ErrorResponse(body, status_code=status or status_for(error))


def _path(loc: Any) -> str:
    return ".".join(str(p) for p in loc)


def validation_details(errors: Any) -> list[dict[str, str]]:
    """FastAPI's validation errors as ``{path, message}`` without the offending values."""
    details = []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        if e.get("type") == "json_invalid":
            # loc is ("body", <character offset>): the offset is the useful part of the message.
            error = (e.get("ctx") or {}).get("error", "invalid")
            where = f" at character {loc[1]}" if len(loc) > 1 else ""
            details.append({"path": "body", "message": f"not valid JSON: {error}{where}"})
            continue
        details.append({"path": _path(loc), "message": str(e.get("msg", "invalid"))})
    return details


def install_error_handlers(app: FastAPI) -> None:
    """Answer every framework error and unexpected exception in the one error shape."""

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> ErrorResponse:
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 400:
            # FastAPI's "There was an error parsing the body": not UTF-8, or a number or a
            # nesting Python's json module refuses. A body the client must fix, like bad JSON.
            return error_response(
                422,
                "REQUEST_INVALID",
                "the request body could not be read as JSON",
                [{"path": "body", "message": "not valid UTF-8 JSON"}],
                headers=headers,
            )
        code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
        if exc.status_code == 404:
            message = f"no such resource: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, code, message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> ErrorResponse:
        return error_response(
            422,
            "REQUEST_INVALID",
            "request parameters are invalid",
            validation_details(exc.errors()),
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> ErrorResponse:
        # A bug, not the client's fault: logged with its traceback, answered in the one shape.
        log.error("unexpected error", path=request.url.path, exc_info=exc)
        return error_response(500, "INTERNAL_ERROR", "unexpected error; see the gateway's log")
