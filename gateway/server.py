"""Start the gateway (API, SOAP endpoints, delivery worker) and, on request, the simulators."""

from __future__ import annotations

import threading
import time
import weakref

import structlog
import uvicorn

from gateway.api.app import create_app
from gateway.calendar.radicale import RadicaleServer
from gateway.config import Settings
from gateway.delivery import DeliveryWorker
from gateway.eservices.pending import PendingSweeper
from gateway.jobs import JobRunner, Ticker
from gateway.lifecycle import GracefulServer, Shutdown
from gateway.logging import configure_logging
from gateway.opendata.ckansim import simulator_for as ckan_simulator_for
from gateway.runtime import Runtime
from gateway.sim import served_simulators, simulator_app, simulator_url
from gateway.store.anchor import AnchorLoop
from gateway.workers import HttpWorkers

__all__ = [
    "serve",
    "serve_simulator",
    "start_app_thread",
    "start_simulator_thread",
    "stop_app_threads",
]

log = structlog.get_logger(__name__)


def _uvicorn_config(app: object, host: str, port: int) -> uvicorn.Config:
    # log_config=None keeps uvicorn's loggers on our structlog handlers (and their masking).
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=30,
        backlog=2048,
    )


def start_simulator_thread(settings: Settings, partner: str) -> uvicorn.Server:
    """Serve simulator ``partner`` (``ecase``, a direct institution, ``viss``) in a background
    thread; returns once it listens."""
    app, host, port, _ = simulator_app(settings, partner)
    return start_app_thread(app, host, port, partner)


#: The thread serving each server started by :func:`start_app_thread` (for the stop's wait).
_THREADS: weakref.WeakKeyDictionary[uvicorn.Server, threading.Thread] = weakref.WeakKeyDictionary()


def start_app_thread(
    app: object, host: str, port: int, name: str, timeout: float = 30.0
) -> uvicorn.Server:
    """Serve ``app`` on ``host:port`` in a background thread; returns once it listens.

    Stop it with :func:`stop_app_threads`, which waits until it has shut down.
    """
    config = _uvicorn_config(app, host, port)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sim-{name}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError(f"{name} server did not start on {host}:{port}")
    _THREADS[server] = thread
    return server


def stop_app_threads(*servers: uvicorn.Server | None, timeout: float = 10.0) -> None:
    """Ask every server to exit, then wait (together, up to ``timeout`` s) until each has
    shut down: a server still shutting down afterwards would log into whatever runs next in
    the process (a test's captured output, say)."""
    started = [s for s in servers if s is not None]
    for server in started:
        server.should_exit = True
    deadline = time.monotonic() + timeout
    for server in started:
        thread = _THREADS.get(server)
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))


def serve_simulator(settings: Settings, partner: str) -> None:
    """Serve one simulator in the foreground (``plus-gateway sim``)."""
    configure_logging(settings.logging.environment, settings.logging.level)
    app, host, port, url = simulator_app(settings, partner)
    print(f"{partner} simulator on {url}?wsdl")
    uvicorn.Server(_uvicorn_config(app, host, port)).run()


def _start_calendar_server(settings: Settings) -> RadicaleServer | None:
    """Radicale, the embedded CalDAV counterpart, when the calendar points at it."""
    cfg = settings.calendar
    server = cfg.server
    if not cfg.enabled or cfg.url.rstrip("/") != f"http://{server.host}:{server.port}":
        return None
    radicale = RadicaleServer(
        host=server.host,
        port=server.port,
        storage=server.storage,
        username=cfg.username,
        password=cfg.password.get_secret_value(),
    ).start()
    print(f"  calendar (CalDAV, Radicale): {radicale.url}{cfg.home}")
    return radicale


