"""Gateway mode: test a gateway as an institution calls it.

For every message type the institution sends (``institutions.<name>.sends``): the valid
sample gives a signed ``ACCEPTED`` acknowledgement, sending it again ``DUPLICATE``, every
invalid XML sample its expected fault code (tests/samples/invalid.yaml) and every XSD-facet
negative ``XSD_INVALID``. Then the signature-profile negatives (docs/SIGNATURE-PROFILE.md)
and the E-case header negatives, on the institution's first type, and a type the institution
does not send. The expected codes are the profile's, listed in :data:`NEGATIVES`.
"""

from __future__ import annotations

from typing import Any

from gateway.harness.cases import Case
from gateway.harness.runner import SigningKey, SoapMode, weak_algorithm, wrapped

__all__ = ["NEGATIVES", "GatewayMode"]

#: Signature-profile and header negatives: kind -> (title, expected code).
NEGATIVES: dict[str, tuple[str, str]] = {
    "sig-unsigned": ("payload without ds:Signature", "SIG_MISSING"),
    "sig-altered": ("signed content changed after signing", "SIG_INVALID"),
    "sig-wrong-signer": ("signed by a key the gateway does not trust", "SIG_UNTRUSTED"),
    "sig-weak-algorithm": ("signed with RSA-SHA1 (weak, refused)", "SIG_INVALID"),
    "sig-wrapping": ("signature wrapping: the signed original hidden in a header", "SIG_INVALID"),
    "sig-other-institution": (
        "signed by another institution's trusted key (header claims this one)",
        "ECASE_SENDER_MISMATCH",
    ),
    "header-id-mismatch": ("id header differs from the signed MessageId", "HEADER_INVALID"),
    "header-missing": ("no SOAP Header (the five blocks are required)", "HEADER_INVALID"),
    "header-unknown-sender": ("client header names no known institution", "ECASE_UNKNOWN_SENDER"),
    "header-wrong-addressee": ("service header names another addressee", "ECASE_WRONG_ADDRESSEE"),
    "not-allowed": ("a message type this institution does not send", "MESSAGE_NOT_ALLOWED"),
}

_NOBODY = ("LV", "GOV", "00000000000", "NOBODY")


class GatewayMode(SoapMode):
    """Cases and their execution against a gateway's inbound endpoint."""

    name = "gateway"

    negatives = NEGATIVES
    direction = "inbound"

    def __init__(self, *, other: SigningKey | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.port_type = self.contract.gateway_port_type
        #: Another institution's trusted key, when the harness has one (``--sim``).
        self.other = other

    def message_types(self) -> list[str]:
        """The types the institution sends to the gateway."""
        return list(self.config.sends)

    def skip_negative(self, kind: str) -> bool:
        """Without another institution's key there is no other signer; a direct endpoint
        names its sender, so the header blocks are optional there."""
        if kind == "sig-other-institution":
            return self.other is None
        return kind == "header-missing" and self.config.channel != "ecase"

    def negative(self, case: Case, mapping: Any, data: dict[str, Any], message_id: str) -> bytes:
        """The gateway-only negatives (weak algorithm, wrapping, another institution's key,
        the header ones); the rest are the shared ones."""
        op = case.operation or mapping.operation
        header = self.header(op, message_id)
        kind = case.kind
        if kind == "sig-weak-algorithm":
            return self.envelope(
                weak_algorithm(self.payload(mapping, data), self.signing.key), header
            )
        if kind == "sig-wrapping":
            return wrapped(self.payload(mapping, data), header)
        if kind == "sig-other-institution":
            assert self.other is not None
            return self.envelope(self.payload(mapping, data, sign=self.other), header)
        if kind == "header-id-mismatch":
            signed = self.payload(mapping, data)
            return self.envelope(signed, self.header(op, message_id, id=message_id + "-other"))
        if kind == "header-missing":
            return self.envelope(self.payload(mapping, data), None)
        if kind == "header-unknown-sender":
            signed = self.payload(mapping, data)
            return self.envelope(signed, self.header(op, message_id, client=_NOBODY))
        if kind == "header-wrong-addressee":
            service = (*_NOBODY, op, self.version)
            signed = self.payload(mapping, data)
            return self.envelope(signed, self.header(op, message_id, service=service))
        return super().negative(case, mapping, data, message_id)
