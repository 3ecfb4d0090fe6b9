"""Partner simulators serving the same WSDLs as the real partners."""

from gateway.sim.partner import FaultPlan, PartnerSimulator, create_sim_app

__all__ = ["FaultPlan", "PartnerSimulator", "create_sim_app"]