def serve(settings: Settings, *, with_simulators: bool = False) -> None:
    """Run the gateway until interrupted."""
    configure_logging(settings.logging.environment, settings.logging.level)
    runtime = Runtime(settings)
    sims = []
    if with_simulators:
        # The E-case platform (hosting every E-case institution), each direct institution's
        # own endpoint, and VISS.
        for name in served_simulators(settings):
            sims.append(start_simulator_thread(settings, name))
            print(f"  {name} simulator: {simulator_url(settings, name)}?wsdl")
        # The open data portal (CKAN), where the open data jobs publish.
        ckan_app, ckan_host, ckan_port = ckan_simulator_for(settings)
        sims.append(start_app_thread(ckan_app, ckan_host, ckan_port, "ckan"))
        print(f"  ckan simulator: http://{ckan_host}:{ckan_port}/api/3/action/")
    radicale = _start_calendar_server(settings) if with_simulators else None
    worker = DeliveryWorker(runtime)
    if settings.delivery.enabled:
        worker.start()
    anchors = AnchorLoop(runtime.store, settings)
    anchors.start()
    # E-service requests PLUS has not answered in time: the portal is told they wait.
    pending = PendingSweeper(runtime, worker)
    pending.start()
    # Scheduled jobs (schedules/*.yaml): APScheduler ticks, the runs table decides who runs.
    # The calendar's publishing and booking intake, the facade's archiving and the polls of
    # poll-only institutions are jobs too (they were loops here): one instance per slot.
    jobs = Ticker(
        JobRunner(
            settings, runtime.store, metrics_registry=runtime.metrics.registry, runtime=runtime
        )
    )
    if settings.jobs.enabled:
        if with_simulators:
            # make run: synthetic extracts first, so the open data jobs publish at start.
            threading.Thread(
                target=_seed_then_tick,
                args=(settings, runtime, jobs),
                name="demo-seed",
                daemon=True,
            ).start()
        else:
            jobs.start()
    app = create_app(runtime, worker)
    app.state.jobs = jobs.runner
    base = f"http://{settings.api.host}:{settings.api.port}"
    print(f"plus-gateway on {base}  (API docs: {base}/docs, OpenAPI: {base}/openapi.json)")
    for partner in runtime.wsdl_documents:
        print(f"  SOAP endpoint for {partner.upper()}: {base}/soap/{partner}?wsdl")
    if runtime.facade is not None:
        print(f"  volunteer facade: {base}/v1/volunteering/opportunities (public list)")
        print(
            "    a development token: plus-gateway facade token --role volunteer "
            "--subject demo-volunteer   (roles: volunteer, organisation_user "
            "--organisation NUMBER, policy_analyst); `make demo-volunteering` walks it through"
        )
    # SIGTERM/SIGINT: bounded graceful stop, exit 0 (gateway/lifecycle.py).
    shutdown = Shutdown(settings.delivery.shutdown_timeout)

    config = _uvicorn_config(app, settings.api.host, settings.api.port)
    config.timeout_graceful_shutdown = max(1, int(settings.delivery.shutdown_timeout))
    # api.workers > 1: the socket is bound here and shared with HTTP-only processes.
    sockets = [config.bind_socket()] if settings.api.workers > 1 else None
    http_workers = (
        HttpWorkers(settings, sockets[0], settings.api.workers - 1).start() if sockets else None
    )

    def on_signal(sig: int) -> None:
        shutdown.begin(sig)
        if http_workers is not None:
            http_workers.request_stop()
        worker.request_stop()
        jobs.runner.request_stop()

    try:
        GracefulServer(config, on_signal).run(sockets=sockets)
    finally:
        pending.stop(min(5.0, shutdown.left()))
        if http_workers is not None:
            http_workers.join(shutdown.left())
        shutdown.finish(runtime, worker, anchors, sims, jobs=jobs)
        if radicale is not None:
            radicale.stop()


def _seed_then_tick(settings: Settings, runtime: Runtime, jobs: Ticker) -> None:
    from gateway.opendata.demo import seed_synthetic_extracts

    try:
        seed_synthetic_extracts(settings, runtime.store)
    except Exception:
        log.exception("could not store the synthetic extracts")
    jobs.start()
