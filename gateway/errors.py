"""One exception hierarchy for the whole gateway.

Delivery and the API decide what to do by the *type* of an error, never by its text::

    GatewayError                       code, partner, operation, message_id on every error
    ├── PermanentError                 retrying will not help: dead-letter, 4xx, SOAP Client fault
    │   ├── BadInputError              the sender's input is wrong (SOAP faultcode Client)
    │   │   ├── XmlMalformedError          XML_MALFORMED
    │   │   ├── XmlForbiddenError          XML_FORBIDDEN (DOCTYPE, entities, XInclude)
    │   │   ├── XmlTooLargeError           XML_TOO_LARGE
    │   │   ├── XmlLimitError              XML_LIMIT (a structural limit; details name it)
    │   │   ├── XmlCommentOrPiError        XML_COMMENT_OR_PI (in a payload, or a PI anywhere)
    │   │   ├── SoapEnvelopeError          SOAP_ENVELOPE
    │   │   ├── SoapMustUnderstandError    SOAP_MUST_UNDERSTAND (faultcode soap:MustUnderstand)
    │   │   ├── SoapContentTypeError       SOAP_CONTENT_TYPE (HTTP 415)
    │   │   ├── SoapActionMismatchError    SOAP_ACTION_MISMATCH
    │   │   ├── UnknownOperationError      SOAP_UNKNOWN_OPERATION
    │   │   ├── SchemaValidationError      XSD_INVALID
    │   │   ├── SignatureMissingError      SIG_MISSING
    │   │   ├── SignatureInvalidError      SIG_INVALID
    │   │   ├── UntrustedSignerError       SIG_UNTRUSTED
    │   │   ├── MappingError               MAPPING_FAILED
    │   │   ├── CanonicalInvalidError      CANONICAL_INVALID (PLUS's JSON, with field paths)
    │   │   ├── RequestTooLargeError       REQUEST_TOO_LARGE (JSON API body > api.max_body_bytes)
    │   │   ├── JsonTooDeepError           JSON_TOO_DEEP (deeper than api.max_json_depth)
    │   │   ├── HeaderError                HEADER_INVALID (an X-Road style header block)
    │   │   ├── ChannelError               who may send what to whom, on a channel
    │   │   │   ├── UnknownSenderError         ECASE_UNKNOWN_SENDER
    │   │   │   ├── SenderMismatchError        ECASE_SENDER_MISMATCH (header vs certificate)
    │   │   │   ├── WrongAddresseeError        ECASE_WRONG_ADDRESSEE
    │   │   │   └── MessageNotAllowedError     MESSAGE_NOT_ALLOWED
    │   │   └── RoutingError               where PLUS's outbound message goes (HTTP 422)
    │   │       ├── ReplyUnknownRequestError   REPLY_UNKNOWN_REQUEST
    │   │       ├── AddresseeRequiredError     ADDRESSEE_REQUIRED
    │   │       ├── AddresseeAmbiguousError    ADDRESSEE_AMBIGUOUS
    │   │       ├── AddresseeNotAllowedError   ADDRESSEE_NOT_ALLOWED
    │   │       └── AddresseeInconsistentError ADDRESSEE_INCONSISTENT
    │   ├── PartnerRejectedError       the partner answered a SOAP Client fault or HTTP 4xx
    │   └── ConfigError                a bad or missing configuration key
    └── RetryableError                 transient: back off and try again
        ├── PartnerUnavailableError    connection refused or reset, HTTP 5xx
        │   └── CircuitOpenError           CIRCUIT_OPEN: not asked while the breaker is open
        ├── PartnerTimeoutError        connect or read timeout
        ├── PartnerServerFaultError    the partner answered a SOAP Server fault
        └── StoreUnavailableError      the database is locked or unreachable

Third-party exceptions (lxml, signxml, zeep, requests, SQLAlchemy) are mapped to these at the
boundary with ``raise ... from exc`` so nothing above the boundary imports their types.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AddresseeAmbiguousError",
    "AddresseeInconsistentError",
    "AddresseeNotAllowedError",
    "AddresseeRequiredError",
    "BadInputError",
    "CanonicalInvalidError",
    "ChannelError",
    "CircuitOpenError",
    "ConfigError",
    "GatewayError",
    "HeaderError",
    "JsonTooDeepError",
    "MappingError",
    "MessageNotAllowedError",
    "PartnerRejectedError",
    "PartnerServerFaultError",
    "PartnerTimeoutError",
    "PartnerUnavailableError",
    "PermanentError",
    "ReplyUnknownRequestError",
    "RequestTooLargeError",
    "RetryableError",
    "RoutingError",
    "SchemaValidationError",
    "SenderMismatchError",
    "SignatureInvalidError",
    "SignatureMissingError",
    "SoapActionMismatchError",
    "SoapContentTypeError",
    "SoapEnvelopeError",
    "SoapMustUnderstandError",
    "StoreUnavailableError",
    "UnknownOperationError",
    "UnknownSenderError",
    "UntrustedSignerError",
    "WrongAddresseeError",
    "XmlCommentOrPiError",
    "XmlForbiddenError",
    "XmlLimitError",
    "XmlMalformedError",
    "XmlTooLargeError",
]


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose.

    ``code`` is stable and machine-readable (it appears in SOAP fault details, API error bodies,
    the journal and metrics); ``message`` is for humans and must never contain personal data.
    """

    code = "GATEWAY_ERROR"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        partner: str | None = None,
        operation: str | None = None,
        message_id: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.partner = partner
        self.operation = operation
        self.message_id = message_id
        self.details = details or []

    def bind(
        self,
        *,
        partner: str | None = None,
        operation: str | None = None,
        message_id: str | None = None,
    ) -> GatewayError:
        """Fill in context that was unknown where the error was raised; keeps what is set."""
        self.partner = self.partner or partner
        self.operation = self.operation or operation
        self.message_id = self.message_id or message_id
        return self

    def as_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready dict, as the API and the journal show it."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        for key in ("partner", "operation", "message_id"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        context = ", ".join(
            f"{k}={v}"
            for k, v in (
                ("partner", self.partner),
                ("operation", self.operation),
                ("message_id", self.message_id),
            )
            if v
        )
        return f"[{self.code}] {self.message}" + (f" ({context})" if context else "")


