"""The E-case platform simulator: one endpoint, routed by the ``service`` header.

It hosts every E-case institution that has a simulator configured (``simulators.<name>``
with a key), each an :class:`~gateway.sim.institution.InstitutionSim`. A request is parsed
once (hardened), its header blocks are read, and it goes to the institution whose member the
``service`` header names; an addressee the platform does not know is a SOAP Client fault
``ECASE_UNKNOWN_ADDRESSEE``. Faults can be injected per addressee, or for the platform itself.
"""

from __future__ import annotations

import structlog

from gateway.channels.ecase import ECASE_ENDPOINT, ECASE_HEADER_PROFILE
from gateway.channels.header import read_header
from gateway.config import Settings, SimulatorSettings
from gateway.errors import ChannelError, ConfigError, GatewayError
from gateway.sim.contract import SimContract
from gateway.sim.faults import FaultSwitch
from gateway.sim.institution import InstitutionSim
from gateway.sim.records import Records
from gateway.soap.envelope import Envelope, build_fault, parse_envelope

__all__ = ["EcasePlatformSim", "UnknownAddresseeError", "simulated_institutions"]

log = structlog.get_logger(__name__)


class UnknownAddresseeError(ChannelError):
    """The service header names no institution on the (simulated) platform."""

    code = "ECASE_UNKNOWN_ADDRESSEE"


def simulated_institutions(settings: Settings, channel: str) -> list[str]:
    """Institutions on ``channel`` that have a simulator with a key, by name."""
    return sorted(
        name
        for name, cfg in settings.institutions.items()
        if cfg.channel == channel
        and name in settings.simulators
        and settings.simulators[name].key is not None
    )


class EcasePlatformSim:
    """The simulated platform and the institutions behind it (contract loaded once).

    ``institutions`` defaults to every E-case institution with a simulator; ``contract`` may be
    shared with other simulators in the same process.
    """

    def __init__(
        self,
        settings: Settings,
        institutions: list[str] | None = None,
        contract: SimContract | None = None,
    ) -> None:
        if ECASE_ENDPOINT not in settings.simulators:
            raise ConfigError(f"simulators.{ECASE_ENDPOINT}: no E-case platform simulator")
        self.settings = settings
        self.sim: SimulatorSettings = settings.simulators[ECASE_ENDPOINT]
        self.contract = contract or SimContract(settings)
        names = simulated_institutions(settings, "ecase") if institutions is None else institutions
        self.institutions: dict[str, InstitutionSim] = {
            name: InstitutionSim(settings, name, self.contract) for name in names
        }
        self._by_member = {sim.member: sim for sim in self.institutions.values()}
        self.base_url = f"http://{self.sim.host}:{self.sim.port}"
        self.wsdl = self.contract.served_wsdl(f"{self.base_url}/soap/{ECASE_ENDPOINT}")
        #: The platform itself (every addressee): down, slow, faulting.
        self.faults = FaultSwitch()
        #: Requests the platform refused before any institution saw them.
        self.records = Records(ECASE_ENDPOINT)

    def institution(self, name: str) -> InstitutionSim:
        """The simulated institution ``name``; ConfigError if the platform has none."""
        try:
            return self.institutions[name]
        except KeyError:
            raise ConfigError(f"no simulated E-case institution {name!r}") from None

    def route(self, raw: bytes) -> tuple[InstitutionSim, Envelope]:
        """Parse a request and find its addressee by the ``service`` header; GatewayError if
        it cannot be routed (the caller answers with a fault)."""
        envelope = parse_envelope(raw, self.contract.limits)
        header = read_header(envelope.header, ECASE_HEADER_PROFILE, self.contract.schemas)
        found = self._by_member.get(header.addressee)
        if found is None:
            raise UnknownAddresseeError(
                "the service header names no institution on the platform",
                details=[{"path": "header.service", "message": "unknown addressee"}],
            )
        return found, envelope

    def refuse(self, exc: GatewayError) -> tuple[int, bytes]:
        """Record a request the platform could not route; the SOAP fault to answer."""
        self.records.reject(exc.code, exc.message)
        log.info("platform refused", code=exc.code)
        return 500, build_fault(exc)

    def snapshot(self) -> dict[str, object]:
        """Every institution's records merged in arrival order, and the platform's refusals."""
        parts = [sim.records.snapshot() for sim in self.institutions.values()]
        received = sorted((r for p in parts for r in p["received"]), key=lambda r: r["seq"])
        return {
            "received": received,
            "duplicates": {p["institution"]: p["duplicates"] for p in parts},
            "rejected": self.records.snapshot()["rejected"]
            + [r for p in parts for r in p["rejected"]],
            "queries": [q for p in parts for q in p["queries"]],
        }

    def reset(self) -> None:
        """Forget every record (faults stay as set)."""
        self.records.reset()
        for sim in self.institutions.values():
            sim.records.reset()
            sim.polls.reset()
