"""Helpers for the benchmark: a throw-away environment, machine facts, statistics, CPU time.

Nothing here touches ``var/``: every run gets its own temp directory with its own keys, its
own config file (absolute paths, free loopback ports) and its own SQLite databases.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from gateway.config import Settings, deep_merge, load_settings
from gateway.harness.environment import free_port
from gateway.signing.keys import init_keys

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples"
RESULTS = Path(__file__).resolve().parent / "results"
#: The institutions config.yaml configures; each gets a simulator with its own demo keys.
_INSTITUTIONS_CONFIG: dict[str, Any] = yaml.safe_load((ROOT / "config.yaml").read_text("utf-8"))[
    "institutions"
]
INSTITUTIONS = tuple(_INSTITUTIONS_CONFIG)
#: The institutions on the direct channel in config.yaml (the others go through E-case).
DIRECT = tuple(n for n, i in _INSTITUTIONS_CONFIG.items() if i.get("channel") == "direct")


@dataclass
class BenchEnv:
    """Where one benchmark run lives."""

    tmp: Path
    config: Path
    settings: Settings

    def settings_with_db(self, name: str) -> Settings:
        """The same settings over another SQLite file in the temp directory."""
        return load_settings(self.config, store={"url": f"sqlite:///{self.tmp / name}"})

    def variant(self, name: str, **overrides: Any) -> tuple[Path, Settings]:
        """A config file ``<tmp>/<name>.yaml``: this run's config with ``overrides`` merged."""
        settings = load_settings(self.config, **overrides)
        path = self.tmp / f"{name}.yaml"
        path.write_text(
            yaml.safe_dump(settings.model_dump(mode="json"), allow_unicode=True), "utf-8"
        )
        return path, settings


def make_env(tmp: Path, **overrides: Any) -> BenchEnv:
    """Keys, a config file and a database path under ``tmp``; the gateway's worker is off.

    The config is the repository's ``config.yaml`` with every path made absolute, everything
    it keeps under ``var/`` (keys, store, anchors, ...) moved into ``tmp``, the API, the
    E-case platform simulator, the direct institutions' simulators and VISS on free ports,
    every institution's simulator signing with its own temp key, delivery disabled (so the
    benchmark measures acceptance alone) and production (JSON line) logging. ``overrides``
    are merged over all that. The keys are made by the project's own ``keys init`` for this
    config (so every demo key it knows of exists), plus the ones named here.
    """
    keys = tmp / "keys"
    # Every other demo pair the config needs (the volunteer facade's seal and token issuer,
    # ...) comes from the project's own ``keys init`` below.
    init_keys(keys, ["gateway", *(f"{i}-sim" for i in INSTITUTIONS), "viss-sim", "identity-sim"])
    api_port, ecase_port, viss_port = free_port(), free_port(), free_port()
    direct_ports = {name: free_port() for name in DIRECT}
    gateway_url = f"http://127.0.0.1:{api_port}"
    institutions: dict[str, Any] = {
        name: {"trust": {"certificates": [str(keys / f"{name}-sim-cert.pem")]}}
        for name in INSTITUTIONS
    }
    simulators: dict[str, Any] = {
        name: {
            "key": str(keys / f"{name}-sim-key.pem"),
            "certificate": str(keys / f"{name}-sim-cert.pem"),
            "trust": {"certificates": [str(keys / "gateway-cert.pem")]},
            "gateway_url": gateway_url,
        }
        for name in INSTITUTIONS
    }
    for name, port in direct_ports.items():
        institutions[name]["endpoint"] = f"http://127.0.0.1:{port}/soap/{name}"
        simulators[name]["port"] = port
    simulators["ecase"] = {"host": "127.0.0.1", "port": ecase_port}
    # The E-case platform's identity key (e-service identity assertions), made below.
    simulators["identity"] = {
        "key": str(keys / "identity-sim-key.pem"),
        "certificate": str(keys / "identity-sim-cert.pem"),
    }
    simulators["viss"] = {
        "port": viss_port,
        "key": str(keys / "viss-sim-key.pem"),
        "certificate": str(keys / "viss-sim-cert.pem"),
        "trust": {"certificates": [str(keys / "gateway-cert.pem")]},
    }
    base: dict[str, Any] = {
        "instance_name": "plus-gateway-bench",
        "paths": {"keys": str(keys)},
        "api": {"host": "127.0.0.1", "port": api_port},
        "store": {"url": f"sqlite:///{tmp / 'gateway.db'}"},
        "signing": {
            "key": str(keys / "gateway-key.pem"),
            "certificate": str(keys / "gateway-cert.pem"),
        },
        "ecase": {"endpoint": f"http://127.0.0.1:{ecase_port}/soap/ecase"},
        "institutions": institutions,
        "delivery": {"enabled": False},
        "simulators": simulators,
        "eservices": {"identity_trust": {"certificates": [str(keys / "identity-sim-cert.pem")]}},
        "registries": {
            "endpoint": f"http://127.0.0.1:{viss_port}/soap/viss",
            "trust": {"certificates": [str(keys / "viss-sim-cert.pem")]},
        },
        "classifiers": {"service_url": f"http://127.0.0.1:{ecase_port}/classifiers"},
        # Checkpoints next to the temp database, never in the project's var/anchors.
        "journal": {"anchor_path": str(tmp / "anchors")},
        "logging": {"environment": "production", "level": "INFO"},
    }
    # load_settings resolves every relative path against the repository; dumping the result
    # gives a config file that works from any directory.
    resolved = load_settings(ROOT / "config.yaml", **deep_merge(base, overrides))
    ours = {api_port, ecase_port, viss_port, *direct_ports.values()}
    ours |= _ports(overrides)
    data = _isolated(resolved.model_dump(mode="json"), tmp, ours, {})
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    _project_keys(config)
    return BenchEnv(tmp=tmp, config=config, settings=load_settings(config))


