"""The steps a message crosses. Each is a callable taking and returning an :class:`Exchange`.

Steps are classes: what they need (schemas, keys, the store) is given once to ``__init__``,
the per-message work happens in ``__call__``. Nothing here loads or compiles per message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from gateway.channels.ecase import ECASE_ENDPOINT, ECASE_HEADER_PROFILE
from gateway.channels.header import read_header
from gateway.channels.institutions import Directory
from gateway.channels.routing import ADDRESSEE_FIELD, ReplyRouter
from gateway.errors import (
    HeaderError,
    MappingError,
    MessageNotAllowedError,
    SenderMismatchError,
    UnknownOperationError,
    UnknownSenderError,
    UntrustedSignerError,
    WrongAddresseeError,
)
from gateway.mapping import MappingRegistry, MessageMapping
from gateway.pipeline.exchange import Exchange
from gateway.signing import Signer
from gateway.soap.envelope import parse_envelope
from gateway.soap.http import check_soap_action
from gateway.store import InboundRecord, OutboundRecord, Store
from gateway.xml import SchemaRegistry, XmlLimits, serialize

__all__ = [
    "AddressOutbound",
    "CheckIdempotency",
    "IdentifySender",
    "MapToCanonical",
    "MapToXml",
    "ParseEnvelope",
    "PersistInbound",
    "PersistOutbound",
    "ResolveRoute",
    "Sign",
    "Stamp",
    "Step",
    "ValidateCanonical",
    "ValidateXsd",
    "VerifySignature",
    "canonical_sha256",
    "is_urgent",
]


class Step(Protocol):
    """One stage of a route."""

    def __call__(self, exchange: Exchange) -> Exchange: ...


def canonical_sha256(data: object) -> str:
    """Hash of canonical JSON independent of key order and whitespace."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # A lone surrogate (a JSON "\ud800" escape) is hashed as is; validation refuses it later.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def is_urgent(mapping: MessageMapping, canonical: object) -> bool:
    """Whether an inbound message is one its mapping marks ``urgent`` (pushed at once)."""
    urgent = mapping.urgent
    return urgent is not None and mapping.get_path(canonical, urgent.field) in urgent.values


def _need(value: object, what: str) -> None:
    if value is None:
        # A route declared in the wrong order is a programming error, not bad input.
        raise RuntimeError(f"pipeline step needs {what}; check the route's step order")


# -- inbound ----------------------------------------------------------------------------


class ParseEnvelope:
    """Hardened parse of the SOAP request; the single body child becomes the document."""

    def __init__(self, limits: XmlLimits) -> None:
        self.limits = limits

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.raw, "raw bytes")
        assert exchange.raw is not None
        envelope = parse_envelope(exchange.raw, self.limits)
        exchange.document, exchange.soap_header = envelope.body, envelope.header
        return exchange


class IdentifySender:
    """Who sent it: the header's ``client`` on E-case, the endpoint on a direct channel.

    The header's ``service`` must name us (PLUS's identifier and the contract version). On a
    direct endpoint the header is optional, but when present it must name that institution.
    Whether the signature is really the sender's is checked by :class:`VerifySignature`.
    """

    def __init__(
        self,
        directory: Directory,
        schemas: SchemaRegistry,
        client_id: tuple[str, ...],
        version: str,
    ) -> None:
        self.directory = directory
        self.schemas = schemas
        self.client_id = client_id
        self.version = version

    def __call__(self, exchange: Exchange) -> Exchange:
        endpoint = exchange.endpoint or ECASE_ENDPOINT
        has_blocks = exchange.soap_header is not None and any(
            isinstance(c.tag, str) and c.tag.startswith(f"{{{ECASE_HEADER_PROFILE.namespace}}}")
            for c in exchange.soap_header
        )
        if endpoint == ECASE_ENDPOINT or has_blocks:
            exchange.header = read_header(exchange.soap_header, ECASE_HEADER_PROFILE, self.schemas)
        header = exchange.header
        if endpoint == ECASE_ENDPOINT:
            assert header is not None
            sender = self.directory.by_member(header.client)
            if sender is None or sender.channel != "ecase":
                raise UnknownSenderError(
                    "the client header names no institution that sends through E-case",
                    details=[{"path": "header.client", "message": "unknown sender"}],
                )
        else:
            sender = self.directory.get(endpoint)
            if header is not None and header.client != sender.member:
                raise UnknownSenderError(
                    f"the client header names another sender than {sender.name}",
                    details=[{"path": "header.client", "message": "not this endpoint's sender"}],
                )
        if header is not None and (
            header.addressee != self.client_id or header.service_version != self.version
        ):
            raise WrongAddresseeError(
                "the service header does not name this gateway and contract version",
                details=[{"path": "header.service", "message": "wrong addressee or version"}],
            )
        exchange.partner = sender.name
        return exchange


