"""Registry queries through VISS: VIIS (education), IIS (disability), VID (employment and
income) and RD (social status), with circuit breakers, an optional cache and an audit trail.

Built once at start by :class:`~gateway.registries.service.RegistryService`; served to PLUS by
:func:`~gateway.registries.api.create_registries_router`; simulated by
:mod:`gateway.registries.sim`.
"""

from gateway.registries.breaker import CircuitBreaker
from gateway.registries.client import Answer, QueryContext, RegistryClient
from gateway.registries.contract import REGISTRIES, RegistryContract
from gateway.registries.personal_code import is_valid as is_valid_personal_code
from gateway.registries.service import Outcome, RegistryService

__all__ = [
    "REGISTRIES",
    "Answer",
    "CircuitBreaker",
    "Outcome",
    "QueryContext",
    "RegistryClient",
    "RegistryContract",
    "RegistryService",
    "is_valid_personal_code",
]
