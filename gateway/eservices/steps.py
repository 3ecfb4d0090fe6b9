"""Pipeline steps of the e-service routes (named in the mappings' ``steps:``; routes are data).

Inbound ``eservice_request``::

    verify, validate, map_in,
    eservice_identity     the platform's signed assertion, for this request, in time
    eservice_entitlement  who may use which e-service on whose data (access.py)
    eservice_form         a submission's form against the portal's catalogue (forms.py)
    eservice_persist      inbox row + request row + usage count in one transaction

Outbound ``eservice_answer`` (PLUS's answer)::

    idempotency, stamp, validate_json,
    eservice_answer       the request it answers, then the data scope (scope.py) on its content
    address, map_out, validate, sign,
    eservice_persist_answer   answer + DVS notification + request answered + count, one
                              transaction

Outbound ``work_assignment`` and ``volunteer_task`` end in ``eservice_assign``: the outbox row
and the assignment of the client to the employer or volunteer, in one transaction.

A refusal is counted as a ``refused`` use of the e-service by the asserted role (an assertion
that cannot be believed names no role, so it is journaled, not counted) and leaves as a SOAP
fault with its stable code; the API journals it as every refused inbound message.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from gateway.errors import GatewayError
from gateway.eservices.access import Access
from gateway.eservices.errors import (
    AlreadyAnsweredError,
    AnswerInvalidError,
    EServiceRefusedError,
    FormError,
    RoleNotPermittedError,
    UnknownRequestError,
)
from gateway.eservices.identity import Assertion
from gateway.eservices.scope import ScopeResult, apply_scope
from gateway.eservices.service import EServices
from gateway.mapping import MappingRegistry
from gateway.pipeline.exchange import Exchange, new_id
from gateway.pipeline.steps import canonical_sha256, outbound_record
from gateway.signing import Signer
from gateway.store import InboundRecord, OutboundRecord, Store
from gateway.store.schema import utcnow
from gateway.store.usage import record_eservice_use
from gateway.xml import SchemaRegistry, serialize

__all__ = [
    "AnswerScope",
    "AssignOnSend",
    "CheckAccess",
    "CheckForm",
    "PersistAnswer",
    "PersistRequest",
    "VerifyIdentity",
]

log = structlog.get_logger(__name__)

#: What the notification at the official e-address says (no personal data: DVS has the rest).
NOTIFICATION_TITLE = "VPD ir sagatavojis atbildi E-lietas portālā (e-pakalpojums: {eservice})"


def _now() -> datetime:
    return datetime.now(UTC)


def _canonical(exchange: Exchange) -> dict[str, Any]:
    assert isinstance(exchange.canonical, dict)
    return exchange.canonical


class VerifyIdentity:
    """The platform's signed identity assertion, for this very request, still valid."""

    def __init__(self, eservices: EServices) -> None:
        self.eservices = eservices

    def __call__(self, exchange: Exchange) -> Exchange:
        canonical = _canonical(exchange)
        assertion = self.eservices.identity.verify(
            canonical.get("identity_assertion"),
            request_id=str(exchange.partner_message_id),
            now=_now(),
        )
        exchange.context["assertion"] = assertion
        return exchange


class CheckAccess:
    """Entitlement, own case, assigned clients (gateway/eservices/access.py)."""

    def __init__(self, eservices: EServices) -> None:
        self.eservices = eservices

    def __call__(self, exchange: Exchange) -> Exchange:
        canonical = _canonical(exchange)
        assertion: Assertion = exchange.context["assertion"]
        eservice = str(canonical["eservice"])
        try:
            access = self.eservices.access.decide(
                assertion,
                eservice=eservice,
                kind=str(canonical["kind"]),
                subject_personal_code=canonical.get("subject_personal_code"),
                client_id=_submission_client(canonical),
                today=_now().date(),
            )
        except EServiceRefusedError as exc:
            self._refused(eservice, assertion.role, exc)
            raise
        exchange.context["access"] = access
        return exchange

    def _refused(self, eservice: str, role: str, exc: GatewayError) -> None:
        log.info("e-service refused", eservice=eservice, role=role, code=exc.code)
        self.eservices.count(
            at=_now(), eservice=eservice, recipient_type=role, outcome="refused", client_key=None
        )