class ResolveRoute:
    """Find the message mapping (and so the route) by the body element's name.

    The sender must be one that sends this message type; a header's service code and the HTTP
    SOAPAction, when given, must both be the body's operation.
    """

    def __init__(
        self, mappings: MappingRegistry, directory: Directory, actions: Mapping[str, str]
    ) -> None:
        self.mappings = mappings
        self.directory = directory
        #: operation -> soapAction of the served binding (SOAPAction must not contradict it)
        self.actions = actions

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.document, "a document")
        assert exchange.document is not None
        mapping = self.mappings.by_root(exchange.document.tag)
        if mapping.direction != "inbound":
            raise UnknownOperationError(f"{mapping.operation} is not sent to the gateway")
        exchange.mapping = mapping
        check_soap_action(exchange.soap_action, mapping.operation, self.actions)
        if exchange.header is not None and exchange.header.service_code != mapping.operation:
            raise WrongAddresseeError(
                f"the service header names {exchange.header.service_code}, "
                f"the body is {mapping.operation}",
                details=[{"path": "header.service.serviceCode", "message": "not the body's"}],
            )
        if mapping.message_type not in self.directory.get(exchange.partner).sends:
            raise MessageNotAllowedError(
                f"{exchange.partner} may not send {mapping.message_type}",
                details=[{"path": "body", "message": "message type not allowed for sender"}],
            )
        return exchange


class VerifySignature:
    """Verify against the sender's trust store; keep only what was signed.

    A signature that another institution's store trusts is a message claiming to come from
    someone it is not: refused as ECASE_SENDER_MISMATCH, naming both.
    """

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.document, "a document")
        assert exchange.document is not None
        sender = self.directory.get(exchange.partner)
        try:
            # Signature wrapping defence: everything downstream reads the verifier's output.
            exchange.document = sender.trust.verify(exchange.document)
        except UntrustedSignerError as exc:
            real = [i.name for i in self.directory.trusting(exchange.document)]
            if real:
                raise SenderMismatchError(
                    f"the message claims to come from {sender.name} "
                    f"but is signed by {' / '.join(real)}",
                    details=[{"path": "header.client", "message": "not the signer"}],
                ) from exc
            raise
        return exchange


class ValidateXsd:
    """Validate the document against the route's XSD (compiled at start)."""

    def __init__(self, schemas: SchemaRegistry) -> None:
        self.schemas = schemas

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.document, "a document")
        _need(exchange.mapping, "a route")
        assert exchange.document is not None and exchange.mapping is not None
        self.schemas.validate(exchange.document, exchange.mapping.schema)
        return exchange


class MapToCanonical:
    """Partner XML to canonical JSON, and the partner's own message id."""

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.document, "a document")
        _need(exchange.mapping, "a route")
        assert exchange.document is not None and exchange.mapping is not None
        mapping = exchange.mapping
        exchange.canonical = mapping.to_canonical(exchange.document)
        partner_id = mapping.get_path(exchange.canonical, mapping.partner_message_id)
        if not partner_id:
            raise MappingError("message carries no message id")
        exchange.partner_message_id = str(partner_id)
        if exchange.header is not None and exchange.header.id != exchange.partner_message_id:
            # Deduplication and replies use the body's id; the header must not say otherwise.
            raise HeaderError(
                "the id header differs from the message's MessageId",
                details=[{"path": "header.id", "message": "not the body's MessageId"}],
            )
        exchange.correlation_id = exchange.correlation_id or exchange.partner_message_id
        return exchange


