"""Fault plans count down and switch themselves off."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.sim import FaultPlan, FaultSwitch


def test_limited_plan_applies_count_times_then_clears() -> None:
    switch = FaultSwitch()
    switch.set(FaultPlan(mode="http_503", count=2))
    assert [p.mode if p else None for p in (switch.take(), switch.take(), switch.take())] == [
        "http_503",
        "http_503",
        None,
    ]
    assert switch.plan.mode == "none"


def test_unlimited_plan_stays_until_changed() -> None:
    switch = FaultSwitch()
    switch.set(FaultPlan(mode="server_fault"))
    assert all(switch.take() is not None for _ in range(5))
    switch.set(FaultPlan())
    assert switch.take() is None


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValidationError):
        FaultPlan.model_validate({"mode": "explode"})