class PermanentError(GatewayError):
    """Retrying will not change the outcome."""

    code = "PERMANENT_ERROR"


class RetryableError(GatewayError):
    """A transient failure: the same request may succeed later."""

    code = "RETRYABLE_ERROR"
    retryable = True


class BadInputError(PermanentError):
    """The sender's input is wrong; a SOAP fault with faultcode Client, or HTTP 4xx."""

    code = "BAD_INPUT"


class XmlMalformedError(BadInputError):
    """The bytes are not well-formed XML."""

    code = "XML_MALFORMED"


class XmlForbiddenError(BadInputError):
    """The XML uses a forbidden construct: a DOCTYPE, entities, XInclude."""

    code = "XML_FORBIDDEN"


class XmlTooLargeError(BadInputError):
    """The document is larger than the configured size cap or deeper than the depth limit."""

    code = "XML_TOO_LARGE"


class XmlLimitError(BadInputError):
    """The document exceeds a structural limit (elements, attributes, namespaces, text size).

    ``details`` holds one entry ``{"limit": <XmlLimits field>, "max": <value>, "path": ...}``.
    """

    code = "XML_LIMIT"


class XmlCommentOrPiError(XmlForbiddenError):
    """A comment or processing instruction inside a business payload or SOAP header block,
    or a processing instruction anywhere in a SOAP message (text must be read as validated)."""

    code = "XML_COMMENT_OR_PI"


class SoapEnvelopeError(BadInputError):
    """The document is XML but not a SOAP 1.1 envelope with exactly one body element."""

    code = "SOAP_ENVELOPE"


class SoapMustUnderstandError(SoapEnvelopeError):
    """A header block marked ``mustUnderstand="1"`` is not one the receiver understands.

    Answered with the SOAP 1.1 faultcode ``soap:MustUnderstand`` instead of ``soap:Client``.
    """

    code = "SOAP_MUST_UNDERSTAND"


class SoapContentTypeError(BadInputError):
    """A SOAP 1.1 request whose HTTP Content-Type is not ``text/xml`` (HTTP 415)."""

    code = "SOAP_CONTENT_TYPE"


class SoapActionMismatchError(BadInputError):
    """The SOAPAction HTTP header names another operation than the body element."""

    code = "SOAP_ACTION_MISMATCH"