_LOOPBACK = re.compile(r"^(https?://(?:127\.0\.0\.1|localhost)):(\d+)")


def _ports(value: Any) -> set[int]:
    """Loopback ports named in ``value`` (URLs and ``port`` keys), to leave alone."""
    found: set[int] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "port" and isinstance(v, int):
                found.add(v)
            found |= _ports(v)
    elif isinstance(value, list | tuple):
        for v in value:
            found |= _ports(v)
    elif isinstance(value, str) and (m := _LOOPBACK.match(value)):
        found.add(int(m.group(2)))
    return found


def _isolated(value: Any, tmp: Path, ours: set[int], dead: dict[int, int]) -> Any:
    """The resolved config with nothing shared with the rest of the machine: every path under
    the repository's ``var/`` (a default of some section, too) moved under ``tmp``, and every
    loopback URL on a port this run did not choose (a default such as the calendar's CalDAV
    server or the open data portal, which a developer's ``make run`` may be serving) sent to a
    free port nobody listens on."""
    if isinstance(value, dict):
        return {k: _isolated(v, tmp, ours, dead) for k, v in value.items()}
    if isinstance(value, list):
        return [_isolated(v, tmp, ours, dead) for v in value]
    if not isinstance(value, str):
        return value
    var = f"{ROOT / 'var'}/"
    if var in value:
        return value.replace(var, f"{tmp / 'var'}/")
    m = _LOOPBACK.match(value)
    if m and int(m.group(2)) not in ours:
        port = dead.setdefault(int(m.group(2)), free_port())
        return f"{m.group(1)}:{port}{value[m.end() :]}"
    return value


def _project_keys(config: Path) -> None:
    """Every demo key pair ``plus-gateway keys init`` makes for ``config`` (existing kept)."""
    import contextlib
    import io

    from gateway.cli import main as cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = cli(["--config", str(config), "keys", "init"])
    if status != 0:
        raise RuntimeError(f"keys init failed for {config}: {out.getvalue()}")


# -- messages --------------------------------------------------------------------------------


def soap_headers(namespace: str, operation: str) -> dict[str, str]:
    """HTTP headers of an inbound SOAP 1.1 request (SOAPAction as ecase.wsdl declares it:
    the messages' namespace / the operation)."""
    return {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": f'"{namespace}/{operation}"',
    }


