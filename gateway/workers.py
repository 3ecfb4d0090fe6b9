"""Accept beyond one core: extra HTTP processes beside ``serve`` (``api.workers``, issue 14).

One Python process accepts on one core (the GIL): parsing, validating, mapping, signing or
verifying and committing a message take about 5-9 ms of CPU each. With ``api.workers: N``
``serve`` binds the listening socket itself and starts N-1 *HTTP workers*, spawned processes
that accept on the same socket (the kernel hands each connection to one of them) and run the
same app over the same store. Only the primary process runs the delivery worker, the journal
anchors and the scheduled jobs (the calendar's sync among them); a worker only accepts (a message it
accepts is durable in the store before its 202 or receipt, and the primary's delivery worker
picks it up at its next poll).

Stopping: the primary forwards SIGTERM to its workers, which stop intake and finish the
requests in progress like the primary does (:class:`gateway.lifecycle.GracefulServer`), within
the same bound. A worker also stops when the primary disappears without stopping it (SIGKILL,
crash): it watches a pipe whose other end only the primary holds, so no orphan keeps
accepting messages that no delivery worker would send. A worker that dies is started again.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from gateway.config import Settings

__all__ = ["HttpWorkers"]

log = structlog.get_logger(__name__)

# Connections (the watch pipe) and sockets travel to spawned children by descriptor passing.
multiprocessing.allow_connection_pickling()
_SPAWN = multiprocessing.get_context("spawn")

#: Restarts of dead workers allowed per minute (a worker that dies at start would loop).
_RESTARTS_PER_MINUTE = 5


class HttpWorkers:
    """The primary's handle on its extra HTTP processes."""

    def __init__(self, settings: Settings, sock: socket.socket, count: int) -> None:
        self._settings = settings
        self._sock = sock
        self._count = count
        self._procs: list[tuple[SpawnProcess, Connection]] = []
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self._restarts: list[float] = []

    def start(self) -> HttpWorkers:
        """Start the workers; returns without waiting for them to listen."""
        for _ in range(self._count):
            self._procs.append(self._spawn())
        self._monitor = threading.Thread(target=self._watch, name="http-workers", daemon=True)
        self._monitor.start()
        return self

    def _spawn(self) -> tuple[SpawnProcess, Connection]:
        # The child gets the reading end, only the primary holds the writing end (never
        # written to): when the primary dies, however, the child reads EOF.
        reader, writer = _SPAWN.Pipe(duplex=False)
        proc = _SPAWN.Process(
            target=_worker_main,
            args=(self._settings, self._sock, reader),
            name="plus-gateway-http",
            daemon=False,
        )
        proc.start()
        reader.close()
        log.info("http worker started", pid=proc.pid)
        return proc, writer

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for i, (proc, pipe) in enumerate(self._procs):
                if proc.is_alive() or self._stopping.is_set():
                    continue
                log.error("http worker died; starting another", pid=proc.pid, code=proc.exitcode)
                pipe.close()
                now = time.monotonic()
                self._restarts = [t for t in self._restarts if now - t < 60] + [now]
                if len(self._restarts) > _RESTARTS_PER_MINUTE:
                    log.error("http workers keep dying; not restarting them")
                    self._stopping.set()
                    return
                self._procs[i] = self._spawn()

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [p.pid for p, _ in self._procs if p.pid is not None]

    def request_stop(self) -> None:
        """Forward the graceful stop (SIGTERM) to every worker; returns at once."""
        self._stopping.set()
        for proc, _ in self._procs:
            if proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the workers to end, then kill what remains
        (a request still running past the bound loses its connection, as in the primary)."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        for proc, pipe in self._procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.error("http worker did not stop in time; killing it", pid=proc.pid)
                proc.kill()
                proc.join(5)
            pipe.close()


def _worker_main(settings: Settings, sock: socket.socket, parent: Connection) -> None:
    """One HTTP worker: the app over the store, no delivery, jobs or anchors."""
    from gateway.api.app import create_app
    from gateway.lifecycle import GracefulServer
    from gateway.logging import configure_logging
    from gateway.runtime import Runtime
    from gateway.server import _uvicorn_config

    configure_logging(settings.logging.environment, settings.logging.level)
    servers: list[GracefulServer] = []

    def orphaned() -> None:
        with contextlib.suppress(EOFError, OSError):
            parent.recv()
        if not servers:  # still loading: nothing accepted yet
            os._exit(0)
        if not servers[0].should_exit:
            log.error("primary process gone; http worker stopping")
            servers[0].should_exit = True

    # Watched from the start: loading the runtime takes seconds, the primary may die meanwhile.
    threading.Thread(target=orphaned, name="watch-primary", daemon=True).start()
    # The primary has migrated the store before binding the socket.
    runtime = Runtime(settings, run_migrations=False)
    app = create_app(runtime, None)
    config = _uvicorn_config(app, settings.api.host, settings.api.port)
    config.timeout_graceful_shutdown = max(1, int(settings.delivery.shutdown_timeout))
    servers.append(GracefulServer(config, lambda sig: None))
    try:
        servers[0].run(sockets=[sock])
    finally:
        runtime.close()
