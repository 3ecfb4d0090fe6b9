"""Queries on request (T-02): PLUS asks an institution synchronously about one of its clients.

The same model as the registry queries through VISS, on the E-case (or direct) channel: the
request is a business message of the universal contract (a ``query_request`` mapping), signed
and sent with the channel's header; the answer (its ``query_answer`` mapping) is accepted only
with the echoed header, a signature the answering institution's trust store holds, a valid
XSD and the request's id. Each institution has a timeout (its channel's) and a circuit breaker,
and every query is audited, answer or not, before anything is returned: who asked about whom,
why, and what came back (its hash only).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from gateway.channels.ecase import ECASE_HEADER_PROFILE, Channels
from gateway.channels.header import read_header
from gateway.channels.institutions import Directory
from gateway.config import BreakerSettings
from gateway.errors import (
    AddresseeNotAllowedError,
    AddresseeRequiredError,
    CircuitOpenError,
    GatewayError,
    PartnerRejectedError,
    UnknownOperationError,
    UntrustedSignerError,
)
from gateway.mapping import MappingRegistry, MessageMapping
from gateway.registries.breaker import CircuitBreaker
from gateway.registries.client import QueryContext, answer_sha256
from gateway.registries.errors import query_status
from gateway.signing import Signer
from gateway.store.audit import AuditEntry, AuditLog
from gateway.xml import SchemaRegistry, XmlLimits, serialize

__all__ = ["InstitutionAnswer", "InstitutionQueries"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class InstitutionAnswer:
    """A verified, mapped answer of an institution."""

    institution: str
    query: str
    status: str  # ok | not_found
    query_id: str
    response_id: str
    answered_at: str
    data: dict[str, Any]
    sha256: str


def _find(data: object, key: str) -> Any:
    # The audited subject: the first ``personal_code`` anywhere in the request.
    if isinstance(data, dict):
        if key in data:
            return data[key]
        for value in data.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None


class InstitutionQueries:
    """Every query the configured institutions answer; built once at start."""

    def __init__(
        self,
        *,
        directory: Directory,
        channels: Channels,
        mappings: MappingRegistry,
        schemas: SchemaRegistry,
        signer: Signer,
        limits: XmlLimits,
        audit: AuditLog,
        breaker: BreakerSettings,
    ) -> None:
        self.directory = directory
        self.channels = channels
        self.schemas = schemas
        self.signer = signer
        self.limits = limits
        self.audit = audit
        self.requests: dict[str, MessageMapping] = {}
        self.answers: dict[str, MessageMapping] = {}
        for m in mappings.all():
            if m.query and m.direction == "query_request":
                self.requests[m.query] = m
            elif m.query and m.direction == "query_answer":
                self.answers[m.query] = m
        self.breakers = {
            i.name: CircuitBreaker(
                i.name,
                failure_threshold=breaker.failure_threshold,
                reset_timeout=breaker.reset_timeout,
            )
            for i in directory.all()
            if i.answers
        }

    def names(self) -> list[str]:
        """The queries that have both a request and an answer contract."""
        return sorted(set(self.requests) & set(self.answers))

    def addressee(self, query: str, given: str | None) -> str:
        """Who answers ``query``: the given institution, or the only one that answers it."""
        answering = [i.name for i in self.directory.answering(query)]
        if given is not None:
            if given not in answering:
                raise AddresseeNotAllowedError(
                    f"{given} does not answer {query}",
                    details=[{"path": "institution", "message": "does not answer this query"}],
                )
            return given
        if len(answering) != 1:
            raise AddresseeRequiredError(
                f"{query} is answered by {', '.join(answering) or 'no institution'}; "
                "name the institution",
                details=[{"path": "institution", "message": "required"}],
            )
        return answering[0]

    def ask(
        self, query: str, request: dict[str, Any], ctx: QueryContext, institution: str | None
    ) -> InstitutionAnswer:
        """Ask; audit; return the answer or raise (PartnerTimeoutError, CircuitOpenError...)."""
        if query not in self.names():
            raise UnknownOperationError(f"unknown query {query!r}")
        mapping = self.requests[query]
        query_id = f"PLUS-{uuid.uuid4().hex}"
        # The gateway owns the message id and send time (the published schema marks them
        # read-only), so they are stamped before PLUS's part is validated.
        request = self._stamped(mapping, request, query_id)
        mapping.validate_canonical(request)
        name = self.addressee(query, institution)
        breaker = self.breakers[name]
        started = time.perf_counter()
        answer: InstitutionAnswer | None = None
        error: GatewayError | None = None
        try:
            if not breaker.allow():
                raise CircuitOpenError(
                    f"{name} is unavailable (circuit open, next trial in "
                    f"{breaker.retry_after():.0f} s)",
                    partner=name,
                )
            try:
                answer = self._call(name, query, mapping, request, ctx, query_id)
            except GatewayError as exc:
                if exc.retryable or (
                    isinstance(exc, PartnerRejectedError) and not _refused_by_them(exc)
                ):
                    breaker.record_failure()
                else:
                    breaker.record_success()  # it answered; our request was refused
                raise
            breaker.record_success()
            return answer
        except GatewayError as exc:
            error = exc.bind(partner=name, operation=mapping.operation, message_id=query_id)
            log.warning("institution query failed", institution=name, code=exc.code)
            raise
        finally:
            self.audit.record(
                [
                    AuditEntry(
                        registry=name,
                        officer_id=ctx.officer_id,
                        purpose=ctx.purpose,
                        case_id=ctx.case_id,
                        personal_code=str(_find(request, "personal_code") or "-"),
                        query_id=query_id,
                        status=_audit_status(answer, error),
                        response_id=answer.response_id if answer else None,
                        error_code=error.code if error else None,
                        answer_sha256=answer.sha256 if answer else None,
                        duration_ms=round((time.perf_counter() - started) * 1000),
                    )
                ]
            )

    @staticmethod
    def _stamped(mapping: MessageMapping, request: dict[str, Any], query_id: str) -> dict[str, Any]:
        stamped = dict(request)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for field, source in mapping.gateway_fields.items():
            stamped[field] = query_id if source == "message_id" else now
        return stamped

    def _call(
        self,
        name: str,
        query: str,
        mapping: MessageMapping,
        request: dict[str, Any],
        ctx: QueryContext,
        query_id: str,
    ) -> InstitutionAnswer:
        document = mapping.to_xml(request)
        self.schemas.validate(document, mapping.schema)
        payload = serialize(self.signer.sign(document), declaration=False)
        header = self.channels.header_for(name, mapping.operation, query_id, ctx.officer_id)
        envelope = self.channels.client_for(name).send_raw(
            mapping.operation,
            payload,
            header=header.serialize(),
            message_id=query_id,
            limits=self.limits,
        )

        def bad(text: str) -> PartnerRejectedError:
            return PartnerRejectedError(f"{name} answer is not usable: {text}", partner=name)

        try:
            echoed = read_header(envelope.header, ECASE_HEADER_PROFILE, self.schemas)
        except GatewayError as exc:
            raise bad(f"header: {exc.message}") from exc
        if echoed.id != query_id or echoed.service != header.service:
            raise bad("the answer's header is for another request or service")
        institution = self.directory.get(name)
        try:
            signed = institution.trust.verify(envelope.body)
        except UntrustedSignerError as exc:
            raise bad(f"signature: {exc.message}") from exc
        except GatewayError as exc:
            raise bad(f"{exc.code}: {exc.message}") from exc
        answer_mapping = self.answers[query]
        if signed.tag != answer_mapping.root:
            raise bad(f"expected {answer_mapping.root}, got {signed.tag}")
        try:
            self.schemas.validate(signed, answer_mapping.schema)
            data = answer_mapping.to_canonical(signed)
        except GatewayError as exc:
            raise bad(f"{exc.code}: {exc.message}") from exc
        if data.get("request_id") != query_id:
            raise bad("the signed answer is for another request")
        return InstitutionAnswer(
            institution=name,
            query=query,
            status="not_found" if data.get("result") == "NOT_FOUND" else "ok",
            query_id=query_id,
            response_id=str(data.get("response_id", "")),
            answered_at=str(data.get("answered_at", "")),
            data=data,
            sha256=answer_sha256(data),
        )

    def breaker_states(self) -> dict[str, Any]:
        """Breaker state per answering institution, for /ready."""
        return {name: b.snapshot() for name, b in sorted(self.breakers.items())}


def _audit_status(answer: InstitutionAnswer | None, error: GatewayError | None) -> str:
    if answer is not None:
        return answer.status
    return query_status(error) if error is not None else "error"


def _refused_by_them(error: PartnerRejectedError) -> bool:
    # A SOAP Client fault means the institution is up and refused our request.
    return any(d.get("fault_code") == "Client" for d in error.details)
