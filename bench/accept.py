"""Accept beyond one core (issue 14 part 4): HTTP accept with 1 and N server processes against
floors that use one and N cores, both directions, SQLite and PostgreSQL, in one run.

    .venv/bin/python -m bench.accept [--seconds 20] [--workers 2] [--clients 8]
        [--backends sqlite,postgres] [--postgres URL] [--client raw|httpx]

For each backend, one store (a temp SQLite file, or a throwaway PostgreSQL schema):

* **floor xN** (N = 1 and ``--workers``): N processes run ``bench.run``'s in-process floors
  (``floor_outbound``: JSON, validation, reply routing, mapping, XSD, signature, durable
  commit; ``floor_inbound``: hardened parse, header blocks, verification, XSD, mapping,
  commit) at the same time for ``--seconds / 2``, released together after each has loaded its
  runtime and signed its inbound input (not timed); the rate is the sum. The N-process floor is
  the "floor that uses both cores": the same work, no HTTP, no framework, on every core.
* **HTTP xW** (W = 1 and ``--workers``): ``plus-gateway serve`` with ``api.workers: W``
  (gateway/workers.py), delivery off, ``--clients`` closed-loop keep-alive clients in this
  process (``bench.run.http_load``), ``POST /v1/outbound/execution_notification`` then
  ``POST /soap/ecase`` with pre-signed court rulings. The clients are ``--client raw`` by
  default (``bench.run.RawHttp``: prepared bytes on a keep-alive socket), so that the load
  generator takes as little as it can of the cores the server is to use; ``--client httpx``
  is the client of the earlier runs.

Ratios from the same run: HTTP xW / HTTP x1 (target >= 2 on 2 cores) and HTTP xW / floor xW
(target >= 0.8). The client threads share the machine's cores with the server (measured:
``client_cpu_util``). Results: stdout and ``bench/results/accept.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import (
    RESULTS,
    ROOT,
    SAMPLES,
    BenchEnv,
    decision_envelope,
    gateway_proc,
    machine,
    make_env,
    quiet_logging,
    soap_headers,
    tree_cpu_seconds,
)
from bench.run import (
    CLIENTS,
    INBOUND_TYPE,
    OUTBOUND_TYPE,
    build_envelopes,
    floor_inbound,
    floor_outbound,
    http_load,
    inbound_requests,
    institution_sim,
    outbound_requests,
)

BODY = (SAMPLES / OUTBOUND_TYPE / "valid.json").read_bytes()


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- floors in child processes ------------------------------------------------------------


def floor_child(config: Path, direction: str, seconds: float) -> None:
    """One floor process: load, prepare input, print READY, wait for a line, run, print JSON."""
    from gateway.config import load_settings
    from gateway.runtime import Runtime

    quiet_logging()
    settings = load_settings(config)
    runtime = Runtime(settings, run_migrations=False)
    envelopes: list[bytes] = []
    if direction == "in":
        sim = institution_sim(BenchEnv(config.parent, config, settings))
        envelopes, _ = build_envelopes(sim, int(seconds * 400), budget=max(20.0, seconds * 3))
    print("READY", flush=True)
    sys.stdin.readline()
    if direction == "out":
        phase = floor_outbound(runtime, BODY, seconds)
    else:
        phase = floor_inbound(runtime, envelopes, seconds)
    runtime.close()
    print(json.dumps(phase.as_dict()), flush=True)


def floors(config: Path, direction: str, processes: int, seconds: float) -> dict[str, Any]:
    """``processes`` floor children released together; the summed rate."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.accept",
                "--floor-child",
                direction,
                "--config",
                str(config),
                "--seconds",
                str(seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for _ in range(processes)
    ]
    for child in children:
        assert child.stdout is not None
        seen = []
        while (line := child.stdout.readline()) and line.strip() != "READY":
            seen.append(line)
        if not line:
            raise RuntimeError(f"floor child failed: {''.join(seen)[-2000:]}")
    load = _loadavg()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        out, _ = child.communicate(timeout=seconds * 4 + 120)
        results.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "processes": processes,
        "rate_per_s": round(sum(r["rate_per_s"] for r in results), 1),
        "p50_ms": max(r["p50_ms"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "each": results,
        "loadavg_at_start": load,
    }


# -- HTTP ---------------------------------------------------------------------------------


class _Server:
    """What ``http_load`` needs of a server: its base URL and CPU (the whole process tree)."""

    def __init__(self, base: str, pid: int) -> None:
        self.base = base
        self.pid = pid

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)


