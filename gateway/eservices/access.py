"""Who may use which e-service, on whose data (SEC-04, ES-08, ES-09, ES-32, DOMAIN.md).

:meth:`AccessPolicy.decide` takes the platform's verified :class:`Assertion` and the request
and answers an :class:`Access` (the audience, the keyed party, the client's usage pseudonym,
the minor flag) or raises a refusal with a stable code:

* the role must be an audience of the e-service in the data-scope table
  (``ESERVICE_ROLE_NOT_PERMITTED``); reading (``request``) is only for the e-services that
  answer with data, submitting only for those that take forms;
* a client only their own case: a subject personal code other than the asserted one is
  ``ESERVICE_NOT_OWN_CASE``;
* an employer or municipality only if its legal form (PLUS's register, else the platform's)
  and the state or municipal share PLUS gives entitle it (``employer_entitled``, DEF-03 and
  ES-09; ``ESERVICE_EMPLOYER_NOT_ENTITLED``);
* a VPD volunteer (probation volunteer or companion) only once PLUS has registered them
  (``ESERVICE_PARTY_UNKNOWN``);
* a submission by an employer, municipality or volunteer about a client not assigned to it:
  ``ESERVICE_CLIENT_NOT_ASSIGNED``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from gateway.eservices.entitlement import entitlement, is_minor
from gateway.eservices.errors import (
    ClientNotAssignedError,
    NotEntitledError,
    NotOwnCaseError,
    PartyUnknownError,
    RoleNotPermittedError,
)
from gateway.eservices.identity import Assertion
from gateway.eservices.scope import ScopeTable
from gateway.eservices.usage import client_key
from gateway.store.eservices import EServiceStore

__all__ = ["READ_ESERVICES", "SUBMIT_ESERVICES", "Access", "AccessPolicy", "birth_date_of"]

#: E-services that answer a request with data, and those that take submissions (forms).
READ_ESERVICES = frozenset({"my_probation_data", "probation_client_data"})
SUBMIT_ESERVICES = frozenset(
    {"probation_client_data", "information_to_vpd", "employer_information"}
)
_ORGANISATIONS = frozenset({"employer", "municipality"})


@dataclass(frozen=True)
class Access:
    """What the gateway knows about a permitted request (never a personal code in clear)."""

    audience: str
    party_key: str | None
    client_key: str | None
    volunteer_kind: str | None
    minor: bool
    #: The e-address owner a DVS notification goes to (personal code or registration number).
    recipient_code: str

    def __repr__(self) -> str:
        return f"Access(audience={self.audience!r}, minor={self.minor})"


def birth_date_of(personal_code: str) -> date | None:
    """The birth date an old-style personal code (DDMMYY-CNNNN) carries; None for a new one."""
    digits = personal_code.replace("-", "")
    if len(digits) != 11 or not digits.isdigit() or digits.startswith("3"):
        return None
    century = {"0": 1800, "1": 1900, "2": 2000}.get(digits[6])
    if century is None:
        return None
    try:
        return date(century + int(digits[4:6]), int(digits[2:4]), int(digits[0:2]))
    except ValueError:
        return None


class AccessPolicy:
    """The rules above over the loaded scope table, the store and the usage key."""

    def __init__(self, table: ScopeTable, store: EServiceStore, usage_key: bytes) -> None:
        self.table = table
        self.store = store
        self.usage_key = usage_key

    def volunteer_key(self, personal_code: str) -> str:
        """A volunteer's party key: a keyed pseudonym, never the code."""
        return "vol:" + client_key(self.usage_key, personal_code)

    @staticmethod
    def organisation_key(registration_number: str) -> str:
        """An organisation's party key."""
        return f"org:{registration_number}"

    def decide(
        self,
        assertion: Assertion,
        *,
        eservice: str,
        kind: str,
        subject_personal_code: str | None,
        client_id: str | None,
        today: date,
    ) -> Access:
        """The access of ``assertion``'s user to ``eservice`` (see the module docstring)."""
        role = assertion.role
        if role not in self.table.audiences(eservice):
            raise RoleNotPermittedError(
                f"a {role} may not use e-service {eservice}",
                details=[{"path": "eservice", "message": f"not for a {role}"}],
            )
        allowed_kinds = {"request"} if eservice in READ_ESERVICES else set()
        if eservice in SUBMIT_ESERVICES:
            allowed_kinds.add("submission")
        if kind not in allowed_kinds:
            raise RoleNotPermittedError(
                f"e-service {eservice} takes no {kind}",
                details=[{"path": "kind", "message": f"one of {sorted(allowed_kinds)}"}],
            )
        if role == "client":
            return self._client(assertion, subject_personal_code, today)
        if role in _ORGANISATIONS:
            access = self._organisation(assertion)
        else:
            access = self._volunteer(assertion)
        if kind == "submission" and client_id is not None:
            assert access.party_key is not None
            if client_id not in self.store.assigned(access.party_key):
                raise ClientNotAssignedError(
                    "the client is not assigned to the requester",
                    details=[{"path": "client_id", "message": "not assigned"}],
                )
        return access

    def _client(self, assertion: Assertion, subject: str | None, today: date) -> Access:
        if subject is not None and subject != assertion.personal_code:
            raise NotOwnCaseError(
                "a client may use only their own case",
                details=[{"path": "subject_personal_code", "message": "not the asserted person"}],
            )
        born = birth_date_of(assertion.personal_code)
        return Access(
            audience="client",
            party_key=None,
            client_key=client_key(self.usage_key, assertion.personal_code),
            volunteer_kind=None,
            # A new-style code carries no birth date: PLUS flags a minor in its answer.
            minor=born is not None and is_minor(born, today),
            recipient_code=assertion.personal_code,
        )

    def _organisation(self, assertion: Assertion) -> Access:
        number = assertion.organisation_number
        if number is None:
            raise RoleNotPermittedError(
                f"a {assertion.role} acts for an organisation; the assertion names none",
                details=[{"path": "identity_assertion.Organisation", "message": "required"}],
            )
        key = self.organisation_key(number)
        party = self.store.party(key)
        legal_form = (party.legal_form if party else None) or assertion.legal_form or ""
        share = party.state_share_percent if party else None
        decision = entitlement(legal_form, share)
        if not decision.entitled:
            raise NotEntitledError(
                f"the organisation may not use the employers' e-services ({decision.reason})",
                details=[{"path": "identity_assertion.Organisation", "message": decision.reason}],
            )
        return Access(
            audience=assertion.role,
            party_key=key,
            client_key=None,
            volunteer_kind=None,
            minor=False,
            recipient_code=number,
        )

    def _volunteer(self, assertion: Assertion) -> Access:
        key = self.volunteer_key(assertion.personal_code)
        party = self.store.party(key)
        if party is None or party.kind != "volunteer":
            raise PartyUnknownError(
                "the volunteer is not registered by VPD for the e-services",
                details=[
                    {"path": "identity_assertion.PersonalCode", "message": "not a VPD volunteer"}
                ],
            )
        return Access(
            audience="volunteer",
            party_key=key,
            client_key=None,
            volunteer_kind=party.volunteer_kind or assertion.volunteer_kind,
            minor=False,
            recipient_code=assertion.personal_code,
        )
