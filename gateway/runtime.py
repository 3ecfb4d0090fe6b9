"""Everything loaded once at start: schemas, mappings, keys, institutions, store, routes.

A :class:`Runtime` is built from frozen settings and passed to whoever needs it; there is no
global mutable state. Building it is the only place that reads keys, compiles schemas and
loads WSDLs, so a broken file fails start-up instead of the first message.
"""

from __future__ import annotations

import requests

from gateway.calendar import PARTNER as CALENDAR_PARTNER
from gateway.calendar import Calendar
from gateway.channels.ecase import ECASE_ENDPOINT, Channels
from gateway.channels.institutions import Directory
from gateway.channels.queries import InstitutionQueries
from gateway.channels.routing import ReplyRouter
from gateway.config import Settings
from gateway.delivery.transport import OutboxTransport
from gateway.eservices.service import EServices
from gateway.facade.service import Facade
from gateway.mapping import MappingRegistry
from gateway.metrics import Metrics
from gateway.pipeline import DEFAULT_STEPS, RouteTable
from gateway.registries.service import RegistryService
from gateway.signing import Signer
from gateway.soap.client import pooled_session
from gateway.soap.http import soap_actions
from gateway.store import Store, create_store_engine, migrate
from gateway.xml import SchemaRegistry, XmlLimits

__all__ = ["Runtime"]


class Runtime:
    """The gateway's loaded resources."""

    def __init__(self, settings: Settings, *, run_migrations: bool = True) -> None:
        self.settings: Settings = settings
        self.limits: XmlLimits = XmlLimits.from_settings(settings.xml)
        self.schemas: SchemaRegistry = SchemaRegistry(settings.paths.xsd)
        self.schemas.load_all()
        self.mappings: MappingRegistry = MappingRegistry.load(settings.paths.mappings)
        for mapping in self.mappings.all():
            self.schemas.load(mapping.schema)
        self.signer: Signer = Signer.from_files(
            settings.signing.key, settings.signing.certificate, settings.signing.algorithm
        )
        #: Institutions as data (trust stores loaded here, once).
        self.directory: Directory = Directory.from_settings(
            settings,
            known_types=frozenset(
                m.message_type for m in self.mappings.all() if m.direction in DEFAULT_STEPS
            ),
        )
        self.engine = create_store_engine(settings.store.url, echo=settings.store.echo)
        if run_migrations:
            migrate(self.engine)
        self.store: Store = Store(self.engine)
        self.metrics: Metrics = Metrics()
        self.metrics.watch_outbox(self.store.outbox.gauges)
        self.router: ReplyRouter = ReplyRouter(self.directory, self.store.inbox.senders)
        # Keep-alive connections for every delivery thread of the busiest endpoint (a full
        # urllib3 pool would close and reopen connections, and warn about it).
        busiest = max(
            [
                settings.delivery.concurrency,
                settings.ecase.concurrency or 0,
                *(i.concurrency or 0 for i in settings.institutions.values()),
            ]
        )
        self.session: requests.Session = pooled_session(
            max(settings.delivery.pool_maxsize, busiest)
        )
        #: SOAP clients per channel endpoint; the WSDL is loaded here, once.
        self.channels: Channels = Channels(settings, self.directory, self.session)
        self.wsdl_documents: dict[str, bytes] = self.channels.served_wsdls(settings.api.base_url())
        #: Every endpoint serves the same PlusService, so one operation -> soapAction map.
        self.soap_actions: dict[str, str] = soap_actions(self.wsdl_documents[ECASE_ENDPOINT])
        #: The e-services (identity trust, forms, scope, entitlement), loaded before the
        #: routes whose steps use them.
        self.eservices: EServices = EServices(settings, self.store, self.schemas, self.limits)
        self.routes: RouteTable = RouteTable(self)
        #: Queries on request to the institutions (T-02): the same audit as the registries.
        self.queries: InstitutionQueries = InstitutionQueries(
            directory=self.directory,
            channels=self.channels,
            mappings=self.mappings,
            schemas=self.schemas,
            signer=self.signer,
            limits=self.limits,
            audit=self.store.audit,
            breaker=settings.registries.breaker,
        )
        #: The volunteer facade (seal key, token issuer keys), loaded once; None when off.
        self.facade: Facade | None = (
            Facade(settings, self.store) if settings.facade.enabled else None
        )
        #: Registry queries through VISS (clients, breakers, cache, audit), built once.
        self.registries = RegistryService.from_settings(
            settings,
            schemas=self.schemas,
            mappings=self.mappings,
            limits=self.limits,
            store=self.store,
            metrics_registry=self.metrics.registry,
        )

        #: The unified calendar over CalDAV (availability, bookings); nothing is contacted here.
        self.calendar: Calendar = Calendar(settings, self.store)
        #: Outbox partners delivered by something other than a SOAP client, by partner name.
        self.transports: dict[str, OutboxTransport] = {}
        if settings.calendar.enabled:
            self.transports[CALENDAR_PARTNER] = self.calendar.transport

    def close(self) -> None:
        """Release connections."""
        self.calendar.close()
        self.registries.close()
        self.session.close()
        self.engine.dispose()
