"""The publishing job (``run: opendata.publish``): build a period and publish it to CKAN.

``schedules/opendata-monthly.yaml`` runs it on the 3rd of each month for the month before,
``schedules/opendata-yearly.yaml`` in January for the year before. No extract yet is retried
(PLUS may deliver late), as is a CKAN outage; a period that cannot be protected from
disclosure, or that was published with other content, fails for good (journaled) for a person
to decide. A forced run (``jobs run NAME --period P --force``) may replace published content.
"""

from __future__ import annotations

from typing import Any

from gateway.jobs.context import JobContext
from gateway.opendata.service import publish

__all__ = ["publish_job"]


def publish_job(ctx: JobContext) -> dict[str, Any]:
    """Publish ``ctx.period`` (a month or a year) whole; idempotent when nothing changed."""
    return publish(
        ctx.settings,
        ctx.store,
        ctx.period.key,
        force=ctx.forced,
        progress=ctx.progress,
        check=ctx.check,
    )
