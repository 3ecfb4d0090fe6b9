"""Job definitions as data: ``schedules/*.yaml``, one job per file.

::

    name: opendata-monthly          # unique; also the file's name
    run: opendata.publish           # a job function (gateway/jobs/registry.py)
    description: ...
    cron: "0 4 3 * *"               # minute hour day month weekday, in jobs.timezone
    # or: interval: 300             # seconds (then period: slot)
    period: month                   # hour | day | month | year | slot
    lag: 1                          # periods back: November's run covers October
    catch_up: latest                # latest | all | none: periods missed while down
    params: {granularity: month}    # given to the function
    enabled: true
    retry: {max_attempts: 8, base_delay: 60, max_delay: 3600}

A bad file stops start-up with its name and the key (ConfigError, exit status 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Literal

import yaml
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.errors import ConfigError
from gateway.jobs.periods import PeriodKind

__all__ = ["JobSpec", "RetryPolicy", "load_schedules"]

#: Interval slots are counted from here, so every instance has the same grid.
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class RetryPolicy(BaseModel):
    """Backoff between attempts of a failed run: full jitter up to min(max, base * 2**n)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(5, ge=1)
    base_delay: float = Field(30.0, gt=0)
    max_delay: float = Field(3600.0, gt=0)


class _SpecModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")
    run: str
    description: str = ""
    cron: str | None = None
    interval: float | None = Field(None, gt=0)
    period: PeriodKind = "slot"
    lag: int = Field(0, ge=0, le=24)
    catch_up: Literal["latest", "all", "none"] = "latest"
    #: With ``catch_up: all``, at most this many missed periods are run after an outage.
    catch_up_limit: int = Field(12, ge=1)
    params: dict[str, Any] = {}
    enabled: bool = True
    retry: RetryPolicy = RetryPolicy()

    @model_validator(mode="after")
    def _one_schedule(self) -> _SpecModel:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of cron or interval")
        if self.interval is not None and self.period != "slot":
            raise ValueError("an interval job's period is slot")
        return self


@dataclass(frozen=True)
class JobSpec:
    """One job definition, validated, with its trigger built."""

    name: str
    run: str
    description: str
    period: PeriodKind
    lag: int
    catch_up: str
    catch_up_limit: int
    params: dict[str, Any]
    enabled: bool
    retry: RetryPolicy
    trigger: BaseTrigger
    schedule: str
    path: Path
    timezone: tzinfo = field(default=UTC)


def _trigger(model: _SpecModel, tz: tzinfo) -> tuple[BaseTrigger, str]:
    if model.cron is not None:
        try:
            return CronTrigger.from_crontab(model.cron, timezone=tz), f"cron {model.cron}"
        except ValueError as exc:
            raise ValueError(f"cron {model.cron!r}: {exc}") from None
    assert model.interval is not None
    return (
        IntervalTrigger(seconds=model.interval, start_date=_EPOCH, timezone=tz),
        f"every {model.interval:g} s",
    )


def load_schedules(directory: Path, tz: tzinfo, functions: frozenset[str]) -> dict[str, JobSpec]:
    """Every ``*.yaml`` under ``directory`` as a job; names unique and equal to file names."""
    specs: dict[str, JobSpec] = {}
    if not Path(directory).is_dir():
        return specs
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        try:
            model = _SpecModel(**data)
            trigger, schedule = _trigger(model, tz)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"{path}: {problems}") from None
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if model.name != path.stem:
            raise ConfigError(f"{path}: name {model.name!r} must match the file name")
        if model.run not in functions:
            raise ConfigError(
                f"{path}: run: unknown job function {model.run!r} (known: {sorted(functions)})"
            )
        specs[model.name] = JobSpec(
            name=model.name,
            run=model.run,
            description=model.description,
            period=model.period,
            lag=model.lag,
            catch_up=model.catch_up,
            catch_up_limit=model.catch_up_limit,
            params=dict(model.params),
            enabled=model.enabled,
            retry=model.retry,
            trigger=trigger,
            schedule=schedule,
            path=path,
            timezone=tz,
        )
    return specs
