"""Polling an institution that does not push (``institutions.<name>.delivery_mode: poll``).

The institution holds its messages for PLUS; the ``institutions-poll`` job asks for them on its
channel (the E-case platform routes by header, or the institution's direct endpoint) with the
contract's ``PollMessages`` operation and says what it took with ``AcknowledgePolledMessages``
(wsdl/ecase.wsdl, xsd/ecase/messages.xsd)::

    gateway                                   institution
    PollRequest(MaxMessages) ---------------> oldest pending messages, nothing removed yet
          <------------ PolledMessages(More, Message*: whole signed SOAP envelopes, base64)
    each Message: the normal inbound route (parse, identify, route, verify, validate, map,
    inbox; a MessageId seen before is a DUPLICATE) or refused with its code (journaled)
    PollAcknowledgement(Item*: ACCEPTED | DUPLICATE | REFUSED + code) ---> removed there

Nothing is lost: a message is acknowledged only after its inbox transaction committed (or it
was refused for good). A run that stops half-way (the store away, the lease lost, the
acknowledgement not getting through) acknowledges what it took, if it can, and the rest is
offered again by the next poll, where whatever went in already is a DUPLICATE. So a message
lands in the inbox once however often it is fetched, and the runs table makes one instance
poll per period.

Each polled envelope is exactly what the institution would have pushed, so the same checks
apply; one more: its sender must be the institution polled (``ECASE_SENDER_MISMATCH``).
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import structlog
from lxml import etree

from gateway.channels.ecase import ECASE_ENDPOINT, ECASE_HEADER_PROFILE
from gateway.channels.header import read_header
from gateway.errors import (
    GatewayError,
    PartnerRejectedError,
    SenderMismatchError,
    XmlMalformedError,
    XmlTooLargeError,
)
from gateway.logging import mask_text
from gateway.ns import ECASE
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.routes import run
from gateway.store.rejections import journal_rejection
from gateway.xml import parse_xml

if TYPE_CHECKING:
    from gateway.runtime import Runtime
    from gateway.signing import Signer

__all__ = [
    "POLLED_MESSAGES",
    "POLL_ACKNOWLEDGEMENT",
    "POLL_REQUEST",
    "InstitutionPoller",
    "PollItem",
    "PollReport",
    "poll_acknowledgement",
    "poll_request",
    "polled_messages",
    "read_poll_acknowledgement",
    "read_poll_request",
    "read_polled_messages",
]

log = structlog.get_logger(__name__)

POLL_REQUEST = f"{{{ECASE}}}PollRequest"
POLLED_MESSAGES = f"{{{ECASE}}}PolledMessages"
POLL_ACKNOWLEDGEMENT = f"{{{ECASE}}}PollAcknowledgement"
#: The schema of the three elements (as mappings name it).
SCHEMA = "ecase/messages.xsd"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _element(xml: str, signer: Signer | None) -> etree._Element:
    document = parse_xml(xml.encode("utf-8"))
    return signer.sign(document) if signer is not None else document


# -- the three documents (built and read by the gateway and the simulators alike) -------------


def poll_request(message_id: str, max_messages: int, signer: Signer | None) -> etree._Element:
    """``m:PollRequest``, signed with ``signer``."""
    return _element(
        f'<m:PollRequest xmlns:m="{ECASE}"><m:MessageId>{escape(message_id)}</m:MessageId>'
        f"<m:SentAt>{_now()}</m:SentAt><m:MaxMessages>{int(max_messages)}</m:MaxMessages>"
        "</m:PollRequest>",
        signer,
    )


def read_poll_request(element: etree._Element) -> tuple[str, int]:
    """(MessageId, MaxMessages) of a verified, XSD-valid ``m:PollRequest``."""
    return (
        element.findtext(f"{{{ECASE}}}MessageId") or "",
        int(element.findtext(f"{{{ECASE}}}MaxMessages") or "1"),
    )


def polled_messages(
    request_id: str,
    response_id: str,
    messages: Sequence[tuple[str, bytes]],
    more: bool,
    signer: Signer | None,
) -> etree._Element:
    """``m:PolledMessages``: each (MessageId, whole SOAP envelope) base64-encoded."""
    items = "".join(
        f'<m:Message MessageId="{escape(mid, {chr(34): "&quot;"})}">'
        f"{base64.b64encode(raw).decode('ascii')}</m:Message>"
        for mid, raw in messages
    )
    return _element(
        f'<m:PolledMessages xmlns:m="{ECASE}"><m:RequestId>{escape(request_id)}</m:RequestId>'
        f"<m:ResponseId>{escape(response_id)}</m:ResponseId><m:AnsweredAt>{_now()}</m:AnsweredAt>"
        f"<m:More>{'true' if more else 'false'}</m:More>{items}</m:PolledMessages>",
        signer,
    )


def read_polled_messages(element: etree._Element) -> tuple[str, bool, list[tuple[str, str]]]:
    """(RequestId, More, [(MessageId, base64 text)]) of a verified ``m:PolledMessages``."""
    return (
        element.findtext(f"{{{ECASE}}}RequestId") or "",
        (element.findtext(f"{{{ECASE}}}More") or "").strip() in ("true", "1"),
        [
            (m.get("MessageId") or "", (m.text or "").strip())
            for m in element.iterfind(f"{{{ECASE}}}Message")
        ],
    )


@dataclass(frozen=True)
class PollItem:
    """What became of one polled message: ACCEPTED, DUPLICATE or REFUSED (with ``code``)."""

    message_id: str
    status: str
    reference: str | None = None
    code: str | None = None


def poll_acknowledgement(
    message_id: str, request_id: str, items: Iterable[PollItem], signer: Signer | None
) -> etree._Element:
    """``m:PollAcknowledgement`` of the items taken from the answer to ``request_id``."""
    parts = []
    for item in items:
        part = f"<m:Item><m:MessageId>{escape(item.message_id)}</m:MessageId>"
        part += f"<m:Status>{escape(item.status)}</m:Status>"
        if item.reference:
            part += f"<m:Reference>{escape(item.reference[:255])}</m:Reference>"
        if item.code:
            part += f"<m:Code>{escape(item.code[:255])}</m:Code>"
        parts.append(part + "</m:Item>")
    return _element(
        f'<m:PollAcknowledgement xmlns:m="{ECASE}"><m:MessageId>{escape(message_id)}'
        f"</m:MessageId><m:SentAt>{_now()}</m:SentAt><m:RequestId>{escape(request_id)}"
        f"</m:RequestId>{''.join(parts)}</m:PollAcknowledgement>",
        signer,
    )


def read_poll_acknowledgement(element: etree._Element) -> tuple[str, list[PollItem]]:
    """(RequestId, items) of a verified ``m:PollAcknowledgement``."""
    items = [
        PollItem(
            message_id=item.findtext(f"{{{ECASE}}}MessageId") or "",
            status=item.findtext(f"{{{ECASE}}}Status") or "",
            reference=item.findtext(f"{{{ECASE}}}Reference"),
            code=item.findtext(f"{{{ECASE}}}Code"),
        )
        for item in element.iterfind(f"{{{ECASE}}}Item")
    ]
    return element.findtext(f"{{{ECASE}}}RequestId") or "", items


# -- the gateway's side -----------------------------------------------------------------------


@dataclass
class PollReport:
    """What one poll of one institution did."""

    institution: str
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    acknowledged: int = 0

    def as_dict(self) -> dict[str, Any]:
        """For the run's summary and the logs."""
        return dict(vars(self))


