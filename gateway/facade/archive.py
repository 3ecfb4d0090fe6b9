"""Archiving postings after their application deadline (VOL-21).

:func:`archive_expired` is the whole job: one idempotent UPDATE (published and past the
deadline -> archived), safe to run on several instances at once and as often as wanted. The
scheduled job ``facade-archive`` (schedules/facade-archive.yaml, ``facade.archive`` in
gateway/jobs/periodic.py) runs it every minute on one instance. The public list never shows a
posting past its deadline anyway (the deadline is part of its query), so the schedule only
decides when the status column catches up.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from gateway.store import Store
from gateway.store.facade.listings import Listings

__all__ = ["archive_expired"]

log = structlog.get_logger(__name__)


def archive_expired(store: Store, now: datetime | None = None) -> int:
    """Archive every posting whose deadline has passed; returns how many were archived."""
    archived = Listings(store.db).archive_expired(now)
    if archived:
        log.info("volunteer postings archived", count=archived)
    return archived