def http_phase(
    env: BenchEnv,
    store_url: str,
    workers: int,
    *,
    clients: int,
    seconds: float,
    warmup: float,
    envelopes: list[bytes],
    client: str = "raw",
) -> dict[str, Any]:
    """``serve`` with ``api.workers``, outbound then inbound load."""
    name = f"http-w{workers}-{uuid.uuid4().hex[:4]}"
    config, _ = env.variant(
        name,
        api={"workers": workers},
        store={"url": store_url},
        delivery={"enabled": False},
        logging={"environment": "production", "level": "INFO"},
    )
    proc = gateway_proc(config, name)
    proc.start(timeout=120)
    try:
        # Let the HTTP workers load their runtime (they share the socket once listening).
        time.sleep(2.0 + 4.0 * (workers - 1))
        server = _Server(proc.url, proc.pid)
        headers = soap_headers("urn:lv:ecase:plus:v1", "SubmitCourtRuling")
        load = _loadavg()
        out = http_load(
            server,  # type: ignore[arg-type]
            "http_outbound",
            outbound_requests(BODY),
            clients=clients,
            seconds=seconds,
            warmup=warmup,
            expect=202,
            client=client,
        )
        inn = http_load(
            server,  # type: ignore[arg-type]
            "http_inbound",
            inbound_requests(envelopes, headers),
            clients=clients,
            seconds=seconds,
            warmup=warmup,
            expect=200,
            client=client,
        )
    finally:
        proc.stop()
    return {
        "workers": workers,
        "loadavg_at_start": load,
        "outbound": out.as_dict(),
        "inbound": inn.as_dict(),
        "inbound_ran_out": inn.window_short(seconds),
    }


# -- one backend --------------------------------------------------------------------------


def _store(env: BenchEnv, backend: str, pg: str | None) -> tuple[str, Any]:
    """A fresh store URL on ``backend`` and a cleanup callable."""
    from gateway.store import create_store_engine, migrate

    if backend == "sqlite":
        url = f"sqlite:///{env.tmp}/accept-{uuid.uuid4().hex[:6]}.db"
        engine = create_store_engine(url)
        migrate(engine)
        engine.dispose()
        return url, lambda: None
    assert pg
    schema = f"bench_accept_{uuid.uuid4().hex[:8]}"
    admin = create_store_engine(pg)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg else "?"
    url = f"{pg}{sep}options=-csearch_path%3D{schema}"
    engine = create_store_engine(url)
    migrate(engine)
    engine.dispose()

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return url, drop


def _seed_decision(settings: Any, envelope: bytes) -> None:
    """The court ruling the notifications answer, into the store (reply routing)."""
    from gateway.pipeline import Exchange
    from gateway.runtime import Runtime

    runtime = Runtime(settings, run_migrations=False)
    try:
        runtime.routes.inbound(Exchange(direction="in", partner="", endpoint="ecase", raw=envelope))
    finally:
        runtime.close()


def backend_run(
    env: BenchEnv, backend: str, pg: str | None, args: argparse.Namespace, sim: Any
) -> dict[str, Any]:
    """Floors x1 and xN, HTTP x1 and xN, on one store of ``backend``."""
    url, drop = _store(env, backend, pg)
    try:
        config, settings = env.variant(f"floor-{backend}", store={"url": url})
        decision = decision_envelope(sim, BODY, INBOUND_TYPE)
        _seed_decision(settings, decision)
        fs = max(3.0, args.seconds / 2)
        result: dict[str, Any] = {"backend": backend, "floor": {}, "http": {}}
        for n in sorted({1, args.workers}):
            result["floor"][f"x{n}"] = {
                "outbound": floors(config, "out", n, fs),
                "inbound": floors(config, "in", n, fs),
            }
            f = result["floor"][f"x{n}"]
            print(
                f"  [{backend}] floor x{n}: outbound {f['outbound']['rate_per_s']}/s, "
                f"inbound {f['inbound']['rate_per_s']}/s",
                flush=True,
            )
        for w in sorted({1, args.workers}):
            peak = max(
                result["floor"][f"x{args.workers}"][d]["rate_per_s"]
                for d in ("outbound", "inbound")
            )
            # The server may beat the floor (it overlaps fsyncs): enough for 2.5x either.
            seen = [h["inbound"]["rate_per_s"] for h in result["http"].values()]
            need = int(2.5 * max(peak, *seen, 60) * (args.seconds + args.warmup))
            envelopes, _ = build_envelopes(sim, need, budget=max(60.0, args.seconds * 6))
            result["http"][f"x{w}"] = http_phase(
                env,
                url,
                w,
                clients=args.clients,
                seconds=args.seconds,
                warmup=args.warmup,
                envelopes=envelopes,
                client=args.client,
            )
            h = result["http"][f"x{w}"]
            print(
                f"  [{backend}] HTTP x{w}: outbound {h['outbound']['rate_per_s']}/s, "
                f"inbound {h['inbound']['rate_per_s']}/s"
                + (" (inbound ran out of envelopes)" if h["inbound_ran_out"] else ""),
                flush=True,
            )
        n = args.workers
        result["ratios"] = {
            d: {
                f"http_x{n}_over_http_x1": _ratio(result["http"][f"x{n}"], result["http"]["x1"], d),
                f"http_x{n}_over_floor_x{n}": _ratio(
                    result["http"][f"x{n}"], result["floor"][f"x{n}"], d
                ),
                "http_x1_over_floor_x1": _ratio(result["http"]["x1"], result["floor"]["x1"], d),
                f"floor_x{n}_over_floor_x1": _ratio(
                    result["floor"][f"x{n}"], result["floor"]["x1"], d
                ),
            }
            for d in ("outbound", "inbound")
        }
        return result
    finally:
        drop()