class InstitutionPoller:
    """Fetches, takes in and acknowledges the messages of poll-only institutions."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    def pollable(self) -> list[str]:
        """The institutions configured ``delivery_mode: poll``, by name."""
        return sorted(n for n, c in self.settings.institutions.items() if c.delivery_mode == "poll")

    def poll(self, institution: str, *, check: Callable[[], None] | None = None) -> PollReport:
        """Poll ``institution`` until it holds nothing more (or ``poll.max_batches``).

        ``check`` is called between messages and raises to stop (a job's lease lost): what was
        taken so far is still acknowledged. Retryable errors (the institution or our store
        away) propagate after that, for the job to retry.
        """
        cfg = self.settings.institution(institution)
        poll = cfg.poll
        if cfg.delivery_mode != "poll" or poll is None:
            raise PartnerRejectedError(
                f"{institution} is not configured delivery_mode: poll", partner=institution
            )
        report = PollReport(institution)
        for _ in range(poll.max_batches):
            more = self._batch(
                institution, poll.operation, poll.acknowledge, poll.max_messages, report, check
            )
            if not more:
                break
        log.info("institution polled", **report.as_dict())
        return report

    # -- one request/answer/acknowledgement --------------------------------------------------

    def _batch(
        self,
        institution: str,
        operation: str,
        acknowledge: str,
        max_messages: int,
        report: PollReport,
        check: Callable[[], None] | None,
    ) -> bool:
        rt = self.runtime
        request_id = f"PLUS-{uuid.uuid4().hex}"
        answer = self._call(
            institution, operation, request_id, poll_request(request_id, max_messages, rt.signer)
        )
        report.requests += 1
        if answer.tag != POLLED_MESSAGES:
            raise self._bad(institution, operation, f"expected PolledMessages, got {answer.tag}")
        echoed, more, messages = read_polled_messages(answer)
        if echoed != request_id:
            raise self._bad(institution, operation, "the answer is for another request")
        taken: list[PollItem] = []
        failure: BaseException | None = None
        for message_id, text in messages:
            try:
                if check is not None:
                    check()
                item = self._take(institution, message_id, text)
            except GatewayError as exc:
                if not exc.retryable:
                    raise
                failure = exc  # our store (or the like) is away: stop, keep what is taken
                break
            except BaseException as exc:  # the lease lost, a crash: the same
                failure = exc
                break
            taken.append(item)
            if item.status == "ACCEPTED":
                report.accepted += 1
            elif item.status == "DUPLICATE":
                report.duplicates += 1
            else:
                assert item.code is not None
                report.refused[item.code] = report.refused.get(item.code, 0) + 1
        if taken:
            try:
                self._acknowledge(institution, acknowledge, request_id, taken)
                report.acknowledged += len(taken)
            except GatewayError:
                if failure is None:
                    raise
                # The first failure is what the run reports; these come again as DUPLICATEs.
                log.warning("poll acknowledgement failed after a failure", institution=institution)
        if failure is not None:
            raise failure
        # An institution that says "more" but gave nothing would loop: stop.
        return more and bool(messages)

    def _call(
        self, institution: str, operation: str, message_id: str, document: etree._Element
    ) -> etree._Element:
        """Send ``document`` as ``operation``; the institution's verified, XSD-valid answer."""
        rt = self.runtime
        payload = etree.tostring(document, encoding="utf-8")
        header = rt.channels.header_for(institution, operation, message_id)
        envelope = rt.channels.client_for(institution).send_raw(
            operation,
            payload,
            header=header.serialize(),
            message_id=message_id,
            limits=rt.limits,
        )
        try:
            echoed = read_header(envelope.header, ECASE_HEADER_PROFILE, rt.schemas)
        except GatewayError as exc:
            raise self._bad(institution, operation, f"header: {exc.message}") from exc
        if echoed.id != message_id or echoed.service != header.service:
            raise self._bad(institution, operation, "the answer's header is for another request")
        try:
            signed = rt.directory.get(institution).trust.verify(envelope.body)
            rt.schemas.validate(signed, SCHEMA)
        except GatewayError as exc:
            raise self._bad(institution, operation, f"{exc.code}: {exc.message}") from exc
        return signed

    def _acknowledge(
        self, institution: str, operation: str, request_id: str, items: list[PollItem]
    ) -> None:
        ack_id = f"PLUS-{uuid.uuid4().hex}"
        answer = self._call(
            institution,
            operation,
            ack_id,
            poll_acknowledgement(ack_id, request_id, items, self.runtime.signer),
        )
        if answer.findtext(f"{{{ECASE}}}MessageId") != ack_id:
            raise self._bad(institution, operation, "the acknowledgement's receipt is for another")

    @staticmethod
    def _bad(institution: str, operation: str, text: str) -> PartnerRejectedError:
        return PartnerRejectedError(
            f"{institution} answer to {operation} is not usable: {mask_text(text)}",
            partner=institution,
            operation=operation,
        )

    # -- one polled message: the normal inbound route ----------------------------------------

    def _take(self, institution: str, message_id: str, text: str) -> PollItem:
        rt = self.runtime
        channel = rt.directory.get(institution).channel
        exchange = Exchange(
            direction="in",
            partner="",
            endpoint=ECASE_ENDPOINT if channel == "ecase" else institution,
        )
        started = time.perf_counter()
        try:
            exchange.raw = self._decode(text)
            exchange = run(rt.routes.ingress, exchange)
            if exchange.partner != institution:
                raise SenderMismatchError(
                    f"a message polled from {institution} names another sender",
                    details=[{"path": "header.client", "message": "not the institution polled"}],
                )
            assert exchange.mapping is not None
            exchange = run(rt.routes.route(exchange.mapping.message_type).steps, exchange)
        except GatewayError as exc:
            if exc.retryable:
                raise
            self._refused(institution, exchange, exc)
            return PollItem(message_id, "REFUSED", code=exc.code)
        rt.metrics.observe(exchange, time.perf_counter() - started)
        if exchange.partner_message_id != message_id:
            log.info("polled message listed under another id", institution=institution)
        log.info(
            "inbound accepted",
            institution=institution,
            operation=exchange.operation,
            duplicate=not exchange.created,
            polled=True,
        )
        return PollItem(
            message_id,
            "ACCEPTED" if exchange.created else "DUPLICATE",
            reference=exchange.message_id,
        )

    def _decode(self, text: str) -> bytes:
        limit = self.settings.xml.max_bytes
        # base64 is 4/3 of the bytes: refuse what cannot fit before decoding it.
        if len(text) > (limit // 3 + 1) * 4:
            raise XmlTooLargeError(f"a polled message is over {limit} bytes")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise XmlMalformedError("a polled message is not base64") from exc

    def _refused(self, institution: str, exchange: Exchange, exc: GatewayError) -> None:
        rt = self.runtime
        rt.metrics.rejected("in", institution, exc.code)
        log.warning(
            "polled message refused",
            institution=institution,
            operation=exchange.operation,
            code=exc.code,
            error=exc.message,
        )
        limits = self.settings.journal
        journal_rejection(
            rt.store,
            raw=exchange.raw or b"",
            prefix_bytes=limits.rejected_prefix_bytes,
            retention_bytes=limits.rejected_retention_bytes,
            direction="in",
            partner=institution,
            operation=exchange.operation or "PollMessages",
            message_type=exchange.message_type,
            message_id=exchange.message_id,
            partner_message_id=exchange.partner_message_id,
            error_code=exc.code,
            detail=mask_text(exc.message)[:2000],
        )
