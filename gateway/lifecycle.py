"""Graceful stop of ``plus-gateway serve`` on SIGTERM (systemd, docker stop, Kubernetes) and SIGINT.

On the first signal, within ``delivery.shutdown_timeout`` seconds:

1. intake stops: uvicorn closes the listening socket (new connections are refused), closes idle
   keep-alive connections and lets requests in progress finish;
2. at the same moment the delivery worker stops claiming; the message it is sending may finish
   while requests drain;
3. every lease this instance holds (outbox, push, job runs) is given back, including that of a
   send still hanging when the time is up: the row is due again at once for any instance (the
   partner drops the resend by its message id), instead of waiting out the lease;
4. a last journal anchor is written if there is time left;
5. the SQLite WAL is checkpointed and truncated, and the engine disposed;

then ``serve`` returns and the process exits 0. A second SIGINT skips waiting for open
connections. If the steps above hang anyway (a stuck disk), a watchdog ends the process with
status 1 a few seconds after the bound.

uvicorn alone is not enough: after its own shutdown it restores the default handlers and
raises the signal again, which killed the process before any cleanup after ``Server.run()``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Generator, Sequence
from types import FrameType
from typing import TYPE_CHECKING

import structlog
import uvicorn

from gateway.errors import GatewayError
from gateway.store.db import checkpoint

if TYPE_CHECKING:
    from gateway.delivery import DeliveryWorker
    from gateway.jobs import Ticker
    from gateway.runtime import Runtime
    from gateway.store.anchor import AnchorLoop

__all__ = ["GracefulServer", "Shutdown"]

log = structlog.get_logger(__name__)

#: Seconds past the bound after which the watchdog ends a stop that hangs.
WATCHDOG_GRACE = 5.0


class GracefulServer(uvicorn.Server):
    """A uvicorn server that handles SIGTERM and SIGINT itself and never re-raises them."""

    def __init__(self, config: uvicorn.Config, on_signal: Callable[[int], None]) -> None:
        super().__init__(config)
        self._on_signal = on_signal

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install the handlers; unlike uvicorn's, keep them after serving and re-raise nothing.

        Keeping them means a second signal during the cleanup after ``run()`` cannot kill the
        process halfway (the cleanup is bounded and watched instead).
        """
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self.handle_exit)
        yield

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """uvicorn's handling (a second SIGINT forces), plus our stop hook on the first."""
        first = not self.should_exit
        super().handle_exit(sig, frame)
        self._captured_signals.clear()
        if first:
            self._on_signal(sig)


class Shutdown:
    """The bounded stop sequence of ``serve``."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.signal: int | None = None
        self._started: float | None = None
        self._watchdog: threading.Timer | None = None

    def begin(self, sig: int | None = None) -> None:
        """Start the clock (at the signal) and the watchdog; idempotent."""
        if self._started is not None:
            return
        self._started = time.monotonic()
        self.signal = sig
        self._watchdog = threading.Timer(self.timeout + WATCHDOG_GRACE, self._force_exit)
        self._watchdog.daemon = True
        self._watchdog.start()
        log.info(
            "stopping",
            signal=signal.Signals(sig).name if sig else None,
            timeout_seconds=self.timeout,
        )

    def left(self) -> float:
        """Seconds left of the bound (never negative)."""
        if self._started is None:
            return self.timeout
        return max(0.0, self._started + self.timeout - time.monotonic())

    def _force_exit(self) -> None:
        log.error("graceful stop exceeded its bound; exiting", timeout_seconds=self.timeout)
        logging_flush()
        os._exit(1)

    def finish(
        self,
        runtime: Runtime,
        worker: DeliveryWorker | None,
        anchors: AnchorLoop | None = None,
        servers: Sequence[uvicorn.Server] = (),
        *,
        jobs: Ticker | None = None,
    ) -> None:
        """Steps 2-5 of the module docstring, each with the time that is left."""
        self.begin(self.signal)
        # A send that hangs must not eat the time of the steps after it (they are quick, but
        # the last anchor needs its sink to answer).
        reserve = min(2.0, self.timeout * 0.2)
        if worker is not None:
            # Joins the thread for what is left, then gives back every lease it holds.
            worker.stop(max(0.0, self.left() - reserve))
        if jobs is not None:
            # Job runs in progress stop at their next check; what is still held is given
            # back (due again at once on any instance, like outbox leases).
            jobs.stop(max(0.0, min(self.left() - reserve, self.timeout / 2)))
        if anchors is not None:
            anchors.stop(self.left())
        for server in servers:
            server.should_exit = True
        try:
            checkpoint(runtime.engine)
        except GatewayError as exc:
            log.warning("WAL checkpoint incomplete", code=exc.code, error=exc.message)
        except Exception:
            log.exception("WAL checkpoint failed")
        runtime.close()
        if self._watchdog is not None:
            self._watchdog.cancel()
        log.info("stopped", seconds=round(self.timeout - self.left(), 3))


def logging_flush() -> None:
    """Flush every logging handler (before ``os._exit``, which skips that)."""
    import logging

    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
