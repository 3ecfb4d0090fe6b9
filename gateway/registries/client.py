"""One registry behind VISS: build the request, send it, and accept only a verified answer.

The steps, in order, for every query::

    request element (XSD-validated) + header blocks -> POST (PartnerClient.send_raw)
    -> echoed header validated and checked (message id, client, service)
    -> signature verified against the pinned VISS certificate (only the signed element is used)
    -> XSD validation -> mapping to canonical JSON -> request id and personal code checked

Third-party and core errors are mapped here to the stable registry errors of
:mod:`gateway.registries.errors`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from lxml import etree

from gateway.channels.header import XRoadHeader
from gateway.errors import (
    ConfigError,
    GatewayError,
    PartnerRejectedError,
    PartnerServerFaultError,
    PartnerTimeoutError,
    PartnerUnavailableError,
    SignatureInvalidError,
    SignatureMissingError,
    UntrustedSignerError,
)
from gateway.mapping import MessageMapping
from gateway.registries.contract import RegistryContract
from gateway.registries.errors import (
    RegistryBadAnswerError,
    RegistryFaultError,
    RegistryRejectedError,
    RegistrySignatureError,
    RegistryTimeoutError,
    RegistryUnavailableError,
)
from gateway.registries.header import VISS_HEADER, read_header, viss_header
from gateway.signing import TrustStore
from gateway.soap.client import PartnerClient
from gateway.xml import SchemaRegistry, XmlLimits

__all__ = ["Answer", "QueryContext", "RegistryClient", "answer_sha256"]


@dataclass(frozen=True)
class QueryContext:
    """Who asks and why: goes into the VISS header and the audit."""

    officer_id: str
    purpose: str
    case_id: str


@dataclass(frozen=True)
class Answer:
    """A verified, mapped registry answer."""

    registry: str
    status: str  # ok | not_found
    query_id: str
    response_id: str
    answered_at: str
    data: dict[str, Any]
    sha256: str
    cached: bool = False


def answer_sha256(data: dict[str, Any]) -> str:
    """SHA-256 of the canonical answer as PLUS receives it (sorted keys, compact)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RegistryClient:
    """Queries one registry; everything it needs is loaded once at construction."""

    def __init__(
        self,
        contract: RegistryContract,
        *,
        partner: PartnerClient,
        trust: TrustStore,
        schemas: SchemaRegistry,
        mapping: MessageMapping,
        limits: XmlLimits,
        client_id: tuple[str, ...],
        service_id: tuple[str, ...],
        protocol_version: str,
        legal_basis: str,
    ) -> None:
        if mapping.root.split("}")[0].lstrip("{") != contract.namespace:
            raise ConfigError(f"mapping {mapping.message_type} is not in {contract.namespace}")
        self.contract = contract
        self.name = contract.name
        self.partner = partner
        self.trust = trust
        self.schemas = schemas
        self.mapping = mapping
        self.limits = limits
        self.client_id = client_id
        self.service_id = service_id
        self.protocol_version = protocol_version
        self.legal_basis = legal_basis
        schemas.load(contract.schema)

    def request_payload(self, personal_code: str) -> bytes:
        """The request body element, XSD-validated and serialized."""
        root = etree.Element(self.contract.request_tag, nsmap={"r": self.contract.namespace})
        etree.SubElement(root, f"{{{self.contract.namespace}}}PersonalCode").text = personal_code
        self.schemas.validate(root, self.contract.schema)
        return etree.tostring(root, encoding="UTF-8")

    def header(self, query_id: str, ctx: QueryContext) -> XRoadHeader:
        """The VISS header of one query."""
        return viss_header(
            client=self.client_id,
            service=self.service_id,
            user_id=ctx.officer_id,
            id=query_id,
            protocol_version=self.protocol_version,
            issue=ctx.case_id,
            purpose=ctx.purpose,
            legal_basis=self.legal_basis,
        )

    def query(self, personal_code: str, ctx: QueryContext, query_id: str | None = None) -> Answer:
        """Ask the registry about ``personal_code``; raise a registry error on any failure."""
        query_id = query_id or f"PLUS-{uuid.uuid4().hex}"
        header = self.header(query_id, ctx)
        payload = self.request_payload(personal_code)
        op = self.contract.operation
        try:
            envelope = self.partner.send_raw(
                op, payload, header=header.serialize(), message_id=query_id, limits=self.limits
            )
        except GatewayError as exc:
            raise _mapped(exc, self.name, op, query_id) from exc
        bad = _bad_answer(self.name, op, query_id)
        try:
            echoed = read_header(envelope.header, VISS_HEADER, self.schemas)
        except GatewayError as exc:
            raise bad(f"header: {exc.message}") from exc
        if echoed.id != query_id:
            raise bad("the answer's header carries another message id")
        if echoed.service != self.service_id or echoed.client != self.client_id:
            raise bad("the answer's header names another client or service")
        try:
            signed = self.trust.verify(envelope.body)
        except (SignatureMissingError, SignatureInvalidError, UntrustedSignerError) as exc:
            raise RegistrySignatureError(
                f"{self.name} answer refused: {exc.message}",
                partner=self.name,
                operation=op,
                message_id=query_id,
                details=[{"code": exc.code}],
            ) from exc
        try:
            if signed.tag != self.mapping.root:
                raise bad(f"expected {self.mapping.root}, got {signed.tag}")
            self.schemas.validate(signed, self.contract.schema)
            data = self.mapping.to_canonical(signed)
        except RegistryBadAnswerError:
            raise
        except GatewayError as exc:
            raise bad(f"{exc.code}: {exc.message}", exc.details) from exc
        if data.get("request_id") != query_id:
            raise bad("the signed answer is for another request")
        if data.get("personal_code") != personal_code:
            raise bad("the signed answer is about another person")
        return Answer(
            registry=self.name,
            status="ok" if data["result"] == "FOUND" else "not_found",
            query_id=query_id,
            response_id=data["response_id"],
            answered_at=data["answered_at"],
            data=data,
            sha256=answer_sha256(data),
        )


def _bad_answer(registry: str, operation: str, query_id: str) -> Any:
    def make(text: str, details: list[dict[str, Any]] | None = None) -> RegistryBadAnswerError:
        return RegistryBadAnswerError(
            f"{registry} answer is not usable: {text}",
            partner=registry,
            operation=operation,
            message_id=query_id,
            details=details,
        )

    return make


def _mapped(exc: GatewayError, registry: str, operation: str, query_id: str) -> GatewayError:
    ctx: dict[str, Any] = {
        "partner": registry,
        "operation": operation,
        "message_id": query_id,
        "details": exc.details,
    }
    if isinstance(exc, PartnerTimeoutError):
        return RegistryTimeoutError(f"{registry} did not answer in time", **ctx)
    if isinstance(exc, PartnerUnavailableError):
        return RegistryUnavailableError(f"{registry} is unavailable: {exc.message}", **ctx)
    if isinstance(exc, PartnerServerFaultError):
        return RegistryFaultError(exc.message, **ctx)
    if isinstance(exc, PartnerRejectedError):
        if any("fault_code" in d for d in exc.details) or "HTTP 4" in exc.message:
            return RegistryRejectedError(exc.message, **ctx)
        return RegistryBadAnswerError(exc.message, **ctx)
    return exc
