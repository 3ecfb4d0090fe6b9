"""Everything the e-service flows need, loaded once at start (:class:`EServices`).

The identity verifier (the platform's pinned certificate), the portal's form catalogue, the
data-scope table, the entitlement rules, the usage pseudonym key and the store area. The
pipeline steps (:mod:`gateway.eservices.steps`) and the local API
(:mod:`gateway.eservices.api`) receive this object; nothing is read per message.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from gateway.config import Settings
from gateway.errors import ConfigError, GatewayError
from gateway.eservices.access import AccessPolicy
from gateway.eservices.entitlement import default_rules
from gateway.eservices.forms import FormCatalogue
from gateway.eservices.identity import IdentityVerifier
from gateway.eservices.scope import SCOPE_FILE, ScopeTable, load_scope_table
from gateway.eservices.usage import usage_key
from gateway.signing import TrustStore
from gateway.store import Store
from gateway.xml import SchemaRegistry, XmlLimits

__all__ = ["EServices"]

log = structlog.get_logger(__name__)


class EServices:
    """The e-services' loaded resources and the few actions shared by steps and API."""

    def __init__(
        self, settings: Settings, store: Store, schemas: SchemaRegistry, limits: XmlLimits
    ) -> None:
        cfg = settings.eservices
        self.settings = settings
        self.portal = cfg.portal
        self.dvs = cfg.dvs
        for key, name in (("portal", cfg.portal), ("dvs", cfg.dvs)):
            if name is not None and name not in settings.institutions:
                raise ConfigError(f"eservices.{key}: no institution {name!r} is configured")
        if cfg.identity_trust is None:
            raise ConfigError(
                "eservices.identity_trust: the E-case platform's identity certificate is required"
            )
        self.identity = IdentityVerifier(
            TrustStore.from_files(
                list(cfg.identity_trust.certificates),
                cfg.identity_trust.ca,
                max_certificates=settings.xml.max_certificates,
            ),
            schemas,
            limits,
            max_age=cfg.assertion_max_age,
            leeway=cfg.assertion_leeway,
        )
        self.forms = FormCatalogue.load(cfg.forms)
        self.scope: ScopeTable = load_scope_table(settings.paths.mappings / SCOPE_FILE)
        # Checked here so a bad entitlement table stops start-up, not the first employer.
        default_rules(settings.paths.mappings)
        self.store = store
        self.usage_key = usage_key(settings)
        self.access = AccessPolicy(self.scope, store.eservices, self.usage_key)

    def count(
        self,
        *,
        at: datetime,
        eservice: str,
        recipient_type: str,
        outcome: str,
        client_key: str | None,
    ) -> None:
        """Count one use in a transaction of its own (a refusal: nothing else is written)."""
        try:
            self.store.usage.record(
                at=at,
                eservice=eservice,
                recipient_type=recipient_type,
                outcome=outcome,
                client_key=client_key,
            )
        except GatewayError:
            # The refusal itself must still reach the portal; the count is best effort here.
            log.warning("e-service use not counted", eservice=eservice, outcome=outcome)
