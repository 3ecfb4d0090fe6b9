"""Live servers on loopback: the gateway and the simulators as real HTTP servers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.api import create_app
from gateway.config import Settings
from gateway.delivery import DeliveryWorker
from gateway.runtime import Runtime
from gateway.server import start_app_thread, stop_app_threads
from gateway.sim import (
    EcasePlatformSim,
    InstitutionSim,
    create_institution_app,
    create_platform_app,
)
from tests.conftest import build_settings, seed_answered_requests


def serve_in_thread(app: Any, port: int) -> uvicorn.Server:
    """Start uvicorn on 127.0.0.1:port in a daemon thread and wait until it listens (stop it
    with :func:`gateway.server.stop_app_threads`, which waits for its shutdown)."""
    return start_app_thread(app, "127.0.0.1", port, f"test-{port}")


@dataclass
class Live:
    """A running gateway with the E-case platform simulator and the direct EM simulator."""

    settings: Settings
    runtime: Runtime
    worker: DeliveryWorker
    platform: EcasePlatformSim
    em: InstitutionSim
    gateway: str
    sim_url: str
    em_url: str
    http: httpx.Client
    #: The other direct institutions' simulators (VRAA, ...), each on its own port.
    direct: dict[str, InstitutionSim] = field(default_factory=dict)

    def sim(self, institution: str) -> InstitutionSim:
        """The simulated institution ``institution`` (behind the platform, or direct)."""
        if institution in self.direct:
            return self.direct[institution]
        return self.em if institution == self.em.name else self.platform.institution(institution)

    def wait_for(self, message_id: str, status: str = "delivered", timeout: float = 15) -> dict:
        """Poll GET /v1/messages/{id} until it reaches ``status``."""
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            body = self.http.get(f"{self.gateway}/v1/messages/{message_id}").json()
            if body.get("status") == status:
                return body
            time.sleep(0.05)
        raise AssertionError(f"{message_id} did not reach {status}: {body}")


@contextmanager
def running(settings: Settings, *, sim: bool = True, seed: bool = True) -> Iterator[Live]:
    """Gateway (+ worker) and, unless ``sim`` is False, the simulators, torn down after.

    ``seed`` puts in the inbox the requests the outbound samples answer (see
    :func:`tests.conftest.seed_answered_requests`); tests of the inbox itself turn it off.
    """
    platform = EcasePlatformSim(settings)
    em = InstitutionSim(settings, "em", platform.contract)
    direct = {
        name: InstitutionSim(settings, name, platform.contract)
        for name, institution in settings.institutions.items()
        if institution.channel == "direct" and name != "em" and name in settings.simulators
    }
    servers = []
    if sim:
        servers.append(
            serve_in_thread(create_platform_app(platform), settings.simulators["ecase"].port)
        )
        servers.append(serve_in_thread(create_institution_app(em), settings.simulators["em"].port))
        for name, other in direct.items():
            servers.append(
                serve_in_thread(create_institution_app(other), settings.simulators[name].port)
            )
    runtime = Runtime(settings)
    # The requests the outbound samples answer, so that sending a sample routes (see there).
    if seed:
        seed_answered_requests(settings, runtime.store, runtime.mappings)
    worker = DeliveryWorker(runtime)
    worker.start()
    gw_server = serve_in_thread(create_app(runtime, worker), settings.api.port)
    http = httpx.Client(timeout=20)
    try:
        yield Live(
            settings=settings,
            runtime=runtime,
            worker=worker,
            platform=platform,
            em=em,
            gateway=f"http://127.0.0.1:{settings.api.port}",
            sim_url=f"http://127.0.0.1:{settings.simulators['ecase'].port}",
            em_url=f"http://127.0.0.1:{settings.simulators['em'].port}",
            http=http,
            direct=direct,
        )
    finally:
        http.close()
        worker.stop()
        stop_app_threads(gw_server)
        for server in servers:
            stop_app_threads(server)
        runtime.close()


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    """Gateway + simulators on free loopback ports, torn down after the test."""
    with running(settings) as live:
        yield live


@pytest.fixture(scope="module")
def shared_live(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[Live]:
    """One gateway + simulators for a whole module, for tests that only add to the store.

    Such tests compare counts before and after instead of expecting an empty database.
    """
    settings = build_settings(tmp_path_factory.mktemp("shared"), keys_dir)
    with running(settings) as live:
        yield live
