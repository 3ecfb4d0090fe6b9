"""The E-case channel and the direct channel: clients, headers and served WSDLs.

Both channels speak the universal contract (``ecase.wsdl``) with the same header blocks. An
``ecase`` institution is reached at the platform's endpoint, which routes by the ``service``
header; a ``direct`` one at its own endpoint. So the only difference is the URL, and moving an
institution between channels is configuration.
"""

from __future__ import annotations

import requests

from gateway.channels.header import HeaderProfile, XRoadHeader, parse_identifier
from gateway.channels.institutions import Directory, Institution
from gateway.config import EcaseSettings, Settings
from gateway.errors import ConfigError
from gateway.ns import ECASE_HEADER
from gateway.soap.client import PartnerClient
from gateway.soap.wsdl import served_wsdl

__all__ = ["ECASE_ENDPOINT", "ECASE_HEADER_PROFILE", "Channels"]

ECASE_HEADER_PROFILE = HeaderProfile(
    channel="E-case", namespace=ECASE_HEADER, schema="ecase/header.xsd"
)

#: The name under /soap/ of the endpoint every E-case institution reaches us at.
ECASE_ENDPOINT = "ecase"


class Channels:
    """SOAP clients per endpoint (one for the platform, one per direct institution)."""

    def __init__(self, settings: Settings, directory: Directory, session: requests.Session):
        self.ecase: EcaseSettings = settings.ecase
        self.directory = directory
        self.client_id = parse_identifier(
            self.ecase.client_id, service=False, key="ecase.client_id"
        )
        self._clients: dict[str, PartnerClient] = {}
        for institution in directory.all():
            # One client per distinct endpoint: every E-case institution shares the platform's.
            key = self.endpoint_of(institution.name)
            if key in self._clients:
                continue
            connect, operation = settings.timeouts(institution.name)
            self._clients[key] = PartnerClient(
                partner=key,
                wsdl=self.ecase.wsdl,
                service=self.ecase.service,
                port=self.ecase.port,
                endpoint=institution.endpoint,
                connect_timeout=connect,
                operation_timeout=operation,
                session=session,
            )
        self._check_poll_operations(settings)

    def _check_poll_operations(self, settings: Settings) -> None:
        """A poll-only institution's operations must be the contract's: said at start, not at
        the first poll hours later."""
        for name, cfg in settings.institutions.items():
            if cfg.delivery_mode != "poll" or cfg.poll is None:
                continue
            client = self.client_for(name)
            for key in ("operation", "acknowledge"):
                operation = getattr(cfg.poll, key)
                if not client.has_operation(operation):
                    raise ConfigError(
                        f"institutions.{name}.poll.{key}: {operation!r} is not an operation "
                        f"of {self.ecase.wsdl}"
                    )

    def endpoint_of(self, institution: str) -> str:
        """The endpoint ``institution`` is reached at: ``ecase`` (the platform, shared by every
        E-case institution) or the direct institution's own name."""
        found = self.directory.get(institution)
        return ECASE_ENDPOINT if found.channel == "ecase" else found.name

    def client_for(self, institution: str) -> PartnerClient:
        """The client that reaches ``institution`` on its channel."""
        return self._clients[self.endpoint_of(institution)]

    def header_for(
        self, institution: str, operation: str, message_id: str, user_id: str | None = None
    ) -> XRoadHeader:
        """The header blocks of a message from PLUS to ``institution``."""
        found: Institution = self.directory.get(institution)
        return XRoadHeader(
            ECASE_HEADER_PROFILE,
            client=self.client_id,
            service=(*found.member, operation, self.ecase.service_version),
            user_id=user_id or self.ecase.user_id,
            id=message_id,
            protocol_version=self.ecase.protocol_version,
        )

    def inbound_endpoints(self) -> list[str]:
        """Names under /soap/ we answer at: ``ecase`` and each direct institution."""
        direct = [i.name for i in self.directory.all() if i.channel == "direct"]
        return [ECASE_ENDPOINT, *direct]

    def served_wsdls(self, base_url: str) -> dict[str, bytes]:
        """Our WSDL per inbound endpoint, with its real address (built once at start)."""
        return {
            name: served_wsdl(
                self.ecase.wsdl,
                service=self.ecase.inbound_service,
                port=self.ecase.inbound_port,
                address=f"{base_url}/soap/{name}",
            )
            for name in self.inbound_endpoints()
        }