def _ratio(a: dict[str, Any], b: dict[str, Any], direction: str) -> float | None:
    x, y = a[direction]["rate_per_s"], b[direction]["rate_per_s"]
    return round(x / y, 2) if y else None


def report(results: dict[str, Any]) -> None:
    """The table."""
    n = results["args"]["workers"]
    print("\n" + "=" * 100)
    print(
        f"accept beyond one core  {results['when']}  load {results['machine']['loadavg_at_start']}"
    )
    print("=" * 100)
    print(
        f"{'':10s}{'dir':10s}{'floor x1':>10s}{f'floor x{n}':>10s}{'HTTP x1':>10s}"
        f"{f'HTTP x{n}':>10s}{f'x{n}/x1':>9s}{f'/floor x{n}':>11s}{'srv CPU ms':>12s}"
    )
    for b in results["backends"]:
        for d in ("outbound", "inbound"):
            r = b["ratios"][d]
            print(
                f"{b['backend']:10s}{d:10s}"
                f"{b['floor']['x1'][d]['rate_per_s']:10.1f}"
                f"{b['floor'][f'x{n}'][d]['rate_per_s']:10.1f}"
                f"{b['http']['x1'][d]['rate_per_s']:10.1f}"
                f"{b['http'][f'x{n}'][d]['rate_per_s']:10.1f}"
                f"{r[f'http_x{n}_over_http_x1'] or 0:9.2f}"
                f"{r[f'http_x{n}_over_floor_x{n}'] or 0:11.2f}"
                f"{b['http'][f'x{n}'][d]['server_cpu_per_msg_ms']:12.2f}"
            )
    print(f"targets: HTTP x{n} >= 2x HTTP x1, HTTP x{n} >= 0.8 floor x{n}")


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    p = argparse.ArgumentParser(prog="python -m bench.accept", description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="per HTTP phase (floors: half)")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument(
        "--client",
        choices=CLIENTS,
        default="raw",
        help="load generator: raw (bench.run.RawHttp, a few tens of us per request; default) "
        "or httpx (0.5-1 ms of the shared cores per request, the earlier runs' client)",
    )
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--postgres", default=os.environ.get("PLUSGW_TEST_POSTGRES_URL"))
    p.add_argument("--output", type=Path, default=RESULTS / "accept.json")
    p.add_argument("--floor-child", choices=["out", "in"], help=argparse.SUPPRESS)
    p.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.floor_child:
        floor_child(args.config, args.floor_child, args.seconds)
        return 0
    quiet_logging()
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "args": {k: v for k, v in vars(args).items() if k not in ("postgres", "output")},
        "backends": [],
    }
    backends = [b for b in args.backends.split(",") if b]
    with tempfile.TemporaryDirectory(prefix="plusgw-accept-") as d:
        env = make_env(Path(d))
        sim = institution_sim(env)
        for backend in backends:
            if backend == "postgres" and not args.postgres:
                print("postgres skipped: set PLUSGW_TEST_POSTGRES_URL or --postgres")
                continue
            print(f"[{backend}] ...", flush=True)
            results["backends"].append(backend_run(env, backend, args.postgres, args, sim))
    results["loadavg_at_end"] = _loadavg()
    report(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