class UnknownOperationError(BadInputError):
    """No route is declared for the body element or message type."""

    code = "SOAP_UNKNOWN_OPERATION"


class SchemaValidationError(BadInputError):
    """The document does not satisfy its XSD."""

    code = "XSD_INVALID"


class SignatureMissingError(BadInputError):
    """A signature is required but the document carries none."""

    code = "SIG_MISSING"


class SignatureInvalidError(BadInputError):
    """The signature does not verify: the document was altered or the signature is broken."""

    code = "SIG_INVALID"


class UntrustedSignerError(BadInputError):
    """The signature is intact but made by a key this partner's trust store does not hold."""

    code = "SIG_UNTRUSTED"


class MappingError(BadInputError):
    """The message could not be mapped (unknown classifier code, missing value)."""

    code = "MAPPING_FAILED"


class CanonicalInvalidError(BadInputError):
    """PLUS's canonical JSON does not satisfy the message type's JSON Schema."""

    code = "CANONICAL_INVALID"


class RequestTooLargeError(BadInputError):
    """A local API request body is larger than ``api.max_body_bytes`` (HTTP 413)."""

    code = "REQUEST_TOO_LARGE"


class JsonTooDeepError(BadInputError):
    """A local API JSON body nests arrays and objects deeper than ``api.max_json_depth``."""

    code = "JSON_TOO_DEEP"


class HeaderError(SchemaValidationError):
    """An X-Road style header block is missing, repeated or invalid."""

    code = "HEADER_INVALID"


class ChannelError(BadInputError):
    """The channel's rules about senders, addressees and message types are broken."""

    code = "CHANNEL_REFUSED"


class UnknownSenderError(ChannelError):
    """The header's client is no configured institution (or not one on this endpoint)."""

    code = "ECASE_UNKNOWN_SENDER"


class SenderMismatchError(ChannelError):
    """The message is signed by another institution than the one its header names."""

    code = "ECASE_SENDER_MISMATCH"


class WrongAddresseeError(ChannelError):
    """The header's service names another addressee, operation or contract version."""

    code = "ECASE_WRONG_ADDRESSEE"


class MessageNotAllowedError(ChannelError):
    """The institution may not send this message type (or answer this query)."""

    code = "MESSAGE_NOT_ALLOWED"


class RoutingError(BadInputError):
    """The addressee of an outbound message cannot be resolved or is inconsistent."""

    code = "ROUTING_FAILED"


class ReplyUnknownRequestError(RoutingError):
    """The message answers a request (or ruling) the gateway never received."""

    code = "REPLY_UNKNOWN_REQUEST"


class AddresseeRequiredError(RoutingError):
    """Several institutions receive this type and nothing says which one."""

    code = "ADDRESSEE_REQUIRED"


class AddresseeAmbiguousError(RoutingError):
    """The referenced id was used by several institutions; PLUS must name the addressee."""

    code = "ADDRESSEE_AMBIGUOUS"


class AddresseeNotAllowedError(RoutingError):
    """The named addressee is unknown or does not receive this message type."""

    code = "ADDRESSEE_NOT_ALLOWED"


class AddresseeInconsistentError(RoutingError):
    """The named addressee contradicts the message it answers, or its content."""

    code = "ADDRESSEE_INCONSISTENT"


class PartnerRejectedError(PermanentError):
    """The partner refused the message (SOAP Client fault, HTTP 4xx, an invalid answer)."""

    code = "PARTNER_REJECTED"


class ConfigError(PermanentError):
    """Configuration is missing or invalid; start-up stops."""

    code = "CONFIG_INVALID"


class PartnerUnavailableError(RetryableError):
    """The partner could not be reached or answered HTTP 5xx."""

    code = "PARTNER_UNAVAILABLE"


class CircuitOpenError(PartnerUnavailableError):
    """The institution's circuit breaker is open: not asked, to spare it and the officer."""

    code = "CIRCUIT_OPEN"


class PartnerTimeoutError(RetryableError):
    """The partner did not answer within the configured timeout."""

    code = "PARTNER_TIMEOUT"


class PartnerServerFaultError(RetryableError):
    """The partner answered a SOAP Server fault."""

    code = "PARTNER_SERVER_FAULT"


class StoreUnavailableError(RetryableError):
    """The database is locked or unreachable."""

    code = "STORE_UNAVAILABLE"
