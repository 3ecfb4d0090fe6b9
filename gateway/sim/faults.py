"""Fault injection for the simulators: what to do to the next requests.

One :class:`FaultSwitch` per fault target (an institution, or the E-case platform itself). A
plan applies to the next ``count`` requests (0: until changed) and then switches itself off,
so an outage test can say "fail twice, then recover" in one call.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Literal

from fastapi.responses import Response
from pydantic import BaseModel, Field

from gateway.errors import BadInputError, RetryableError
from gateway.ns import ECASE
from gateway.soap.envelope import build_ack, build_fault

__all__ = [
    "FaultMode",
    "FaultPlan",
    "FaultSwitch",
    "SimulatedOutageError",
    "SimulatedRejectionError",
    "fault_response",
]

FaultMode = Literal[
    "none", "http_503", "server_fault", "client_fault", "slow", "malformed", "unsigned_ack"
]


class FaultPlan(BaseModel):
    """What the simulator does to the next requests (for outage and resilience tests)."""

    mode: FaultMode = Field(
        "none",
        description=(
            "none | http_503 | server_fault | client_fault | slow | malformed | unsigned_ack "
            "(an ACCEPTED Acknowledgement without the institution's signature)"
        ),
    )
    #: How many requests the fault applies to; 0 means until changed.
    count: int = Field(0, ge=0)
    #: Seconds to wait before answering (mode slow).
    delay: float = Field(0.0, ge=0)


class SimulatedOutageError(RetryableError):
    """The simulated institution or platform is down (a SOAP Server fault)."""

    code = "SIM_OUTAGE"


class SimulatedRejectionError(BadInputError):
    """The simulated institution refuses the message whatever it is (a SOAP Client fault)."""

    code = "SIM_REJECTED"


class FaultSwitch:
    """The current fault plan of one target; thread-safe, counts limited plans down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan = FaultPlan()
        self._left = 0

    @property
    def plan(self) -> FaultPlan:
        """The plan in force now."""
        with self._lock:
            return self._plan

    def set(self, plan: FaultPlan) -> None:
        """Replace the plan (``mode: none`` clears it)."""
        with self._lock:
            self._plan = plan
            self._left = plan.count

    def take(self) -> FaultPlan | None:
        """The fault to apply to this request, if any."""
        with self._lock:
            plan = self._plan
            if plan.mode == "none":
                return None
            if plan.count:
                self._left -= 1
                if self._left < 0:
                    self._plan, self._left = FaultPlan(), 0
                    return None
            return plan


def _xml(body: bytes, status: int) -> Response:
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


async def fault_response(plan: FaultPlan | None, who: str) -> Response | None:
    """The response ``plan`` replaces the real answer with, or None to answer normally.

    ``slow`` waits and then lets the request through; ``who`` names the target in fault texts
    (an institution or the platform, never anything from the message).
    """
    if plan is None or plan.mode == "none":
        return None
    if plan.mode == "slow":
        await asyncio.sleep(plan.delay)
        return None
    if plan.mode == "http_503":
        return Response("service unavailable", status_code=503, media_type="text/plain")
    if plan.mode == "server_fault":
        return _xml(build_fault(SimulatedOutageError(f"simulated outage of {who}")), 500)
    if plan.mode == "client_fault":
        return _xml(build_fault(SimulatedRejectionError(f"simulated rejection by {who}")), 500)
    if plan.mode == "unsigned_ack":
        # What a forged or stripped receipt looks like: the right shape, no signature.
        return _xml(
            build_ack(ECASE, message_id="unknown", status="ACCEPTED", reference="UNSIGNED"), 200
        )
    # malformed: a 200 whose body is not XML, as a broken proxy might answer.
    return _xml(b"<not-xml", 200)
