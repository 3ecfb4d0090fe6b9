"""Job functions over parts the gateway already has: the classifier sync.

Retention lives in gateway/jobs/retention.py, open data in gateway/opendata/job.py.
"""

from __future__ import annotations

from typing import Any

import structlog

from gateway.classifiers.client import ClassifierClient
from gateway.classifiers.sync import apply, prepare
from gateway.errors import PermanentError
from gateway.jobs.context import JobContext

__all__ = ["ClassifierSyncBlockedError", "classifiers_sync_job"]

log = structlog.get_logger(__name__)


class ClassifierSyncBlockedError(PermanentError):
    """A sync found breaks or lists the service does not publish: a person must look."""

    code = "CLASSIFIERS_BLOCKED"


def classifiers_sync_job(ctx: JobContext) -> dict[str, Any]:
    """``plus-gateway classifiers sync --apply`` as a job: apply what breaks nothing.

    Never forces: breaks (an XSD enumeration, a sample or a mapping that would stop working)
    and lists the service does not publish fail the run for good, journaled, for an operator
    to resolve with the CLI. The service being down is retried. Applied files are read at the
    next start of the gateway (mappings are loaded once).
    """
    settings = ctx.settings
    cfg = settings.classifiers
    with ClassifierClient(cfg.service_url, timeout=cfg.timeout, max_bytes=cfg.max_bytes) as client:
        report = prepare(
            client,
            mappings=settings.paths.mappings,
            xsd=settings.paths.xsd,
            samples=settings.paths.samples,
            names=ctx.params.get("names"),
        )
    ctx.check()
    if report.errors or report.breaks:
        raise ClassifierSyncBlockedError(
            f"{len(report.breaks)} break(s), {len(report.errors)} classifier(s) not published: "
            "run `plus-gateway classifiers sync` to see them"
        )
    applied = apply(report, ctx.store, actor=f"job:{ctx.spec.name}") if report.pending else []
    if applied:
        log.warning("classifiers applied; restart the gateway to load them", applied=applied)
    return {
        "compared": len(report.classifiers),
        "applied": applied,
        "restart_needed": bool(applied),
    }
