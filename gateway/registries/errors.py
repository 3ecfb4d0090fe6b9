"""Errors of registry queries, each with a stable code and the HTTP status PLUS sees.

They extend the gateway's hierarchy (:mod:`gateway.errors`), so retryable stays retryable::

    PartnerUnavailableError
    ├── RegistryUnavailableError      REGISTRY_UNAVAILABLE   503  unreachable, HTTP 5xx
    ├── RegistryCircuitOpenError      REGISTRY_CIRCUIT_OPEN  503  breaker open: not even tried
    └── RegistryNotConfiguredError    REGISTRY_NOT_CONFIGURED 503 no trust/endpoint configured
    PartnerTimeoutError
    └── RegistryTimeoutError          REGISTRY_TIMEOUT       504
    PartnerServerFaultError
    └── RegistryFaultError            REGISTRY_FAULT         502  SOAP Server fault
    PartnerRejectedError
    ├── RegistryRejectedError         REGISTRY_REJECTED      502  SOAP Client fault, HTTP 4xx
    ├── RegistryBadAnswerError        REGISTRY_BAD_ANSWER    502  malformed, XSD, header echo
    └── RegistrySignatureError        REGISTRY_SIGNATURE_INVALID 502  missing/invalid/untrusted
"""

from __future__ import annotations

from gateway.errors import (
    GatewayError,
    PartnerRejectedError,
    PartnerServerFaultError,
    PartnerTimeoutError,
    PartnerUnavailableError,
)

__all__ = [
    "RegistryBadAnswerError",
    "RegistryCircuitOpenError",
    "RegistryError",
    "RegistryFaultError",
    "RegistryNotConfiguredError",
    "RegistryRejectedError",
    "RegistrySignatureError",
    "RegistryTimeoutError",
    "RegistryUnavailableError",
    "http_status",
    "query_status",
]


class RegistryError(GatewayError):
    """Mixin marker: every registry error names its registry in ``partner``."""

    code = "REGISTRY_ERROR"


class RegistryUnavailableError(RegistryError, PartnerUnavailableError):
    """The registry (or VISS) could not be reached or answered HTTP 5xx."""

    code = "REGISTRY_UNAVAILABLE"


class RegistryCircuitOpenError(RegistryError, PartnerUnavailableError):
    """The registry's circuit breaker is open; the query was not sent."""

    code = "REGISTRY_CIRCUIT_OPEN"


class RegistryNotConfiguredError(RegistryError, PartnerUnavailableError):
    """Registry queries are disabled or not configured (no trust for VISS answers)."""

    code = "REGISTRY_NOT_CONFIGURED"


class RegistryTimeoutError(RegistryError, PartnerTimeoutError):
    """The registry did not answer within its connect or read timeout."""

    code = "REGISTRY_TIMEOUT"


class RegistryFaultError(RegistryError, PartnerServerFaultError):
    """The registry answered a SOAP Server fault."""

    code = "REGISTRY_FAULT"


class RegistryRejectedError(RegistryError, PartnerRejectedError):
    """The registry refused the request (SOAP Client fault or HTTP 4xx)."""

    code = "REGISTRY_REJECTED"


class RegistryBadAnswerError(RegistryError, PartnerRejectedError):
    """The answer is not usable: malformed, not schema-valid, or not the answer to our request."""

    code = "REGISTRY_BAD_ANSWER"


class RegistrySignatureError(RegistryError, PartnerRejectedError):
    """The answer's signature is missing, broken or made by a key we do not trust."""

    code = "REGISTRY_SIGNATURE_INVALID"


def http_status(error: GatewayError) -> int:
    """The HTTP status of a failed query: 503 unavailable, 504 timeout, 502 a bad answer."""
    if isinstance(error, PartnerTimeoutError):
        return 504
    if isinstance(error, PartnerUnavailableError):
        return 503
    if isinstance(error, PartnerServerFaultError | PartnerRejectedError):
        return 502
    return 500


def query_status(error: GatewayError) -> str:
    """The per-registry status PLUS sees in a profile: timeout, unavailable or error."""
    if isinstance(error, PartnerTimeoutError):
        return "timeout"
    if isinstance(error, PartnerUnavailableError):
        return "unavailable"
    return "error"
