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
from gateway.signing import Signer, TrustStore
from gateway.soap.client import PartnerClient, pooled_session
from gateway.soap.wsdl import served_wsdl
from gateway.store import Store, create_store_engine, migrate
from gateway.xml import SchemaRegistry, XmlLimits

__all__ = ["Runtime"]


class Runtime:
    """The gateway's loaded resources."""

    def __init__(self, settings: Settings, *, run_migrations: bool = True) -> None:
        self.settings = settings
        self.limits = XmlLimits(max_bytes=settings.xml.max_bytes)
        self.schemas = SchemaRegistry(settings.paths.xsd)
        self.schemas.load_all()
        self.mappings = MappingRegistry.load(settings.paths.mappings)
        for mapping in self.mappings.all():
            self.schemas.load(mapping.schema)
        self.signer = Signer.from_files(
            settings.signing.key, settings.signing.certificate, settings.signing.algorithm
        )
        self.trust = {
            name: TrustStore.from_files(list(p.trust.certificates), p.trust.ca)
            for name, p in settings.partners.items()
        }
        self.engine = create_store_engine(settings.store.url, echo=settings.store.echo)
        if run_migrations:
            migrate(self.engine)
        self.store = Store(self.engine)
        self.metrics = Metrics()
        self.metrics.watch_outbox(self.store.outbox_counts)
        self.routes = RouteTable(self)
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
        self.session.close()
        self.engine.dispose()