def _submission_client(canonical: dict[str, Any]) -> str | None:
    """The client a submission is about: the request's ClientId or the form's client_id."""
    if canonical.get("client_id"):
        return str(canonical["client_id"])
    text = canonical.get("form_data")
    if isinstance(text, str):
        try:
            data = json.loads(text)
        except ValueError:
            return None  # the form step refuses it with its field path
        if isinstance(data, dict) and isinstance(data.get("client_id"), str):
            return str(data["client_id"])
    return None


class CheckForm:
    """A submission carries a catalogue form of its e-service that passes its schema; a request
    carries none."""

    def __init__(self, eservices: EServices) -> None:
        self.eservices = eservices

    def __call__(self, exchange: Exchange) -> Exchange:
        canonical = _canonical(exchange)
        access: Access = exchange.context["access"]
        eservice = str(canonical["eservice"])
        try:
            if canonical["kind"] != "submission":
                if canonical.get("form") or canonical.get("form_data"):
                    raise FormError(
                        "a request carries no form; send it as a submission",
                        details=[{"path": "form", "message": "only with kind submission"}],
                    )
                return exchange
            forms = self.eservices.forms
            form = forms.get(eservice, canonical.get("form"), canonical.get("form_version"))
            if access.audience not in form.audiences:
                raise RoleNotPermittedError(
                    f"form {form.name} is not for a {access.audience}",
                    details=[{"path": "form", "message": f"not for a {access.audience}"}],
                )
            forms.validate(form, canonical.get("form_data"))
        except (FormError, EServiceRefusedError) as exc:
            log.info("e-service form refused", eservice=eservice, code=exc.code)
            self.eservices.count(
                at=_now(),
                eservice=eservice,
                recipient_type=access.audience,
                outcome="refused",
                client_key=access.client_key,
            )
            raise
        return exchange


class PersistRequest:
    """Inbox row, request row and (for a submission) its count, in one transaction.

    The inbox keeps the message as received (it conforms to the type's published schema);
    the requester as the gateway established it is on ``GET /v1/eservices/requests/{id}``.
    """

    def __init__(self, eservices: EServices, store: Store) -> None:
        self.eservices = eservices
        self.store = store

    def __call__(self, exchange: Exchange) -> Exchange:
        canonical = _canonical(exchange)
        access: Access = exchange.context["access"]
        assert exchange.mapping is not None and exchange.partner_message_id is not None
        assert exchange.raw is not None
        now = utcnow()
        with self.store.db.transaction() as conn:
            message_id, created = self.store.inbox.accept_in(
                conn,
                InboundRecord(
                    message_id=exchange.message_id,
                    partner=exchange.partner,
                    operation=exchange.mapping.operation,
                    message_type=exchange.mapping.message_type,
                    partner_message_id=exchange.partner_message_id,
                    correlation_id=exchange.correlation_id,
                    canonical=canonical,
                    payload=exchange.raw,
                ),
                at=now,
            )
            if created:
                self.store.eservices.insert_request_in(
                    conn,
                    request_id=exchange.partner_message_id,
                    message_id=message_id,
                    eservice=canonical["eservice"],
                    kind=canonical["kind"],
                    audience=access.audience,
                    volunteer_kind=access.volunteer_kind,
                    party_key=access.party_key,
                    client_key=access.client_key,
                    recipient_code=access.recipient_code,
                    minor=access.minor,
                    form=canonical.get("form"),
                    form_version=canonical.get("form_version"),
                    received_at=now,
                )
                if canonical["kind"] == "submission":
                    record_eservice_use(
                        conn,
                        at=now,
                        eservice=canonical["eservice"],
                        recipient_type=access.audience,
                        outcome="accepted",
                        client_key=access.client_key,
                    )
        exchange.message_id, exchange.created = message_id, created
        return exchange


