"""Reply routing: to whom an outbound business message goes.

The contract is universal, so the addressee is data: given by PLUS (``addressee``), or
resolved from the inbound message the outbound one answers (the mapping's ``routing.reply_to``),
or the only institution that receives the type. Content rules (``routing.rules``) then say who
may receive what. Every refusal is a :class:`~gateway.errors.RoutingError` (HTTP 422) whose
details name the field; nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.channels.institutions import Directory
from gateway.errors import (
    AddresseeAmbiguousError,
    AddresseeInconsistentError,
    AddresseeNotAllowedError,
    AddresseeRequiredError,
    ReplyUnknownRequestError,
)
from gateway.mapping import MessageMapping

__all__ = ["ADDRESSEE_FIELD", "ReplyRouter"]

#: The canonical field in which PLUS may name the addressee of an outbound message.
ADDRESSEE_FIELD = "addressee"

#: (partner message id, message types) -> institutions that sent such a message.
SenderLookup = Callable[[str, Sequence[str]], list[str]]


def _detail(path: str, message: str) -> list[dict[str, str]]:
    return [{"path": path, "message": message}]


class ReplyRouter:
    """Resolves and checks the addressee of outbound messages."""

    def __init__(self, directory: Directory, senders: SenderLookup) -> None:
        self.directory = directory
        self.senders = senders

    def resolve(self, mapping: MessageMapping, canonical: dict[str, Any], given: str | None) -> str:
        """The institution ``canonical`` goes to; a RoutingError explains any refusal."""
        if given is not None and given not in self.directory:
            raise AddresseeNotAllowedError(
                f"no institution {given!r} is configured",
                details=_detail(ADDRESSEE_FIELD, "unknown institution"),
            )
        routing = mapping.routing
        reply_to = routing.reply_to if routing else None
        if reply_to is not None:
            addressee = self._from_request(
                mapping, canonical, reply_to.field, reply_to.types, given
            )
        elif given is not None:
            addressee = given
        else:
            receivers = self.directory.receivers(mapping.message_type)
            if len(receivers) != 1:
                raise AddresseeRequiredError(
                    f"{mapping.message_type} goes to one of "
                    f"{', '.join(i.name for i in receivers) or 'no institution'}; "
                    "name it in addressee",
                    details=_detail(ADDRESSEE_FIELD, "required"),
                )
            addressee = receivers[0].name
        institution = self.directory.get(addressee)
        if mapping.message_type not in institution.receives:
            raise AddresseeNotAllowedError(
                f"{addressee} does not receive {mapping.message_type}",
                details=_detail(ADDRESSEE_FIELD, "does not receive this message type"),
            )
        for rule in routing.rules if routing else ():
            value = mapping.get_path(canonical, rule.field)
            if value in rule.values and addressee not in rule.institutions:
                raise AddresseeInconsistentError(
                    f"{rule.field} {value} cannot go to {addressee}: {rule.reason}",
                    details=_detail(rule.field, f"not for {addressee}: {rule.reason}"),
                )
        return addressee

    def _from_request(
        self,
        mapping: MessageMapping,
        canonical: dict[str, Any],
        field: str,
        types: Sequence[str],
        given: str | None,
    ) -> str:
        reference = mapping.get_path(canonical, field)
        found = self.senders(str(reference), types) if reference else []
        if not found:
            raise ReplyUnknownRequestError(
                f"{field} names no {' or '.join(types)} the gateway has received",
                details=_detail(field, "unknown request"),
            )
        if given is not None:
            if given not in found:
                raise AddresseeInconsistentError(
                    f"{field} was sent by {' and '.join(found)}, not by {given}",
                    details=_detail(ADDRESSEE_FIELD, f"the request came from {found[0]}"),
                )
            return given
        if len(found) > 1:
            raise AddresseeAmbiguousError(
                f"{field} was used by {' and '.join(found)}; name the addressee",
                details=_detail(ADDRESSEE_FIELD, "ambiguous"),
            )
        return found[0]
