"""Partner mode: test an institution's endpoint (or the E-case platform) as the gateway calls it.

For every message type the institution receives: the valid sample, signed with the gateway's
key, must give an acknowledgement ``ACCEPTED`` signed with the institution's key (verified
against the institution's certificate), the same message again ``DUPLICATE``, every invalid
XML sample and XSD-facet negative a fault with its code. For every query it answers: a signed
answer of the answer type that validates against the XSD and names the request. Then what an
institution must refuse: an unsigned message, altered content, a signer it does not trust, a
type it does not receive. Each answer must arrive within the gateway's operation timeout for
that institution, or the gateway would time out and resend.

A poll-only institution (``delivery_mode: poll``) also serves ``PollMessages`` and
``AcknowledgePolledMessages`` (gateway/channels/polling.py): its answer must be a signed, XSD-valid
``m:PolledMessages`` naming the request, each message in it a whole SOAP envelope the
institution signed, of a type it sends, from its own identifier; ``MaxMessages`` must bound the
batch (``More`` when others wait); what was acknowledged must not be offered again; an unsigned
poll must be refused. With ``--sim`` the simulated institution first holds a valid message of
each type it sends (``holder``); against a real endpoint the cases judge what it holds.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from typing import Any

from lxml import etree

from gateway.channels.ecase import ECASE_HEADER_PROFILE
from gateway.channels.header import read_header
from gateway.channels.polling import (
    POLLED_MESSAGES,
    SCHEMA,
    PollItem,
    poll_acknowledgement,
    poll_request,
    read_polled_messages,
)
from gateway.config import PollSettings
from gateway.errors import GatewayError
from gateway.harness.cases import Case
from gateway.harness.report import Plan, Result
from gateway.harness.runner import SoapMode
from gateway.harness.transport import Wire
from gateway.mapping import MessageMapping
from gateway.soap.envelope import parse_envelope

__all__ = ["NEGATIVES", "POLL_CASES", "PartnerMode"]

#: What every institution must refuse: kind -> (title, expected code).
NEGATIVES: dict[str, tuple[str, str]] = {
    "sig-unsigned": ("a message without ds:Signature", "SIG_MISSING"),
    "sig-altered": ("signed content changed after signing", "SIG_INVALID"),
    "sig-wrong-signer": ("signed by a key that is not the gateway's", "SIG_UNTRUSTED"),
    "not-allowed": ("a message type this institution does not receive", "MESSAGE_NOT_ALLOWED"),
}


#: The cases of a poll-only institution: kind -> (title, expected outcome).
POLL_CASES: dict[str, tuple[str, str]] = {
    "poll-messages": (
        "pending messages come back signed, each a message the institution signed and sends",
        "POLLED",
    ),
    "poll-limit": ("MaxMessages 1 gives one message at most (More when others wait)", "POLLED"),
    "poll-acknowledge": ("what was acknowledged is not offered again", "ACCEPTED"),
    "poll-unsigned": ("a PollRequest without ds:Signature is refused", "SIG_MISSING"),
}


class _Refused(Exception):
    """A polled answer that fails the case (carries the failed result)."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.reason)
        self.result = result


