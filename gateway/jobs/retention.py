"""The retention job: ``retention:`` of config.yaml applied daily (gateway/store/retention.py)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from gateway.jobs.context import JobContext
from gateway.store.retention import apply_retention
from gateway.store.schema import utcnow

__all__ = ["pseudonym_key", "retention_job"]


def pseudonym_key(settings: Any) -> bytes:
    """The key of audit pseudonyms, derived from the gateway's private key.

    Deriving it (with a label of its own) means no second secret to manage; whoever can read
    the signing key can map a personal code to its pseudonym, which is the point of keeping
    "who looked at this person" answerable for the data-protection officer.
    """
    material = settings.signing.key.read_bytes()
    return hashlib.sha256(b"plus-gateway/audit-pseudonym/v1\x00" + material).digest()


def retention_job(ctx: JobContext) -> dict[str, Any]:
    """Apply retention once for the period (a day); idempotent: a rerun finds nothing new."""
    counts = apply_retention(
        ctx.store,
        ctx.settings.retention,
        actor=f"job:{ctx.spec.name}",
        pseudonym_key=pseudonym_key(ctx.settings),
        rejected_retention_bytes=ctx.settings.journal.rejected_retention_bytes,
        check=ctx.check,
    )
    # The runs table itself: interval jobs add a row per slot (thousands a day).
    days = float(ctx.params.get("slot_runs_days", 14))
    if days > 0:
        from gateway.jobs.runner import load_jobs
        from gateway.store.jobs import JobRuns

        slot_jobs = sorted(
            n for n, spec in load_jobs(ctx.settings).items() if spec.period == "slot"
        )
        counts["job_runs"] = JobRuns(ctx.store.db, ctx.store.journal).prune(
            slot_jobs, utcnow() - timedelta(days=days)
        )
    return {"purged": counts}
