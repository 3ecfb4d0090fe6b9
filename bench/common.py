"""Helpers for the benchmark: a throw-away environment, machine facts, statistics, CPU time.

Nothing here touches ``var/``: every run gets its own temp directory with its own keys, its
own config file (absolute paths, free loopback ports) and its own SQLite databases.
"""

from __future__ import annotations

import math
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.config import Settings, load_settings
from gateway.signing.keys import init_keys

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples" / "tis"
RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BenchEnv:
    """Where one benchmark run lives."""

    tmp: Path
    config: Path
    settings: Settings

    def settings_with_db(self, name: str) -> Settings:
        """The same settings over another SQLite file in the temp directory."""
        return load_settings(self.config, store={"url": f"sqlite:///{self.tmp / name}"})


def make_env(tmp: Path) -> BenchEnv:
    """Keys, a config file and a database path under ``tmp``; the gateway's worker is off.

    The config is the repository's ``config.yaml`` with every path made absolute, the store
    and keys moved into ``tmp``, the API on a free port, delivery disabled (so the benchmark
    measures acceptance alone) and production (JSON line) logging.
    """
    keys = tmp / "keys"
    init_keys(keys, ["gateway", "tis-sim", "viss-sim"])
    api_port, sim_port, viss_port = free_port(), free_port(), free_port()
    overrides: dict[str, Any] = {
        "instance_name": "plus-gateway-bench",
        "paths": {"keys": str(keys)},
        "api": {"host": "127.0.0.1", "port": api_port},
        "store": {"url": f"sqlite:///{tmp / 'gateway.db'}"},
        "signing": {
            "key": str(keys / "gateway-key.pem"),
            "certificate": str(keys / "gateway-cert.pem"),
        },
        "partners": {
            "tis": {
                "endpoint": f"http://127.0.0.1:{sim_port}/soap/tis",
                "trust": {"certificates": [str(keys / "tis-sim-cert.pem")]},
            }
        },
        "delivery": {"enabled": False},
        "simulators": {
            "tis": {
                "port": sim_port,
                "key": str(keys / "tis-sim-key.pem"),
                "certificate": str(keys / "tis-sim-cert.pem"),
                "trust": {"certificates": [str(keys / "gateway-cert.pem")]},
                "gateway_url": f"http://127.0.0.1:{api_port}/soap/tis",
            },
            "viss": {
                "port": viss_port,
                "key": str(keys / "viss-sim-key.pem"),
                "certificate": str(keys / "viss-sim-cert.pem"),
                "trust": {"certificates": [str(keys / "gateway-cert.pem")]},
            },
        },
        "registries": {
            "endpoint": f"http://127.0.0.1:{viss_port}/soap/viss",
            "trust": {"certificates": [str(keys / "viss-sim-cert.pem")]},
        },
        "logging": {"environment": "production", "level": "INFO"},
    }
    # load_settings resolves every relative path against the repository; dumping the result
    # gives a config file that works from any directory.
    resolved = load_settings(ROOT / "config.yaml", **overrides)
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(resolved.model_dump(mode="json"), allow_unicode=True))
    return BenchEnv(tmp=tmp, config=config, settings=load_settings(config))


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
