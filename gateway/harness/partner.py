"""Partner mode: test an institution's endpoint (or the E-case platform) as the gateway calls it.

For every message type the institution receives: the valid sample, signed with the gateway's
key, must give an acknowledgement ``ACCEPTED`` signed with the institution's key (verified
against the institution's certificate), the same message again ``DUPLICATE``, every invalid
XML sample and XSD-facet negative a fault with its code. For every query it answers: a signed
answer of the answer type that validates against the XSD and names the request. Then what an
institution must refuse: an unsigned message, altered content, a signer it does not trust, a
type it does not receive. Each answer must arrive within the gateway's operation timeout for
that institution, or the gateway would time out and resend.
"""

from __future__ import annotations

from typing import Any

from gateway.harness.cases import Case
from gateway.harness.report import Result
from gateway.harness.runner import SoapMode
from gateway.mapping import MessageMapping

__all__ = ["NEGATIVES", "PartnerMode"]

#: What every institution must refuse: kind -> (title, expected code).
NEGATIVES: dict[str, tuple[str, str]] = {
    "sig-unsigned": ("a message without ds:Signature", "SIG_MISSING"),
    "sig-altered": ("signed content changed after signing", "SIG_INVALID"),
    "sig-wrong-signer": ("signed by a key that is not the gateway's", "SIG_UNTRUSTED"),
    "not-allowed": ("a message type this institution does not receive", "MESSAGE_NOT_ALLOWED"),
}


class PartnerMode(SoapMode):
    """Cases and their execution against a partner's endpoint."""

    name = "partner"

    negatives = NEGATIVES
    direction = "outbound"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port_type = self.contract.partner_port_type

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
