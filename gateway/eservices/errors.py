"""The e-services' refusals, each with a stable code (docs/ESERVICES.md "Codes").

::

    PermanentError
    ├── BadInputError
    │   ├── EServiceIdentityError          ESERVICE_IDENTITY_INVALID  (base: the assertion)
    │   │   ├── IdentityMissingError       ESERVICE_IDENTITY_MISSING
    │   │   ├── IdentityForgedError        ESERVICE_IDENTITY_FORGED
    │   │   ├── IdentityExpiredError       ESERVICE_IDENTITY_EXPIRED
    │   │   └── IdentityNotForRequestError ESERVICE_IDENTITY_NOT_FOR_REQUEST
    │   ├── EServiceRefusedError           ESERVICE_REFUSED           (base: who may use what)
    │   │   ├── RoleNotPermittedError      ESERVICE_ROLE_NOT_PERMITTED
    │   │   ├── NotEntitledError           ESERVICE_EMPLOYER_NOT_ENTITLED
    │   │   ├── PartyUnknownError          ESERVICE_PARTY_UNKNOWN
    │   │   ├── NotOwnCaseError            ESERVICE_NOT_OWN_CASE
    │   │   └── ClientNotAssignedError     ESERVICE_CLIENT_NOT_ASSIGNED
    │   ├── FormError                      ESERVICE_FORM_INVALID      (form failing its schema)
    │   │   ├── UnknownFormError           ESERVICE_FORM_UNKNOWN
    │   │   └── UnknownFormVersionError    ESERVICE_FORM_VERSION_UNKNOWN
    │   └── AnswerError                    (PLUS's answer through the local API)
    │       ├── UnknownRequestError        ESERVICE_REQUEST_UNKNOWN       (404)
    │       ├── AlreadyAnsweredError       ESERVICE_ALREADY_ANSWERED      (409)
    │       └── AnswerInvalidError         ESERVICE_ANSWER_INVALID        (422)

Messages never carry personal data: a refusal names the rule, not the person.
"""

from __future__ import annotations

from gateway.errors import BadInputError

__all__ = [
    "AlreadyAnsweredError",
    "AnswerError",
    "AnswerInvalidError",
    "ClientNotAssignedError",
    "EServiceIdentityError",
    "EServiceRefusedError",
    "FormError",
    "IdentityExpiredError",
    "IdentityForgedError",
    "IdentityMissingError",
    "IdentityNotForRequestError",
    "NotEntitledError",
    "NotOwnCaseError",
    "PartyUnknownError",
    "RoleNotPermittedError",
    "UnknownFormError",
    "UnknownFormVersionError",
    "UnknownRequestError",
]


class EServiceIdentityError(BadInputError):
    """The identity assertion cannot be believed."""

    code = "ESERVICE_IDENTITY_INVALID"


class IdentityMissingError(EServiceIdentityError):
    """No identity assertion, or one that is not a signed document."""

    code = "ESERVICE_IDENTITY_MISSING"


class IdentityForgedError(EServiceIdentityError):
    """The assertion's signature is absent, altered or not the platform's."""

    code = "ESERVICE_IDENTITY_FORGED"


class IdentityExpiredError(EServiceIdentityError):
    """The assertion is past ExpiresAt, older than the allowed age, or not yet valid."""

    code = "ESERVICE_IDENTITY_EXPIRED"


class IdentityNotForRequestError(EServiceIdentityError):
    """The assertion was issued for another request (lifted from one request onto another)."""

    code = "ESERVICE_IDENTITY_NOT_FOR_REQUEST"


class EServiceRefusedError(BadInputError):
    """The asserted user may not do this."""

    code = "ESERVICE_REFUSED"


class RoleNotPermittedError(EServiceRefusedError):
    """The role may not use this e-service (or this kind of use of it)."""

    code = "ESERVICE_ROLE_NOT_PERMITTED"


class NotEntitledError(EServiceRefusedError):
    """An employer whose legal form (or state share) the law does not entitle (ES-09)."""

    code = "ESERVICE_EMPLOYER_NOT_ENTITLED"


class PartyUnknownError(EServiceRefusedError):
    """An employer, municipality or volunteer PLUS has not registered for the e-services."""

    code = "ESERVICE_PARTY_UNKNOWN"


class NotOwnCaseError(EServiceRefusedError):
    """A client asking about another person's case."""

    code = "ESERVICE_NOT_OWN_CASE"


class ClientNotAssignedError(EServiceRefusedError):
    """An employer or volunteer submitting about a client not assigned to it."""

    code = "ESERVICE_CLIENT_NOT_ASSIGNED"


class FormError(BadInputError):
    """The form's data fails the form's JSON Schema (details name the field paths)."""

    code = "ESERVICE_FORM_INVALID"


class UnknownFormError(FormError):
    """A form the portal's catalogue does not have (for this e-service)."""

    code = "ESERVICE_FORM_UNKNOWN"


class UnknownFormVersionError(FormError):
    """A known form in a version the catalogue does not have."""

    code = "ESERVICE_FORM_VERSION_UNKNOWN"


class AnswerError(BadInputError):
    """PLUS's answer cannot be taken."""

    code = "ESERVICE_ANSWER_INVALID"


class UnknownRequestError(AnswerError):
    """No e-service request with this id."""

    code = "ESERVICE_REQUEST_UNKNOWN"


class AlreadyAnsweredError(AnswerError):
    """The request has an answer already (a different one: a repeat is idempotent)."""

    code = "ESERVICE_ALREADY_ANSWERED"


class AnswerInvalidError(AnswerError):
    """The answer is not a JSON object, or contradicts the request."""

    code = "ESERVICE_ANSWER_INVALID"