def decision_envelope(sim: Any, body: bytes, decision_type: str = "court_ruling") -> bytes:
    """The decision an execution notification ``body`` answers (its ``decision_message_id``),
    signed by the simulated institution ``sim`` with that MessageId, as a SOAP request with
    header blocks. Reply routing needs it in the inbox before the notification is sent."""
    from gateway.soap.envelope import build_envelope

    decision = json.loads(body)["decision_message_id"]
    sample = json.loads((SAMPLES / decision_type / "valid.json").read_text("utf-8"))
    sample["message_id"] = decision
    _, _, payload, header = sim.build(decision_type, canonical=sample, keep_id=True)
    return build_envelope(payload, header.serialize())


# -- processes -------------------------------------------------------------------------------


@dataclass
class Proc:
    """One ``python -m gateway --config <config> <args>`` process with its log file.

    Started and stopped by the benchmark only (by its own Popen handle).
    """

    config: Path
    args: list[str]
    url: str
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0, health: str = "/health") -> None:
        """Start and wait until ``health`` answers 200."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(self.config), *self.args],
                cwd=self.config.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.popen.poll() is not None:
                    tail = self.log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{self.args} exited with {self.popen.returncode}:\n{tail}")
                try:
                    if client.get(f"{self.url}{health}").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"{self.args} did not answer on {self.url} within {timeout}s")

    @property
    def pid(self) -> int:
        """Process id (started)."""
        assert self.popen is not None
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the process and its children."""
        return tree_cpu_seconds(self.pid) if self.popen else 0.0

    def stop(self) -> None:
        """SIGINT (graceful), then SIGTERM, then SIGKILL; only this process."""
        if self.popen is None or self.popen.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, 15), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def gateway_proc(config: Path, name: str = "gateway") -> Proc:
    """The gateway of ``config`` (not started); its log next to the config."""
    port = yaml.safe_load(config.read_text("utf-8"))["api"]["port"]
    return Proc(config, ["serve"], f"http://127.0.0.1:{port}", config.parent / f"{name}.log")


def sim_proc(config: Path, name: str = "ecase", log_name: str | None = None) -> Proc:
    """Simulator ``name`` of ``config`` (``ecase``, a direct institution, ``viss``)."""
    port = yaml.safe_load(config.read_text("utf-8"))["simulators"][name]["port"]
    log = config.parent / f"{log_name or 'sim-' + name}.log"
    return Proc(config, ["sim", name], f"http://127.0.0.1:{port}", log)


def quiet_logging() -> None:
    """Warnings and errors only from gateway code run inside the benchmark process (the
    simulators and gateways in subprocesses log as configured)."""
    from gateway.logging import configure_logging

    configure_logging("development", "WARNING")


# -- machine ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


# -- statistics ------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def latency_summary(latencies: list[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds."""
    values = sorted(latencies)
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p90_ms": round(percentile(values, 90) * 1000, 2),
        "p99_ms": round(percentile(values, 99) * 1000, 2),
        "max_ms": round((values[-1] if values else 0.0) * 1000, 2),
    }


# -- CPU time of a process tree (the server) --------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man proc).
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (Linux only)."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += _proc_cpu(current)
        stack.extend(_children(current))
    return total


class Stopwatch:
    """Wall and CPU time of this process between start and stop."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()

    def stop(self) -> tuple[float, float]:
        """Elapsed wall seconds and CPU seconds of this process."""
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0


def server_app() -> Any:
    """App factory for ``uvicorn --factory --workers N`` (``--server-workers`` > 1).

    Same runtime and app as ``plus-gateway serve`` with the delivery worker off; the schema
    is migrated by the benchmark before the workers start.
    """
    from gateway.api.app import create_app
    from gateway.logging import configure_logging
    from gateway.runtime import Runtime

    settings = load_settings(os.environ["PLUSGW_CONFIG"])
    configure_logging(settings.logging.environment, settings.logging.level)
    return create_app(Runtime(settings, run_migrations=False), None)
