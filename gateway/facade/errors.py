"""Errors of the volunteer facade, each with its HTTP status and a stable code.

A branch of the gateway's one hierarchy (gateway/errors.py)::

    BadInputError
    └── FacadeError                    status on the class; details name the field path
        ├── AuthError (401)            TOKEN_MISSING, TOKEN_MALFORMED, TOKEN_SIGNATURE,
        │                              TOKEN_EXPIRED, TOKEN_NOT_YET_VALID, TOKEN_AUDIENCE,
        │                              TOKEN_ISSUER, TOKEN_CLAIMS, TOKEN_KEY_UNKNOWN
        ├── ForbiddenError (403)       ROLE_REQUIRED, ORGANISATION_FORBIDDEN, NOT_YOURS
        ├── NotFoundError (404)        OPPORTUNITY_NOT_FOUND, ... (one code per kind)
        ├── ConflictError (409)        DEADLINE_PASSED, OPPORTUNITY_FULL, ALREADY_APPLIED,
        │                              HOURS_FINAL, CERTIFICATE_STATE, ALREADY_REGISTERED, ...
        ├── TooLargeError (413)        ATTACHMENT_TOO_LARGE
        ├── MediaTypeError (415)       ATTACHMENT_TYPE, IMPORT_MEDIA_TYPE
        └── UnprocessableError (422)   IMPORT_INVALID, HOURS_NOT_LOGGED, SEAL_INVALID,
                                       PERSONAL_CODE_INVALID, ...
    RetryableError
    └── IssuerUnavailableError (503)   ISSUER_UNAVAILABLE: the issuer's JWKS cannot be fetched

Messages never carry personal data: they name fields, never repeat values.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import BadInputError, RetryableError

__all__ = [
    "AuthError",
    "ConflictError",
    "FacadeError",
    "ForbiddenError",
    "IssuerUnavailableError",
    "MediaTypeError",
    "NotFoundError",
    "TooLargeError",
    "UnprocessableError",
    "detail",
]


def detail(path: str, message: str, **extra: Any) -> dict[str, Any]:
    """One entry of ``error.details``: the field path and what is wrong with it."""
    return {"path": path, "message": message, **extra}


class FacadeError(BadInputError):
    """A refused facade request; ``status`` is its HTTP status, ``code`` is set per instance."""

    status = 400
    code = "FACADE_ERROR"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        path: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        if details is None and path is not None:
            details = [detail(path, message)]
        super().__init__(message, details=details)
        self.code = code


class AuthError(FacadeError):
    """No usable bearer token (answered with ``WWW-Authenticate: Bearer``)."""

    status = 401


class ForbiddenError(FacadeError):
    """The token is valid but does not allow this: wrong role, another organisation."""

    status = 403


class NotFoundError(FacadeError):
    """No such resource (or none the caller may see: another's is not revealed)."""

    status = 404


class ConflictError(FacadeError):
    """The resource's state refuses the request: deadline passed, full, already final."""

    status = 409


class TooLargeError(FacadeError):
    """An attachment over its size limit."""

    status = 413


class MediaTypeError(FacadeError):
    """A media type that is not accepted, or content that is not what it claims to be."""

    status = 415


class UnprocessableError(FacadeError):
    """Well-formed but wrong content: an invalid import, hours never logged, a broken seal."""

    status = 422


class IssuerUnavailableError(RetryableError):
    """The token issuer's JWKS could not be fetched: try again later (HTTP 503)."""

    code = "ISSUER_UNAVAILABLE"
    status = 503
