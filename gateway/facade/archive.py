"""Archiving postings after their application deadline (VOL-21).

:func:`archive_expired` is the whole job: one idempotent UPDATE (published and past the
deadline -> archived), safe to run on several instances at once and as often as wanted. The
jobs area (APScheduler, schedules/*.yaml) is being built in parallel; until it lands,
:class:`ArchiveLoop` runs the function every ``facade.archive_interval`` seconds in ``serve``.
Moving it to a scheduled job means registering :func:`archive_expired` there and dropping the
loop: nothing else changes. The public list never shows a posting past its deadline anyway
(the deadline is part of its query), so the loop's interval only decides when the status
column catches up.
"""

from __future__ import annotations

import threading
from datetime import datetime

import structlog

from gateway.errors import GatewayError
from gateway.store import Store
from gateway.store.facade.listings import Listings

__all__ = ["ArchiveLoop", "archive_expired"]

log = structlog.get_logger(__name__)


def archive_expired(store: Store, now: datetime | None = None) -> int:
    """Archive every posting whose deadline has passed; returns how many were archived."""
    archived = Listings(store.db).archive_expired(now)
    if archived:
        log.info("volunteer postings archived", count=archived)
    return archived


class ArchiveLoop:
    """Runs :func:`archive_expired` at start and then every ``interval`` seconds."""

    def __init__(self, store: Store, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (a daemon: it holds no state worth finishing)."""
        self._thread = threading.Thread(target=self._run, name="facade-archive", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                archive_expired(self.store)
            except GatewayError as exc:
                # The store may be briefly unavailable; the next round catches up.
                log.warning("archiving failed", code=exc.code, error=exc.message)
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