class AnswerScope:
    """PLUS's answer: the request it answers, and only what that requester may see.

    ``content`` may be an object or its JSON text. Whatever lies outside the data-scope table
    for the requester's audience and e-service, and every client not assigned to an employer or
    volunteer, is removed here, before anything is signed; the paths (never values) and counts
    go to the log and, in :class:`PersistAnswer`, to the journal.
    """

    def __init__(self, eservices: EServices) -> None:
        self.eservices = eservices

    def __call__(self, exchange: Exchange) -> Exchange:
        canonical = dict(_canonical(exchange))
        request_id = canonical.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise AnswerInvalidError(
                "the answer names no request",
                details=[{"path": "request_id", "message": "required"}],
            )
        request = self.eservices.store.eservices.get(request_id)
        if request is None:
            raise UnknownRequestError(
                "no e-service request with this id",
                details=[{"path": "request_id", "message": "unknown request"}],
            )
        if request.status == "answered" and request.answer_key != exchange.idempotency_key:
            raise AlreadyAnsweredError(
                "the request has been answered already",
                details=[{"path": "request_id", "message": "already answered"}],
            )
        given = canonical.get("eservice")
        if given is not None and given != request.eservice:
            raise AnswerInvalidError(
                f"the request is for {request.eservice}, not {given}",
                details=[{"path": "eservice", "message": f"must be {request.eservice}"}],
            )
        canonical["eservice"] = request.eservice
        content = canonical.get("content")
        if isinstance(content, str):
            try:
                content = json.loads(content)
            except ValueError as exc:
                raise AnswerInvalidError(
                    "content is not JSON",
                    details=[{"path": "content", "message": "not JSON"}],
                ) from exc
        if content is not None and not isinstance(content, dict):
            raise AnswerInvalidError(
                "content must be a JSON object",
                details=[{"path": "content", "message": "not an object"}],
            )
        result: ScopeResult | None = None
        if content is not None:
            assigned = (
                self.eservices.store.eservices.assigned(request.party_key)
                if request.party_key is not None
                else None
            )
            minor = request.minor or bool(exchange.context.get("minor"))
            result = apply_scope(
                request.audience,
                request.eservice,
                content,
                assigned_client_ids=assigned,
                minor=minor,
                table=self.eservices.scope,
            )
            canonical["content"] = json.dumps(
                result.answer, ensure_ascii=False, separators=(",", ":")
            )
            if not result.clean:
                log.warning(
                    "e-service answer stripped",
                    request_id=request_id,
                    eservice=request.eservice,
                    audience=request.audience,
                    stripped_fields=result.stripped_fields,
                    stripped_count=result.stripped_count,
                    removed_clients=result.removed_clients,
                )
        exchange.canonical = canonical
        exchange.correlation_id = exchange.correlation_id or request_id
        exchange.context["request"] = request
        exchange.context["scope"] = result
        return exchange


