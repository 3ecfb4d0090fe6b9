"""Everything loaded once at start: schemas, mappings, keys, trust stores, store, routes.

A :class:`Runtime` is built from frozen settings and passed to whoever needs it; there is no
global mutable state. Building it is the only place that reads keys, compiles schemas and
loads WSDLs, so a broken file fails start-up instead of the first message.
"""

from __future__ import annotations

import requests

from gateway.config import Settings
from gateway.mapping import MappingRegistry
from gateway.metrics import Metrics
from gateway.pipeline import RouteTable
from gateway.registries.service import RegistryService
from gateway.signing import Signer, TrustStore
from gateway.soap.client import PartnerClient, pooled_session
from gateway.soap.wsdl import served_wsdl
from gateway.store import Store, create_store_engine, migrate
from gateway.xml import SchemaRegistry, XmlLimits

__all__ = ["Runtime"]


class Runtime:
    """The gateway's loaded resources."""

    def __init__(self, settings: Settings, *, run_migrations: bool = True) -> None:
        self.settings: Settings = settings
        self.limits: XmlLimits = XmlLimits(max_bytes=settings.xml.max_bytes)
        self.schemas: SchemaRegistry = SchemaRegistry(settings.paths.xsd)
        self.schemas.load_all()
        self.mappings: MappingRegistry = MappingRegistry.load(settings.paths.mappings)
        for mapping in self.mappings.all():
            self.schemas.load(mapping.schema)
        self.signer: Signer = Signer.from_files(
            settings.signing.key, settings.signing.certificate, settings.signing.algorithm
        )
        self.trust: dict[str, TrustStore] = {
            name: TrustStore.from_files(list(p.trust.certificates), p.trust.ca)
            for name, p in settings.partners.items()
        }
        self.engine = create_store_engine(settings.store.url, echo=settings.store.echo)
        if run_migrations:
            migrate(self.engine)
        self.store: Store = Store(self.engine)
        self.metrics: Metrics = Metrics()
        self.metrics.watch_outbox(self.store.outbox_gauges)
        self.routes: RouteTable = RouteTable(self)
        #: Registry queries through VISS (clients, breakers, cache, audit), built once.
        self.registries = RegistryService.from_settings(
            settings,
            schemas=self.schemas,
            mappings=self.mappings,
            limits=self.limits,
            store=self.store,
            metrics_registry=self.metrics.registry,
        )
        self.session: requests.Session = pooled_session(settings.delivery.pool_maxsize)
        self.wsdl_documents = {
            name: served_wsdl(
                p.wsdl,
                service=p.inbound_service,
                port=p.inbound_port,
                address=f"{settings.api.base_url()}/soap/{name}",
            )
            for name, p in settings.partners.items()
            if p.inbound_service and p.inbound_port
        }

        #: zeep clients per partner; WSDLs are loaded here, once.
        self.clients: dict[str, PartnerClient] = {
            name: PartnerClient(
                partner=name,
                wsdl=p.wsdl,
                service=p.service,
                port=p.port,
                endpoint=p.endpoint,
                connect_timeout=p.connect_timeout,
                operation_timeout=p.operation_timeout,
                session=self.session,
            )
            for name, p in settings.partners.items()
        }

    def close(self) -> None:
        """Release connections."""
        self.registries.close()
        self.session.close()
        self.engine.dispose()
