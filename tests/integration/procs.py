"""Gateway and simulator as real subprocesses (``python -m gateway``), for crash tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import ROOT, SAMPLES, free_port, seed_answered_requests

SAMPLE = (SAMPLES / "execution_notification/valid.json").read_text("utf-8")


def write_config(
    directory: Path, keys: Path, store_url: str, *, sim_port: int, **extra: Any
) -> Path:
    """A config.yaml derived from the project's, with temp keys, DB and free ports.

    ``sim_port`` is the E-case platform simulator's; every E-case institution is reached
    through it. The direct one (EM) points at a port nobody listens on: unused here.
    """
    data = yaml.safe_load((ROOT / "config.yaml").read_text("utf-8"))
    api_port = free_port()
    data["paths"] = {
        "xsd": str(ROOT / "xsd"),
        "wsdl": str(ROOT / "wsdl"),
        "mappings": str(ROOT / "mappings"),
        "keys": str(keys),
        "samples": str(SAMPLES),
    }
    data["api"] = {"host": "127.0.0.1", "port": api_port}
    data["store"] = {"url": store_url}
    data["signing"] = {
        "key": str(keys / "gateway-key.pem"),
        "certificate": str(keys / "gateway-cert.pem"),
    }
    data["ecase"].update(
        wsdl=str(ROOT / "wsdl/ecase.wsdl"),
        endpoint=f"http://127.0.0.1:{sim_port}/soap/ecase",
        connect_timeout=0.5,
        operation_timeout=2,
    )
    for name, institution in data["institutions"].items():
        institution.update(
            trust={"certificates": [str(keys / f"{name}-sim-cert.pem")]},
            retry={"base_delay": 0.05, "max_delay": 0.3, "max_attempts": 1000},
        )
    data["institutions"]["em"]["endpoint"] = f"http://127.0.0.1:{free_port()}/soap/em"
    data["delivery"] = {"poll_interval": 0.05, "batch_size": 10, "lease_seconds": 4}
    data["simulators"] = {
        "ecase": {"host": "127.0.0.1", "port": sim_port},
        **{
            name: {
                "key": str(keys / f"{name}-sim-key.pem"),
                "certificate": str(keys / f"{name}-sim-cert.pem"),
                "trust": {"certificates": [str(keys / "gateway-cert.pem")]},
                "gateway_url": f"http://127.0.0.1:{api_port}",
            }
            for name in data["institutions"]
        },
    }
    data.pop("registries", None)
    # The E-case platform's identity certificate (e-service assertions), from the same keys;
    # the form catalogue from the project (a relative path would resolve next to this file).
    eservices = data.get("eservices", {})
    data["eservices"] = {
        **eservices,
        "forms": str(ROOT / eservices.get("forms", "mappings/eservices/forms")),
        "identity_trust": {"certificates": [str(keys / "identity-sim-cert.pem")]},
    }
    data["logging"] = {"environment": "production", "level": "WARNING"}
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value}
    path = directory / f"config-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    return path


def seed(config: Path) -> None:
    """Store the requests the outbound samples answer in the config's database, before a
    gateway process starts, so that the notifications the tests send can be routed."""
    from gateway.config import load_settings
    from gateway.mapping import MappingRegistry
    from gateway.store import Store, create_store_engine, migrate

    settings = load_settings(config)
    engine = create_store_engine(settings.store.url)
    try:
        migrate(engine)
        mappings = MappingRegistry.load(settings.paths.mappings)
        seed_answered_requests(settings, Store(engine), mappings)
    finally:
        engine.dispose()


@dataclass
class Proc:
    """One ``python -m gateway`` process with its log file."""

    config: Path
    args: list[str]
    url: str
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    def start(self, timeout: float = 90) -> None:
        """Start and wait until /health answers (generous: a loaded CI machine is slow)."""
        self.starts += 1
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(self.config), *self.args],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.args} exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.args} did not start: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        """Terminate gracefully (or kill after a while)."""
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def gateway_proc(config: Path, tmp: Path, name: str = "gateway") -> Proc:
    """The gateway of ``config`` (not started), its database seeded (see :func:`seed`)."""
    seed(config)
    port = yaml.safe_load(config.read_text("utf-8"))["api"]["port"]
    return Proc(config, ["serve"], f"http://127.0.0.1:{port}", tmp / f"{name}.log")


def sim_proc(config: Path, tmp: Path) -> Proc:
    """The E-case platform simulator of ``config`` (not started)."""
    port = yaml.safe_load(config.read_text("utf-8"))["simulators"]["ecase"]["port"]
    return Proc(config, ["sim", "ecase"], f"http://127.0.0.1:{port}", tmp / "sim.log")


@contextmanager
def running_sim(tmp: Path, keys: Path) -> Iterator[tuple[Proc, int]]:
    """The E-case platform simulator as a started process on a free port, stopped after."""
    port = free_port()
    config = write_config(tmp, keys, "sqlite:///unused.db", sim_port=port)
    proc = sim_proc(config, tmp)
    proc.start()
    try:
        yield proc, port
    finally:
        proc.stop()


def post_notification(client: httpx.Client, gateway: str, case: str) -> str | None:
    """POST one execution notification for ``case``; its id on 202, None if refused."""
    body = SAMPLE.replace("K30-0412-26/14", case)
    try:
        r = client.post(
            f"{gateway}/v1/outbound/execution_notification",
            content=body,
            headers={"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
        )
    except httpx.HTTPError:
        return None
    return str(r.json()["id"]) if r.status_code == 202 else None


def received(sim: Proc) -> dict[str, Any]:
    """What simulated TIS got through the platform: messages in arrival order, duplicates."""
    data: dict[str, Any] = httpx.get(f"{sim.url}/sim/ecase/received/tis", timeout=10).json()
    return data


def wait_received(sim: Proc, ids: set[str], timeout: float) -> dict[str, Any]:
    """Poll the simulator until it has every id in ``ids``."""
    deadline = time.monotonic() + timeout
    snap = received(sim)
    while time.monotonic() < deadline:
        snap = received(sim)
        if ids <= {r["message_id"] for r in snap["received"]}:
            return snap
        time.sleep(0.2)
    missing = ids - {r["message_id"] for r in snap["received"]}
    raise AssertionError(f"{len(missing)} accepted message(s) never arrived: {sorted(missing)[:5]}")


def assert_case_order(snap: dict[str, Any], accepted: list[tuple[str, str]]) -> None:
    """Per case, the accepted ids arrived in the order they were accepted."""
    order = {r["message_id"]: i for i, r in enumerate(snap["received"])}
    for case in {c for c, _ in accepted}:
        mine = [m for c, m in accepted if c == case]
        positions = [order[m] for m in mine]
        assert positions == sorted(positions), f"case {case} out of order"
