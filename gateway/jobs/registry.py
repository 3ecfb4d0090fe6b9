"""The job functions a ``run:`` key may name, imported only when a job runs.

A job definition is data; the work it names is one idempotent function each. Adding a kind of
job adds a function and a line here; adding a schedule for an existing kind adds a YAML file.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from typing import Any

from gateway.errors import ConfigError
from gateway.jobs.context import JobContext, JobFunction

__all__ = ["FUNCTIONS", "resolve"]

#: ``run:`` name -> "module:function".
FUNCTIONS: Mapping[str, str] = {
    "opendata.publish": "gateway.opendata.job:publish_job",
    "retention.apply": "gateway.jobs.retention:retention_job",
    "classifiers.sync": "gateway.jobs.builtin:classifiers_sync_job",
    "eservices.vraa": "gateway.reports.vraa:vraa_usage_job",
    "institutions.poll": "gateway.jobs.periodic:institutions_poll_job",
    "calendar.publish": "gateway.jobs.periodic:calendar_publish_job",
    "calendar.poll": "gateway.jobs.periodic:calendar_poll_job",
    "facade.archive": "gateway.jobs.periodic:facade_archive_job",
    "store.analyze": "gateway.jobs.periodic:store_analyze_job",
    "noop": "gateway.jobs.registry:noop_job",
}


def resolve(name: str) -> JobFunction:
    """The function ``name`` stands for; ConfigError when unknown."""
    target = FUNCTIONS.get(name)
    if target is None:
        raise ConfigError(f"unknown job function {name!r}")
    module, _, attr = target.partition(":")
    function: JobFunction = getattr(importlib.import_module(module), attr)
    return function


def noop_job(ctx: JobContext) -> dict[str, Any]:
    """Does nothing but wait ``params.seconds`` (default 0), reporting progress: a probe.

    Useful to see the scheduler work on a new installation and in tests of leases; with
    ``params.record`` (a file) each completed run appends a line (job, period, attempt,
    owner).
    """
    seconds = float(ctx.params.get("seconds", 0))
    steps = max(1, int(seconds * 10))
    for step in range(steps):
        ctx.progress(step, steps, "waiting")
        time.sleep(seconds / steps)
    ctx.progress(steps, steps, "done")
    record = ctx.params.get("record")
    if record:
        # One line per completed run, appended atomically: tests count executions per period.
        with open(record, "a", encoding="utf-8") as fh:
            fh.write(f"{ctx.spec.name} {ctx.period.key} {ctx.attempt} {ctx.owner}\n")
    return {"period": ctx.period.key, "slept": seconds}