class PartnerMode(SoapMode):
    """Cases and their execution against a partner's endpoint."""

    name = "partner"

    negatives = NEGATIVES
    direction = "outbound"

    def __init__(self, *, holder: Callable[[], list[str]] | None = None, **kwargs: Any) -> None:
        """``holder``: with simulators, makes the institution hold messages to poll (their
        ids); None against a real endpoint."""
        super().__init__(**kwargs)
        self.port_type = self.contract.partner_port_type
        self.holder = holder
        self.poll: PollSettings | None = (
            self.config.poll if self.config.delivery_mode == "poll" else None
        )
        self._held: list[str] | None = None

    # -- planning -------------------------------------------------------------------------

    def plan(self) -> tuple[Plan, list[Case]]:
        """The shared plan, and a poll-only institution's poll operations."""
        plan, cases = super().plan()
        if self.poll is None:
            return plan, cases
        plan.operations |= {self.poll.operation, self.poll.acknowledge}
        for kind, (title, expect) in POLL_CASES.items():
            operation = self.poll.acknowledge if kind == "poll-acknowledge" else self.poll.operation
            cases.append(
                Case(
                    id=f"{self.name}.{self.institution}.{kind}",
                    mode=self.name,
                    institution=self.institution,
                    kind=kind,
                    title=f"{operation}: {title}",
                    expect=expect,
                    operation=operation,
                )
            )
        return plan, cases

    def run(self, case: Case) -> Result:
        """Poll cases here; the others as both directions run them."""
        if case.kind not in POLL_CASES:
            return super().run(case)
        try:
            return self._run_poll(case)
        except _Refused as refused:
            return refused.result

    def message_types(self) -> list[str]:
        """The types the gateway delivers to the institution."""
        return list(self.config.receives)

    def extra_mappings(self) -> list[MessageMapping]:
        """The queries the institution answers."""
        return [self.contract.mappings.query_request(q) for q in self.config.answers]

    def main_cases(self, mapping: MessageMapping, prefix: str, base: dict[str, Any]) -> list[Case]:
        """A query's positive case is a signed, valid answer; a message's the shared two."""
        if mapping.direction != "query_request":
            return super().main_cases(mapping, prefix, base)
        return [
            Case(
                id=f"{prefix}.answer",
                kind="query",
                expect="ANSWER",
                title=f"{mapping.operation}: a signed, valid answer",
                **base,
            )
        ]

    def run_other(
        self, case: Case, mapping: MessageMapping, data: dict[str, Any], message_id: str
    ) -> Result | None:
        """A query: send it as the gateway would and judge the answer."""
        if case.kind != "query":
            return None
        assert case.operation is not None
        header = self.header(case.operation, message_id)
        envelope = self.envelope(self.payload(mapping, data), header)
        wire = self.send(case.operation, envelope)
        return self._expect_answer(case, wire, mapping, message_id)

    def _expect_answer(self, case: Case, wire: Any, request: Any, request_id: str) -> Result:
        assert request.query is not None
        answer = self.contract.mappings.query_answer(request.query)
        signed = self.signed_body(
            case,
            wire,
            [wire],
            expected="an answer",
            root=answer.root,
            is_root=lambda body: body.tag == answer.root,
            noun=("answer", "answer"),
        )
        if isinstance(signed, Result):
            return signed
        schema = self.contract.schema(answer)
        errors = list(schema.iter_errors(signed))
        if errors:
            first = errors[0]
            return Result(
                case,
                "failed",
                f"the answer does not validate against {answer.schema}: "
                f"{first.reason} at {first.path}",
                [wire],
                observed="XSD invalid answer",
                exercised=True,
            )
        canonical = answer.to_canonical(signed)
        echoed = canonical.get("request_id")
        if echoed is not None and echoed != request_id:
            return Result(
                case,
                "failed",
                f"the answer names request {echoed!r}, not ours",
                [wire],
                exercised=True,
            )
        late = self.timing(wire)
        if late:
            return Result(case, "failed", late, [wire], exercised=True)
        return Result(
            case,
            "passed",
            f"signed {answer.message_type} answer, valid, result {canonical.get('result', '-')}",
            [wire],
            observed="ANSWER",
            exercised=True,
        )

    # -- poll-only institutions -------------------------------------------------------------

    def _hold(self, at_least: int) -> list[str]:
        """Have the simulated institution hold ``at_least`` messages (once more if fewer are
        still held); the ids held for the harness so far."""
        if self.holder is None:
            return []
        if self._held is None:
            self._held = []
        while len(self._held) < at_least:
            before = len(self._held)
            self._held.extend(self.holder())
            if len(self._held) == before:
                break  # the holder made nothing: the institution sends no type with a sample
        return list(self._held)

    def _run_poll(self, case: Case) -> Result:
        assert self.poll is not None
        if case.kind == "poll-unsigned":
            wire, _ = self._send_poll(1, signed=False)
            return self.expect_fault(case, wire, case.expect, [wire])
        if case.kind == "poll-limit":
            held = self._hold(2)
            wire, request_id = self._send_poll(1)
            more, messages = self._read_polled(case, wire, request_id, [wire])
            if len(messages) > 1:
                return self._failed(case, [wire], f"{len(messages)} messages for MaxMessages 1")
            if len(held) >= 2 and not more:
                return self._failed(case, [wire], "More is false while another held message waits")
            return self._passed(case, [wire], f"{len(messages)} message(s), More {more}")
        if case.kind == "poll-messages":
            held = self._hold(1)
            wire, request_id = self._send_poll(self.poll.max_messages)
            more, messages = self._read_polled(case, wire, request_id, [wire])
            offered = {mid for mid, _ in messages}
            missing = [m for m in held if m not in offered]
            if missing and not more:
                return self._failed(
                    case, [wire], f"held message {missing[0]} was not offered (More is false)"
                )
            if not messages:
                return self._passed(
                    case,
                    [wire],
                    "no message held: the answer's shape was checked; make the endpoint hold "
                    "messages to check them too",
                )
            types = sorted({t for _, t in messages})
            return self._passed(
                case, [wire], f"{len(messages)} signed message(s) of {', '.join(types)}"
            )
        # poll-acknowledge: take what is offered, acknowledge it, poll again.
        self._hold(1)
        first, request_id = self._send_poll(self.poll.max_messages)
        _, messages = self._read_polled(case, first, request_id, [first])
        if not messages:
            return Result(
                case, "skipped", "the endpoint held nothing to acknowledge", [first], exercised=True
            )
        ack_id = f"{self.id_prefix}-H-{uuid.uuid4().hex[:20]}"
        items = [
            PollItem(mid, "ACCEPTED", reference=f"{self.id_prefix}-{uuid.uuid4().hex[:12]}")
            for mid, _ in messages
        ]
        document = poll_acknowledgement(ack_id, request_id, items, self.signing.signer)
        ack = self.send(
            self.poll.acknowledge,
            self.envelope(document, self.header(self.poll.acknowledge, ack_id)),
        )
        result = self.expect_ack(case, ack, ack_id, "ACCEPTED", [first, ack])
        if result.verdict != "passed":
            return result
        if self._held is not None:
            taken = {mid for mid, _ in messages}
            self._held = [m for m in self._held if m not in taken]
        again, again_id = self._send_poll(self.poll.max_messages)
        _, later = self._read_polled(case, again, again_id, [first, ack, again])
        repeated = sorted({mid for mid, _ in later} & {mid for mid, _ in messages})
        if repeated:
            return self._failed(
                case,
                [first, ack, again],
                f"acknowledged message {repeated[0]} was offered again",
            )
        return self._passed(
            case,
            [first, ack, again],
            f"{len(messages)} acknowledged, signed receipt verified; none offered again",
            observed="ACCEPTED",
        )

    def _send_poll(self, max_messages: int, *, signed: bool = True) -> tuple[Wire, str]:
        assert self.poll is not None
        request_id = f"{self.id_prefix}-H-{uuid.uuid4().hex[:20]}"
        document = poll_request(request_id, max_messages, self.signing.signer if signed else None)
        envelope = self.envelope(document, self.header(self.poll.operation, request_id))
        return self.send(self.poll.operation, envelope), request_id

    def _read_polled(
        self, case: Case, wire: Wire, request_id: str, wires: list[Wire]
    ) -> tuple[bool, list[tuple[str, str]]]:
        """(More, [(MessageId, message type)]) of a good answer; raises _Refused otherwise."""
        signed = self.signed_body(
            case,
            wire,
            wires,
            expected="polled messages",
            root="m:PolledMessages",
            is_root=lambda body: body.tag == POLLED_MESSAGES,
            noun=("answer", "answer"),
        )
        if isinstance(signed, Result):
            raise _Refused(signed)
        errors = list(self.contract.schema(SCHEMA).iter_errors(signed))
        if errors:
            raise _Refused(
                self._failed(case, wires, f"m:PolledMessages does not validate: {errors[0].reason}")
            )
        echoed, more, items = read_polled_messages(signed)
        if echoed != request_id:
            raise _Refused(self._failed(case, wires, f"the answer names request {echoed!r}"))
        late = self.timing(wire)
        if late:
            raise _Refused(self._failed(case, wires, late))
        return more, [(mid, self._polled_message(case, wires, mid, text)) for mid, text in items]

    def _polled_message(self, case: Case, wires: list[Wire], message_id: str, text: str) -> str:
        """Check one polled message as the gateway will take it; its type."""

        def bad(why: str) -> _Refused:
            return _Refused(self._failed(case, wires, f"polled message {message_id}: {why}"))

        try:
            raw = base64.b64decode(text, validate=True)
            envelope = parse_envelope(raw, self.contract.limits)
        except (binascii.Error, GatewayError) as exc:
            raise bad(f"not a base64 SOAP envelope ({exc})") from exc
        mapping = self.contract.mapping_of_root(envelope.body.tag)
        if mapping is None or mapping.message_type not in self.config.sends:
            raise bad(
                f"{etree.QName(envelope.body).localname} is not a type {self.institution} sends"
            )
        try:
            header = read_header(
                envelope.header, ECASE_HEADER_PROFILE, self.contract.header_schemas
            )
            signed = self.trust.verify(envelope.body)
        except GatewayError as exc:
            raise bad(f"{exc.code}: {exc.message}") from exc
        if header.client != self.addressee:
            raise bad("its header names another sender than the institution polled")
        errors = list(self.contract.schema(mapping).iter_errors(signed))
        if errors:
            raise bad(f"does not validate against {mapping.schema}: {errors[0].reason}")
        found = (signed.findtext("{*}MessageId") or "").strip()
        if found != message_id:
            raise bad(f"its MessageId is {found!r}")
        return mapping.message_type

    @staticmethod
    def _failed(case: Case, wires: list[Wire], reason: str) -> Result:
        return Result(case, "failed", reason, wires, exercised=True)

    @staticmethod
    def _passed(case: Case, wires: list[Wire], reason: str, observed: str = "POLLED") -> Result:
        return Result(case, "passed", reason, wires, observed=observed, exercised=True)