class PersistAnswer:
    """The answer, its DVS notification (when the e-address is active), the request marked
    answered, the use counted and what scope stripped journaled: one transaction."""

    def __init__(
        self,
        eservices: EServices,
        store: Store,
        mappings: MappingRegistry,
        schemas: SchemaRegistry,
        signer: Signer,
    ) -> None:
        self.eservices = eservices
        self.store = store
        self.notification = mappings.get("eservice_notification") if eservices.dvs else None
        self.schemas = schemas
        self.signer = signer

    def _notification(
        self, exchange: Exchange, request_id: str, recipient: str, eservice: str
    ) -> OutboundRecord:
        assert self.notification is not None and self.eservices.dvs is not None
        mapping = self.notification
        message_id = new_id()
        canonical = {
            "message_id": message_id,
            "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "request_id": request_id,
            "answer_message_id": exchange.message_id,
            "eservice": eservice,
            "recipient_code": recipient,
            "title": NOTIFICATION_TITLE.format(eservice=eservice),
        }
        mapping.validate_canonical(canonical)
        document = mapping.to_xml(canonical)
        self.schemas.validate(document, mapping.schema)
        payload = serialize(self.signer.sign(document), declaration=False)
        return OutboundRecord(
            message_id=message_id,
            partner=self.eservices.dvs,
            operation=mapping.operation,
            message_type=mapping.message_type,
            payload=payload,
            ordering_key=None,
            correlation_id=request_id,
            idempotency_key=f"{exchange.idempotency_key}:notification",
            request_sha256=canonical_sha256({"notification_of": exchange.message_id}),
            user_id=exchange.user_id,
        )

    def __call__(self, exchange: Exchange) -> Exchange:
        assert exchange.payload is not None and exchange.mapping is not None
        assert exchange.idempotency_key is not None and exchange.request_sha256 is not None
        canonical = _canonical(exchange)
        request = exchange.context["request"]
        scope: ScopeResult | None = exchange.context.get("scope")
        answer = outbound_record(exchange)
        notify = bool(canonical.get("notify_e_address")) and self.notification is not None
        notification = (
            self._notification(
                exchange, request.request_id, request.recipient_code, request.eservice
            )
            if notify
            else None
        )
        now = utcnow()
        try:
            with self.store.db.transaction() as conn:
                if not self.store.eservices.mark_answered_in(
                    conn,
                    request.request_id,
                    at=now,
                    answer_message_id=exchange.message_id,
                    answer_key=exchange.idempotency_key,
                    notification_message_id=notification.message_id if notification else None,
                ):
                    raise AlreadyAnsweredError(
                        "the request has been answered already",
                        details=[{"path": "request_id", "message": "already answered"}],
                    )
                self.store.outbox.accept_in(conn, answer, at=now)
                if notification is not None:
                    self.store.outbox.accept_in(conn, notification, at=now)
                if request.kind == "request":
                    # A submission was counted when it was accepted; its answer is no new use.
                    record_eservice_use(
                        conn,
                        at=now,
                        eservice=request.eservice,
                        recipient_type=request.audience,
                        outcome="answered",
                        client_key=request.client_key,
                    )
                if scope is not None and not scope.clean:
                    self.store.journal.append_in(
                        conn,
                        about=answer,
                        at=now,
                        direction="local",
                        status="scope_stripped",
                        error_code="ESERVICE_SCOPE_STRIPPED",
                        # Generic field paths and counts only (scope.py never yields values).
                        detail=(
                            f"{request.audience}/{request.eservice}: "
                            f"{scope.stripped_count} value(s) at "
                            f"{', '.join(scope.stripped_fields) or '-'}; "
                            f"{scope.removed_clients} unassigned client(s) removed"
                        ),
                    )
        except IntegrityError as exc:
            # Another answer with the same key won a race: the idempotency step sees it now.
            raise AlreadyAnsweredError(
                "the request has been answered already",
                details=[{"path": "request_id", "message": "already answered"}],
            ) from exc
        exchange.created = True
        exchange.context["notification_message_id"] = (
            notification.message_id if notification else None
        )
        return exchange


class AssignOnSend:
    """A work assignment (OUT-09) or volunteer task (ES-34) assigns its client to the
    employer or volunteer, in the same transaction that stores the outbound message."""

    def __init__(self, eservices: EServices, store: Store) -> None:
        self.eservices = eservices
        self.store = store

    def __call__(self, exchange: Exchange) -> Exchange:
        assert exchange.payload is not None and exchange.mapping is not None
        assert exchange.idempotency_key is not None and exchange.request_sha256 is not None
        canonical = _canonical(exchange)
        mapping = exchange.mapping
        if "employer_registration_number" in canonical:
            party_key = self.eservices.access.organisation_key(
                str(canonical["employer_registration_number"])
            )
        else:
            party_key = self.eservices.access.volunteer_key(
                str(canonical["volunteer_personal_code"])
            )
        record = outbound_record(exchange)
        now = utcnow()
        try:
            with self.store.db.transaction() as conn:
                self.store.outbox.accept_in(conn, record, at=now)
                self.store.eservices.assign_in(
                    conn,
                    party_key,
                    str(canonical["client_id"]),
                    source=mapping.message_type,
                    at=now,
                )
        except IntegrityError:
            # The same Idempotency-Key won a race: answer what it stored.
            earlier = self.store.idempotency.resolve(
                exchange.idempotency_key, exchange.request_sha256
            )
            if earlier is None:
                raise
            exchange.message_id, exchange.created = earlier, False
            return exchange
        exchange.created = True
        return exchange
