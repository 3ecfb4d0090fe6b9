"""The exchange: what one message carries through the pipeline."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lxml import etree

    from gateway.channels.header import XRoadHeader
    from gateway.mapping import MessageMapping

__all__ = ["Exchange", "new_id"]


def new_id() -> str:
    """A fresh message id (UUID4 text); it stays the same across every delivery attempt."""
    return str(uuid.uuid4())


@dataclass
class Exchange:
    """One message on its way through a route.

    Steps fill in what they produce and read what earlier steps produced; the fields are the
    whole contract between steps.
    """

    direction: Literal["in", "out"]
    #: The institution: the sender of an inbound message, the addressee of an outbound one
    #: (empty until identified or resolved).
    partner: str
    message_id: str = field(default_factory=new_id)
    correlation_id: str | None = None
    mapping: MessageMapping | None = None
    #: Inbound: the raw SOAP request. Outbound: unused.
    raw: bytes | None = None
    #: Inbound: the /soap/ endpoint it arrived at (``ecase``, or a direct institution's name).
    endpoint: str | None = None
    #: Inbound: the HTTP SOAPAction header, checked against the body's operation.
    soap_action: str | None = None
    #: Inbound: the SOAP Header element as received; its blocks once read.
    soap_header: etree._Element | None = None
    header: XRoadHeader | None = None
    #: Outbound: the addressee PLUS named (``addressee``), before it is checked.
    addressee: str | None = None
    #: Outbound: the userId header of every delivery attempt.
    user_id: str | None = None
    #: The payload element (the SOAP body child); after verification only the signed part.
    document: etree._Element | None = None
    #: Canonical JSON as PLUS sends and receives it.
    canonical: dict[str, Any] | None = None
    #: The payload bytes that are stored and delivered (signed, for outbound).
    payload: bytes | None = None
    partner_message_id: str | None = None
    idempotency_key: str | None = None
    request_sha256: str | None = None
    #: False when the message was seen before (duplicate or idempotent repeat).
    created: bool = True
    #: Set by a step that has fully answered the exchange; the runner stops there.
    done: bool = False
    signer_fingerprint: str | None = None
    #: What a route's own steps pass along that the shared fields do not carry (the
    #: e-services' verified identity and scope result); empty for most routes.
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def operation(self) -> str | None:
        """WSDL operation of the route, once known."""
        return self.mapping.operation if self.mapping else None

    @property
    def message_type(self) -> str | None:
        """Message type of the route, once known."""
        return self.mapping.message_type if self.mapping else None
