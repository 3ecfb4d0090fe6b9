"""Telling the portal that a request waits for PLUS (ES-07: the e-services run round the clock).

A request PLUS has not answered within ``eservices.pending_after`` seconds (PLUS is down, or
busy) gets one ``eservice_pending`` message to the portal, through the outbound route like any
other message (signed, durable, retried). Its Idempotency-Key is ``eservice-pending:<request>``,
so a sweep that dies between sending and marking, or two instances sweeping at once, send it
once. The request itself stays in the inbox and in ``eservice_requests`` until PLUS answers.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from gateway.errors import GatewayError
from gateway.pipeline.exchange import Exchange
from gateway.store.schema import utcnow

if TYPE_CHECKING:
    from gateway.delivery import DeliveryWorker
    from gateway.runtime import Runtime

__all__ = ["PendingSweeper"]

log = structlog.get_logger(__name__)

#: The reason the portal is given (PLUS has not answered in time).
REASON = "PLUS_NOT_ANSWERED"


class PendingSweeper:
    """A thread that sends ``eservice_pending`` for overdue requests (:meth:`sweep` once)."""

    def __init__(self, runtime: Runtime, worker: DeliveryWorker | None = None) -> None:
        self.runtime = runtime
        self.worker = worker
        cfg = runtime.settings.eservices
        self.after = timedelta(seconds=cfg.pending_after)
        self.interval = cfg.sweep_interval
        self.mapping = runtime.mappings.get("eservice_pending")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> int:
        """Tell the portal about every overdue request; returns how many were told."""
        store = self.runtime.store.eservices
        told = 0
        for row in store.overdue(utcnow() - self.after):
            exchange = Exchange(
                direction="out",
                partner="",
                mapping=self.mapping,
                canonical={
                    "request_id": row.request_id,
                    "eservice": row.eservice,
                    "reason": REASON,
                    "addressee": self.runtime.eservices.portal,
                },
                idempotency_key=f"eservice-pending:{row.request_id}",
                correlation_id=row.request_id,
            )
            try:
                exchange = self.runtime.routes.outbound(exchange)
            except GatewayError as exc:
                log.warning("e-service pending not sent", request_id=row.request_id, code=exc.code)
                continue
            store.mark_pending_sent(row.request_id, exchange.message_id)
            told += 1
        if told:
            log.info("e-service requests pending", told=told)
            if self.worker is not None:
                self.worker.wake()
        return told

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep()
            except Exception:
                log.exception("e-service pending sweep failed")

    def start(self) -> None:
        """Sweep every ``eservices.sweep_interval`` seconds in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="eservices-pending", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sweeping (waits up to ``timeout`` for a sweep in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
