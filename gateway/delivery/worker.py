"""The outbox worker: claim due messages, send them, record the outcome.

A message leaves the outbox only by being acknowledged by the partner (``delivered``) or by a
recorded decision (``dead``, with its reason). A crash between send and record leaves the row
``sending`` with a lease; when the lease expires the row is claimed again and resent with the
same message id, which the partner uses to drop the duplicate.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from gateway.delivery.backoff import next_attempt
from gateway.delivery.push import InboxPusher
from gateway.errors import GatewayError
from gateway.store.leases import release_leases
from gateway.store.schema import utcnow

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = ["DeliveryWorker"]

log = structlog.get_logger(__name__)


class DeliveryWorker:
    """Sends outbox messages in a background thread."""

    def __init__(self, runtime: Runtime, *, name: str | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.delivery
        self.owner = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_cycle_at: float | None = None
        self.pusher = (
            InboxPusher(runtime, self.owner, runtime.session) if runtime.settings.push.url else None
        )

    def start(self) -> None:
        """Start the background thread."""
        self._thread = threading.Thread(target=self._loop, name="delivery", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Claim nothing more; the message being sent may finish (returns at once)."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Let the current message finish for up to ``timeout`` s, then give back every lease.

        Leases are released even when the thread is still stuck in a send: the process is
        about to go, and a row left leased would wait ``lease_seconds`` for any other worker.
        """
        self.request_stop()
        if self._thread:
            self._thread.join(timeout)
        try:
            released = release_leases(self.runtime.store, self.owner)
        except GatewayError as exc:
            log.warning("leases not released; they expire", code=exc.code, error=exc.message)
            return
        if released.outbox or released.push:
            log.info(
                "leases released",
                outbox=released.outbox,
                push=released.push,
                finished=not self.alive,
            )

    def wake(self) -> None:
        """Look at the outbox now instead of after the poll interval."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return bool(self._thread and self._thread.is_alive())

    def _loop(self) -> None:
        import time

        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("delivery cycle failed")
                busy = 0
            self.last_cycle_at = time.monotonic()
            if not busy:
                self._wake.wait(self.settings.poll_interval)
                self._wake.clear()

    def run_once(self) -> int:
        """Claim and process one batch (and one push); returns how many were handled."""
        store = self.runtime.store
        rows = store.outbox.claim_due(
            self.owner, self.settings.batch_size, self.settings.lease_seconds
        )
        for i, row in enumerate(rows):
            if self._stop.is_set() or not self._lease_lasts(row):
                # Give the rest back now rather than let them wait for the lease to expire;
                # sending after our lease ran out could overlap with another worker.
                store.outbox.release([r["id"] for r in rows[i:]], self.owner)
                break
            self.deliver(row)
        pushed = self.pusher.run_once() if self.pusher and not self._stop.is_set() else 0
        return len(rows) + pushed

    def _lease_lasts(self, row: dict[str, Any]) -> bool:
        transport = self.runtime.transports.get(row["partner"])
        connect, operation = (
            transport.timeouts if transport else self.runtime.settings.timeouts(row["partner"])
        )
        worst = timedelta(seconds=connect + operation + 1)
        return bool(utcnow() + worst < row["lease_until"])

    def deliver(self, row: dict[str, Any]) -> None:
        """Send one claimed row and record what happened."""
        store = self.runtime.store
        partner = row["partner"]
        bound = log.bind(message_id=row["message_id"], partner=partner, operation=row["operation"])
        channels = self.runtime.channels
        # A partner on another channel (the calendar: CalDAV) delivers its own way, with the
        # same leases, backoff, dead letters and replay.
        transport = self.runtime.transports.get(partner)
        if transport is not None:
            policy = transport.retry
        else:
            client = channels.client_for(partner)
            header = channels.header_for(
                partner, row["operation"], row["message_id"], row.get("user_id")
            )
            policy = self.runtime.settings.institution(partner).retry_for(
                row["operation"], row["message_type"]
            )
        try:
            if transport is not None:
                ack = transport.deliver(row)
            else:
                ack = client.send(
                    row["operation"],
                    row["payload"],
                    header=header.serialize(),
                    message_id=row["message_id"],
                    # A signed receipt from the institution itself (through E-case too): an
                    # unsigned, altered or untrusted acknowledgement is not a delivery.
                    trust=self.runtime.directory.get(partner).trust,
                    limits=self.runtime.limits,
                )
        except GatewayError as exc:
            when = next_attempt(
                exc,
                attempts_done=row["attempts"] + 1,
                # A replay restarts the clock of max_age.
                created_at=row.get("replayed_at") or row["created_at"],
                now=utcnow(),
                policy=policy,
            )
            store.outbox.mark_failed(
                row, owner=self.owner, code=exc.code, error=exc.message, next_attempt_at=when
            )
            outcome = "retry" if when else "dead"
            self.runtime.metrics.deliveries.labels(partner, row["operation"], outcome).inc()
            if when is None:
                self.runtime.metrics.dead_letters.labels(partner, row["operation"], exc.code).inc()
            bound.warning("delivery failed", code=exc.code, error=exc.message, outcome=outcome)
            return
        if not store.outbox.mark_delivered(row, ack or {}, self.owner):
            bound.warning("delivered, but the lease was taken over meanwhile")
        self.runtime.metrics.deliveries.labels(partner, row["operation"], "delivered").inc()
        bound.info("delivered", attempts=row["attempts"] + 1)
