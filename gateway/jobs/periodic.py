"""Job functions of the periodic work that used to loop inside ``serve``, and institution polls.

=====================  =====================================================================
``institutions.poll``  poll-only institutions (``delivery_mode: poll``): fetch, take in,
                       acknowledge (gateway/channels/polling.py)
``calendar.publish``   one publishing run of the unified calendar (CalendarSync.publish)
``calendar.poll``      one read of booking requests, then publishing what they changed
``facade.archive``     archive volunteer postings past their deadline
``store.analyze``      planner statistics (ANALYZE) of the tables whose plans depend on them
=====================  =====================================================================

Each is one idempotent function of a slot period (``interval:`` schedules), so the runs table
runs each slot on one instance, and a failed slot is retried with backoff or simply covered by
the next (``catch_up: latest``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gateway.errors import ConfigError, GatewayError, RetryableError
from gateway.jobs.context import JobContext

__all__ = [
    "calendar_poll_job",
    "calendar_publish_job",
    "due_institutions",
    "facade_archive_job",
    "institutions_poll_job",
    "store_analyze_job",
]


class PollFailedError(RetryableError):
    """One or more institutions could not be polled this slot (the others were)."""

    code = "POLL_FAILED"


def _job_interval(ctx: JobContext) -> float:
    interval = getattr(ctx.spec.trigger, "interval", None)
    return interval.total_seconds() if isinstance(interval, timedelta) else 60.0


def due_institutions(ctx: JobContext) -> list[str]:
    """The poll-only institutions whose ``poll.interval`` falls on this slot.

    The slots of every instance are one grid (interval jobs count from a fixed epoch), so
    "every fifth slot" is the same slot everywhere, and the runs table lets one instance run
    it. ``params.institutions`` restricts the job to some of them.
    """
    step = _job_interval(ctx)
    slot = int(ctx.period.start.timestamp() // step)
    wanted = ctx.params.get("institutions")
    due = []
    for name, cfg in sorted(ctx.settings.institutions.items()):
        if cfg.delivery_mode != "poll" or cfg.poll is None:
            continue
        if wanted is not None and name not in wanted:
            continue
        every = max(1, round(cfg.poll.interval / step))
        # A forced or operator run polls whatever the slot.
        if ctx.forced or ctx.actor is not None or slot % every == 0:
            due.append(name)
    return due


def institutions_poll_job(ctx: JobContext) -> dict[str, Any]:
    """Poll each due poll-only institution once; the failure of one does not stop the others.

    Raises a retryable error naming the institutions that failed (so the slot is retried:
    those already taken in are DUPLICATEs then, nothing is fetched twice into the inbox).
    """
    from gateway.channels.polling import InstitutionPoller

    wanted = ctx.params.get("institutions")
    if wanted is not None:
        unknown = sorted(
            n
            for n in wanted
            if n not in ctx.settings.institutions
            or ctx.settings.institutions[n].delivery_mode != "poll"
        )
        if unknown:
            raise ConfigError(f"params.institutions: not poll-only institutions: {unknown}")
    names = due_institutions(ctx)
    if not names:
        return {"polled": {}}
    poller = InstitutionPoller(ctx.runtime)
    polled: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for name in names:
        ctx.check()
        try:
            polled[name] = poller.poll(name, check=ctx.check).as_dict()
        except ConfigError:
            raise  # an operation the contract lacks: for good (journaled), not every minute
        except GatewayError as exc:
            if exc.code == "JOB_LEASE_LOST":
                raise
            failed[name] = exc.code
    if failed:
        raise PollFailedError(
            f"could not poll {sorted(failed)}: "
            + ", ".join(f"{n} {code}" for n, code in sorted(failed.items())),
            details=[{"institution": n, "code": c} for n, c in sorted(failed.items())],
        )
    return {"polled": polled}


def calendar_publish_job(ctx: JobContext) -> dict[str, Any]:
    """One publishing run of every resource's availability (idempotent; outages retried)."""
    if not ctx.settings.calendar.enabled:
        return {"skipped": "calendar.enabled is false"}
    report = ctx.runtime.calendar.sync.publish()
    result: dict[str, Any] = report.as_dict()
    return result


def calendar_poll_job(ctx: JobContext) -> dict[str, Any]:
    """Read booking requests, then publish the resources whose objects changed since.

    The second half replaces the old loop's "publish soon what a change touched": the store
    says which resources no longer match what was last published (whichever instance made the
    change), so it works across instances.
    """
    if not ctx.settings.calendar.enabled:
        return {"skipped": "calendar.enabled is false"}
    sync = ctx.runtime.calendar.sync
    counts: dict[str, Any] = dict(sync.poll())
    ctx.check()
    changed = sync.changed_resources()
    if changed:
        counts["published"] = sync.publish(changed).as_dict()
    return counts


def facade_archive_job(ctx: JobContext) -> dict[str, Any]:
    """Archive the postings whose application deadline has passed (one UPDATE)."""
    from gateway.facade.archive import archive_expired

    if not ctx.settings.facade.enabled:
        return {"skipped": "facade.enabled is false"}
    return {"archived": archive_expired(ctx.store)}


def store_analyze_job(ctx: JobContext) -> dict[str, Any]:
    """Planner statistics of ``params.tables`` (default: the facade's tables), see
    gateway/store/maintenance.py."""
    from gateway.store.maintenance import FACADE_TABLES, analyze

    tables = ctx.params.get("tables") or list(FACADE_TABLES)
    return {"analyzed": analyze(ctx.store.db, tables)}
