"""Simulators of the E-case platform and the institutions, generated from data.

An institution is simulated from its configuration (``institutions.<name>``,
``simulators.<name>``), the universal contract (``wsdl/ecase.wsdl``, the mappings) and the
samples: there is no simulator code per institution. See :mod:`gateway.sim.apps` for the HTTP
routes.
"""

from gateway.sim.apps import (
    create_institution_app,
    create_platform_app,
    served_simulators,
    simulator_app,
    simulator_url,
)
from gateway.sim.contract import SimContract
from gateway.sim.faults import FaultPlan, FaultSwitch
from gateway.sim.institution import InstitutionSim
from gateway.sim.platform import EcasePlatformSim, UnknownAddresseeError
from gateway.sim.records import Received, Records

__all__ = [
    "EcasePlatformSim",
    "FaultPlan",
    "FaultSwitch",
    "InstitutionSim",
    "Received",
    "Records",
    "SimContract",
    "UnknownAddresseeError",
    "create_institution_app",
    "create_platform_app",
    "served_simulators",
    "simulator_app",
    "simulator_url",
]
