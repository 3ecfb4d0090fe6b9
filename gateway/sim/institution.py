"""One simulated institution, made of configuration, the contract and its samples.

:class:`InstitutionSim` is everything an institution does on the wire, with no code of its
own: ``institutions.<name>`` says who it is and what it sends, receives and answers;
``simulators.<name>`` gives its key, certificate and trust store. It receives what the gateway
sends (checked as strictly as a real institution would: header, signature, XSD, mapping, and
whether it receives that type at all), answers queries from the answer's sample, and sends
signed messages built from samples to the gateway, through the E-case endpoint or its own
direct one. The same object serves the E-case platform simulator and a direct endpoint.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import structlog

from gateway.channels.ecase import ECASE_ENDPOINT, ECASE_HEADER_PROFILE
from gateway.channels.header import XRoadHeader, format_identifier, parse_identifier, read_header
from gateway.channels.polling import (
    POLL_ACKNOWLEDGEMENT,
    POLL_REQUEST,
    SCHEMA,
    polled_messages,
    read_poll_acknowledgement,
    read_poll_request,
)
from gateway.config import InstitutionSettings, Settings, SimulatorSettings
from gateway.errors import (
    ConfigError,
    GatewayError,
    HeaderError,
    MappingError,
    MessageNotAllowedError,
    UnknownSenderError,
    WrongAddresseeError,
)
from gateway.mapping import MessageMapping
from gateway.ns import ECASE
from gateway.signing import Signer, TrustStore
from gateway.sim.answers import build_answer, string_leaves
from gateway.sim.contract import SimContract
from gateway.sim.faults import FaultSwitch, SimulatedOutageError
from gateway.sim.polling import PollQueue
from gateway.sim.records import Records, now
from gateway.soap.client import PartnerClient, pooled_session
from gateway.soap.envelope import Envelope, build_ack, build_envelope, build_fault, parse_envelope
from gateway.xml import parse_xml, serialize

__all__ = ["InstitutionSim"]

log = structlog.get_logger(__name__)


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data.setdefault(key, {})
    data[last] = value


class InstitutionSim:
    """A simulated institution: receives, answers and sends the universal contract.

    ``contract`` is shared when several institutions live in one process (the platform);
    without it, one is loaded.
    """

    def __init__(self, settings: Settings, name: str, contract: SimContract | None = None) -> None:
        if name not in settings.simulators:
            raise ConfigError(f"simulators.{name}: no simulator configured")
        self.name = name
        self.settings = settings
        self.config: InstitutionSettings = settings.institution(name)
        self.sim: SimulatorSettings = settings.simulators[name]
        if self.sim.key is None or self.sim.certificate is None or self.sim.trust is None:
            raise ConfigError(f"simulators.{name}: key, certificate and trust are required")
        self.contract = contract or SimContract(settings)
        self.member = parse_identifier(
            self.config.member, service=False, key=f"institutions.{name}.member"
        )
        self.signer = Signer.from_files(self.sim.key, self.sim.certificate)
        self.trust = TrustStore.from_files(
            list(self.sim.trust.certificates),
            self.sim.trust.ca,
            max_certificates=settings.xml.max_certificates,
            accept_legacy_uri=settings.signing.accept_legacy_uri,
        )
        self.records = Records(name)
        self.faults = FaultSwitch()
        #: What a poll-only institution holds for the gateway (``delivery_mode: poll``).
        self.polls = PollQueue()
        self._client: PartnerClient | None = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"InstitutionSim({self.name!r})"

    @property
    def member_id(self) -> str:
        """The member identifier as text (``LV/GOV/90001672698/TIS``)."""
        return format_identifier(self.member)

    @property
    def channel(self) -> str:
        """``ecase`` or ``direct``, from the institution's configuration."""
        return self.config.channel

    # -- receiving (gateway -> institution) ---------------------------------------------

    def receive(self, raw: bytes) -> tuple[int, bytes]:
        """Handle one SOAP request; returns the HTTP status and the response body."""
        try:
            envelope = parse_envelope(raw, self.contract.limits)
        except GatewayError as exc:
            return self._refuse(exc)
        return self.receive_envelope(envelope)

    def receive_envelope(self, envelope: Envelope) -> tuple[int, bytes]:
        """Handle one parsed SOAP request (the platform has parsed it to route it)."""
        try:
            header = self._check_header(envelope)
            if envelope.body.tag in (POLL_REQUEST, POLL_ACKNOWLEDGEMENT):
                return self._polled(envelope, header)
            mapping = self._route(envelope, header)
            signed = self.trust.verify(envelope.body)
            self.contract.schemas.validate(signed, mapping.schema)
            canonical = mapping.to_canonical(signed)
            message_id = str(mapping.get_path(canonical, mapping.partner_message_id) or "")
            if not message_id:
                raise MappingError(f"{mapping.message_type} carries no message id")
            if header.id != message_id:
                raise HeaderError(
                    "the id header differs from the message's MessageId",
                    details=[{"path": "header.id", "message": "not the body's MessageId"}],
                )
            if mapping.direction == "query_request":
                return 200, self._answer(mapping, canonical, header)
        except GatewayError as exc:
            return self._refuse(exc)
        status = self.records.accept(
            message_id=message_id,
            operation=mapping.operation,
            message_type=mapping.message_type,
            user_id=header.user_id,
            canonical=canonical,
        )
        log.info(
            "simulator received",
            institution=self.name,
            message_type=mapping.message_type,
            message_id=message_id,
            status=status,
        )
        # The reference is stable per message, so a duplicate is answered like the first.
        reference = f"{self.name.upper()}-{uuid.uuid5(uuid.NAMESPACE_URL, message_id).hex[:12]}"
        # The gateway's Acknowledgement shape, signed with this institution's key (a signed
        # receipt the delivery worker verifies), with the request's header echoed.
        ack = build_ack(
            mapping.root.split("}")[0].lstrip("{"),
            message_id=message_id,
            status=status,
            reference=reference,
            header=header.serialize(),
            signer=self.signer,
        )
        return 200, ack

    def _polled(self, envelope: Envelope, header: XRoadHeader) -> tuple[int, bytes]:
        """PollMessages or AcknowledgePolledMessages, when configured ``delivery_mode: poll``."""
        poll = self.config.poll
        if self.config.delivery_mode != "poll" or poll is None:
            raise MessageNotAllowedError(
                f"{self.name} is not polled (delivery_mode: push)",
                details=[{"path": "body", "message": "this institution pushes"}],
            )
        polling = envelope.body.tag == POLL_REQUEST
        operation = poll.operation if polling else poll.acknowledge
        if header.service_code != operation:
            raise WrongAddresseeError(
                f"the service header names {header.service_code}, the body is {operation}",
                details=[{"path": "header.service.serviceCode", "message": "not the body's"}],
            )
        signed = self.trust.verify(envelope.body)
        self.contract.schemas.validate(signed, SCHEMA)
        if polling:
            request_id, max_messages = read_poll_request(signed)
            if header.id != request_id:
                raise HeaderError(
                    "the id header differs from the request's MessageId",
                    details=[{"path": "header.id", "message": "not the body's MessageId"}],
                )
            batch, more = self.polls.take(max_messages)
            answer = polled_messages(
                request_id,
                f"{self.name.upper()}-{uuid.uuid4()}",
                [(held.message_id, held.envelope) for held in batch],
                more,
                self.signer,
            )
            log.info("simulator polled", institution=self.name, messages=len(batch), more=more)
            return 200, build_envelope(serialize(answer, declaration=False), header.serialize())
        _, items = read_poll_acknowledgement(signed)
        if not self.polls.acknowledge(items):
            raise SimulatedOutageError(f"simulated failure of {self.name}'s acknowledgement")
        for item in items:
            if item.status == "REFUSED":
                self.records.reject(item.code or "?", "the gateway refused a polled message")
        ack_id = signed.findtext(f"{{{ECASE}}}MessageId") or ""
        return 200, build_ack(
            ECASE,
            message_id=ack_id,
            status="ACCEPTED",
            reference=f"{self.name.upper()}-{uuid.uuid5(uuid.NAMESPACE_URL, ack_id).hex[:12]}",
            header=header.serialize(),
            signer=self.signer,
        )

    def _refuse(self, exc: GatewayError) -> tuple[int, bytes]:
        self.records.reject(exc.code, exc.message)
        log.info("simulator refused", institution=self.name, code=exc.code)
        return 500, build_fault(exc, self.signer)

    def _check_header(self, envelope: Envelope) -> XRoadHeader:
        contract = self.contract
        header = read_header(envelope.header, ECASE_HEADER_PROFILE, contract.schemas)
        if header.client != contract.gateway_id:
            raise UnknownSenderError(
                "the client header does not name the gateway",
                details=[{"path": "header.client", "message": "not the gateway"}],
            )
        version = contract.ecase.service_version
        if header.addressee != self.member or header.service_version != version:
            raise WrongAddresseeError(
                f"the service header does not name {self.name} and contract version {version}",
                details=[{"path": "header.service", "message": "wrong addressee or version"}],
            )
        return header

    def _route(self, envelope: Envelope, header: XRoadHeader) -> MessageMapping:
        mapping = self.contract.mappings.by_root(envelope.body.tag)
        if header.service_code != mapping.operation:
            raise WrongAddresseeError(
                f"the service header names {header.service_code}, the body is {mapping.operation}",
                details=[{"path": "header.service.serviceCode", "message": "not the body's"}],
            )
        if mapping.direction == "query_request":
            allowed = mapping.query in self.config.answers
        else:
            allowed = (
                mapping.direction == "outbound" and mapping.message_type in self.config.receives
            )
        if not allowed:
            raise MessageNotAllowedError(
                f"{self.name} does not receive {mapping.message_type}",
                details=[{"path": "body", "message": "message type not received here"}],
            )
        return mapping

    # -- queries -------------------------------------------------------------------------

    def knows(self, value: str) -> bool:
        """Whether ``value`` occurs in what this institution has seen.

        Its world is its samples (those of the types it sends and of the answers it gives)
        and every message it exchanged with the gateway.
        """
        seen: set[str] = set()
        for message_type in self.config.sends:
            seen.update(string_leaves(self.contract.sample(self.contract.mapping(message_type))))
        for query in self.config.answers:
            for mapping in (
                self.contract.mappings.query_request(query),
                self.contract.mappings.query_answer(query),
            ):
                try:
                    seen.update(string_leaves(self.contract.sample(mapping)))
                except ConfigError:
                    continue  # a request without a sample: nothing to learn from it
        for received in self.records.received():
            seen.update(string_leaves(received.canonical))
        for sent in self.records.sent_messages():
            seen.update(string_leaves(sent.get("canonical")))
        return value in seen

    def _answer(
        self, mapping: MessageMapping, request: dict[str, Any], header: XRoadHeader
    ) -> bytes:
        assert mapping.query is not None
        answer_mapping = self.contract.mappings.query_answer(mapping.query)
        canonical = build_answer(
            request_mapping=mapping,
            request=request,
            answer_mapping=answer_mapping,
            sample=self.contract.sample(answer_mapping),
            response_id=f"{self.name.upper()}-{uuid.uuid4()}",
            answered_at=now(),
            knows=self.knows,
        )
        document = answer_mapping.to_xml(canonical)
        # A sample that no longer fits its schema is our bug: say so rather than sign it.
        self.contract.schemas.validate(document, answer_mapping.schema)
        signed = self.signer.sign(document)
        self.records.answered(
            {
                "query": mapping.query,
                "request_id": header.id,
                "response_id": canonical.get("response_id"),
                "result": canonical.get("result"),
                "answered_at": canonical.get("answered_at"),
            }
        )
        log.info(
            "simulator answered",
            institution=self.name,
            query=mapping.query,
            result=canonical.get("result"),
        )
        return build_envelope(serialize(signed, declaration=False), header.serialize())

    # -- sending (institution -> gateway) -------------------------------------------------

    @property
    def gateway_endpoint(self) -> str:
        """Where this institution's messages reach the gateway: its E-case or direct endpoint."""
        # gateway_url is the gateway's base URL; tolerate one given with a /soap/ path.
        base = self.sim.gateway_url.split("/soap/")[0].rstrip("/")
        endpoint = ECASE_ENDPOINT if self.channel == "ecase" else self.name
        return f"{base}/soap/{endpoint}"

    @property
    def client(self) -> PartnerClient:
        """zeep client of the gateway's inbound service (created once, on first use)."""
        with self._client_lock:
            if self._client is None:
                ecase = self.contract.ecase
                self._client = PartnerClient(
                    partner="gateway",
                    wsdl=ecase.wsdl,
                    service=ecase.inbound_service,
                    port=ecase.inbound_port,
                    endpoint=self.gateway_endpoint,
                    connect_timeout=ecase.connect_timeout,
                    operation_timeout=ecase.operation_timeout,
                    session=pooled_session(),
                )
            return self._client

    def header_for(self, operation: str, message_id: str) -> XRoadHeader:
        """The header blocks of a message from this institution to the gateway."""
        ecase = self.contract.ecase
        return XRoadHeader(
            ECASE_HEADER_PROFILE,
            client=self.member,
            service=(*self.contract.gateway_id, operation, ecase.service_version),
            user_id=self.name.upper(),
            id=message_id,
            protocol_version=ecase.protocol_version,
        )

    def build(
        self,
        message_type: str,
        *,
        sample: Path | None = None,
        canonical: dict[str, Any] | None = None,
        keep_id: bool = False,
        any_type: bool = False,
    ) -> tuple[MessageMapping, str, bytes, XRoadHeader]:
        """A signed payload of ``message_type`` and its header: (mapping, id, payload, header).

        The content is ``canonical``, else the file ``sample`` (canonical JSON or a payload
        XML), else the type's valid sample. A fresh ``<NAME>-<uuid>`` MessageId and the send
        time are stamped unless ``keep_id``. Only types this institution sends, unless
        ``any_type`` (to test the gateway's refusal of the others).
        """
        mapping = self.contract.mapping(message_type)
        if mapping.direction != "inbound":
            raise ConfigError(f"{message_type} is not sent to the gateway")
        if not any_type and message_type not in self.config.sends:
            raise ConfigError(f"institutions.{self.name}.sends: {message_type} is not listed")
        if canonical is not None:
            data = dict(canonical)
        elif sample is not None:
            data = self.contract.load_canonical(mapping, sample)
        else:
            data = self.contract.sample(mapping)
        if not keep_id:
            _set_path(data, mapping.partner_message_id, f"{self.name.upper()}-{uuid.uuid4()}")
            if any(f.json == "sent_at" for f in mapping.fields):
                data["sent_at"] = now()
        message_id = str(mapping.get_path(data, mapping.partner_message_id) or "")
        if not message_id:
            raise MappingError(f"{message_type}: the message has no message id")
        document = self.signer.sign(mapping.to_xml(data))
        payload = serialize(document, declaration=False)
        self.records.sent(
            {
                "message_id": message_id,
                "message_type": message_type,
                "sent_at": now(),
                "canonical": data,
            }
        )
        return mapping, message_id, payload, self.header_for(mapping.operation, message_id)

    def hold(
        self,
        message_type: str,
        *,
        canonical: dict[str, Any] | None = None,
        keep_id: bool = False,
        any_type: bool = False,
        tamper: bool = False,
    ) -> str:
        """Keep one signed message for the gateway to poll (a poll-only institution).

        The held envelope is what :meth:`send` would post. ``tamper`` changes its SentAt
        after signing (the gateway refuses it: SIG_INVALID). Returns its MessageId.
        """
        _, message_id, payload, header = self.build(
            message_type, canonical=canonical, keep_id=keep_id, any_type=any_type
        )
        if tamper:
            document = parse_xml(payload)
            sent = document.find(f"{{{ECASE}}}SentAt")
            target = sent if sent is not None else document[1]
            target.text = "2000-01-01T00:00:00+00:00"
            payload = serialize(document, declaration=False)
        self.polls.hold(message_id, message_type, build_envelope(payload, header.serialize()))
        return message_id

    def send(
        self,
        message_type: str,
        *,
        sample: Path | None = None,
        canonical: dict[str, Any] | None = None,
        keep_id: bool = False,
        any_type: bool = False,
    ) -> dict[str, Any]:
        """Sign and send one message to the gateway; returns its Acknowledgement as a dict.

        A SOAP fault raises PartnerRejectedError (Client) or PartnerServerFaultError (Server)
        whose details keep the fault's ``detail_code`` (the gateway's stable error code).
        """
        mapping, message_id, payload, header = self.build(
            message_type, sample=sample, canonical=canonical, keep_id=keep_id, any_type=any_type
        )
        # The gateway's acknowledgement is a signed receipt: verified in place against this
        # institution's trust store (the gateway's certificate) before it is believed.
        ack = self.client.send(
            mapping.operation,
            payload,
            header=header.serialize(),
            message_id=message_id,
            trust=self.trust,
            limits=self.contract.limits,
        )
        log.info("simulator sent", institution=self.name, message_type=message_type)
        return dict(ack or {})