class PersistInbound:
    """Journal + inbox in one transaction; only then may the partner be acknowledged.

    This is also the duplicate check: a partner message id seen before is answered with the
    first message's id (``created`` False) and journaled as a duplicate, atomically.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.canonical, "canonical JSON")
        assert exchange.canonical is not None and exchange.mapping is not None
        assert exchange.partner_message_id is not None and exchange.raw is not None
        message_id, created = self.store.inbox.accept(
            InboundRecord(
                message_id=exchange.message_id,
                partner=exchange.partner,
                operation=exchange.mapping.operation,
                message_type=exchange.mapping.message_type,
                partner_message_id=exchange.partner_message_id,
                correlation_id=exchange.correlation_id,
                canonical=exchange.canonical,
                payload=exchange.raw,
            )
        )
        exchange.message_id, exchange.created = message_id, created
        return exchange


# -- outbound ---------------------------------------------------------------------------


class ValidateCanonical:
    """PLUS's JSON against the message type's JSON Schema; errors name the field path."""

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.mapping, "a route")
        assert exchange.mapping is not None
        exchange.mapping.validate_canonical(exchange.canonical)
        return exchange


class Stamp:
    """Fill in what the gateway owns: its message id (the wire id) and the send time."""

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.mapping, "a route")
        assert exchange.mapping is not None
        fields = exchange.mapping.gateway_fields
        if fields and isinstance(exchange.canonical, dict):
            stamped = dict(exchange.canonical)
            for name, source in fields.items():
                stamped[name] = (
                    exchange.message_id
                    if source == "message_id"
                    else datetime.now(UTC).isoformat(timespec="seconds")
                )
            exchange.canonical = stamped
        return exchange


class AddressOutbound:
    """Resolve the addressee (reply routing) and take ``addressee`` out of the message.

    Runs after ``validate_json``, so the fields it reads are known to be well-formed.
    """

    def __init__(self, router: ReplyRouter) -> None:
        self.router = router

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.mapping, "a route")
        assert exchange.mapping is not None and isinstance(exchange.canonical, dict)
        canonical = dict(exchange.canonical)
        given = canonical.pop(ADDRESSEE_FIELD, None)
        exchange.partner = self.router.resolve(exchange.mapping, canonical, given)
        exchange.canonical = canonical
        return exchange


class CheckIdempotency:
    """The same Idempotency-Key with the same body answers the first message's id."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.idempotency_key, "an Idempotency-Key")
        assert exchange.idempotency_key is not None
        exchange.request_sha256 = canonical_sha256(
            {"type": exchange.message_type, "body": exchange.canonical}
        )
        earlier = self.store.idempotency.resolve(exchange.idempotency_key, exchange.request_sha256)
        if earlier is not None:
            exchange.message_id, exchange.created, exchange.done = earlier, False, True
        return exchange


class MapToXml:
    """Canonical JSON to the partner's XML payload."""

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.canonical, "canonical JSON")
        assert exchange.canonical is not None and exchange.mapping is not None
        exchange.document = exchange.mapping.to_xml(exchange.canonical)
        if exchange.mapping.ordering_key:
            key = exchange.mapping.get_path(exchange.canonical, exchange.mapping.ordering_key)
            exchange.correlation_id = exchange.correlation_id or (str(key) if key else None)
        return exchange


class Sign:
    """Enveloped XMLDSig with the gateway's key (loaded once at start)."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.document, "a document")
        assert exchange.document is not None
        exchange.document = self.signer.sign(exchange.document)
        exchange.payload = serialize(exchange.document, declaration=False)
        return exchange


class PersistOutbound:
    """Journal + outbox + idempotency key in one transaction, then the 202 may be sent.

    ``ordered(partner, operation, message_type)`` says whether the route keeps per-case order;
    only then is the ordering key stored, and the outbox holds a message behind earlier ones
    of its case.
    """

    def __init__(
        self, store: Store, ordered: Callable[[str, str, str], bool] | None = None
    ) -> None:
        self.store = store
        self.ordered = ordered

    def __call__(self, exchange: Exchange) -> Exchange:
        _need(exchange.payload, "a signed payload")
        assert exchange.payload is not None and exchange.mapping is not None
        assert exchange.idempotency_key is not None and exchange.request_sha256 is not None
        mapping = exchange.mapping
        keep_order = self.ordered is None or self.ordered(
            exchange.partner, mapping.operation, mapping.message_type
        )
        ordering = (
            mapping.get_path(exchange.canonical or {}, mapping.ordering_key)
            if mapping.ordering_key and keep_order
            else None
        )
        message_id, created = self.store.outbox.accept(
            outbound_record(exchange, str(ordering) if ordering is not None else None)
        )
        exchange.message_id, exchange.created = message_id, created
        return exchange


def outbound_record(exchange: Exchange, ordering_key: str | None = None) -> OutboundRecord:
    """The outbox row of a signed, addressed outbound exchange (steps that persist it in a
    transaction of their own, with rows of their area, build it here too)."""
    assert exchange.payload is not None and exchange.mapping is not None
    assert exchange.idempotency_key is not None and exchange.request_sha256 is not None
    return OutboundRecord(
        message_id=exchange.message_id,
        partner=exchange.partner,
        operation=exchange.mapping.operation,
        message_type=exchange.mapping.message_type,
        payload=exchange.payload,
        ordering_key=ordering_key,
        correlation_id=exchange.correlation_id,
        idempotency_key=exchange.idempotency_key,
        request_sha256=exchange.request_sha256,
        user_id=exchange.user_id,
    )
