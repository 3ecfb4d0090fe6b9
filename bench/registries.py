"""Benchmark: registry query latency through the gateway vs a direct zeep call, and under load.

Run from the project root::

    .venv/bin/python -m bench.registries [--n 500] [--profile-n 200] [--officers 32]
    .venv/bin/python -m bench.registries --quick        # smoke run (what `make bench` runs)

Starts, on loopback, the VISS simulator and the gateway as separate processes (temp keys, temp
SQLite store in WAL mode with ``synchronous=FULL``), then measures in the same run:

1. VIIS query latency: PLUS -> gateway (JSON, audit row durable, answer verified, validated,
   mapped) -> simulator, against a direct zeep call to the same simulator (zeep parses the
   answer but verifies nothing and writes nothing). Both sequential over keep-alive
   connections, alternating call by call so that whatever else loads the machine hits both
   alike; the gateway's CPU per query from /proc.
2. Where the gateway's own time goes, step by step, in process.
3. The profile fan-out (all four registries in parallel) against the slowest single registry,
   as is and with 50 ms latency injected into RD.
4. Load: ``--officers`` simulated officers (threads) each asking for profiles of random persons
   with exponential think times (``--rate`` profiles a second each), first with every registry
   healthy (the peer), then with RD slowed beyond its read timeout. Reported: the profile
   latency the officers see (p50/p99), each registry's own query time from the audit rows,
   the statuses, and the RD breaker's state sampled from ``/ready`` once a second.

Results go to ``bench/results/registries.json``. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import atexit
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import zeep
from zeep.transports import Transport

from bench.common import (
    RESULTS,
    latency_summary,
    machine,
    make_env,
    quiet_logging,
    tree_cpu_seconds,
)

#: The registry slowed in the load phase.
SLOW = "rd"


def _wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def _measure(fn: Callable[[], object], n: int, warmup: int = 30) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_pct(samples, 0.5), 2),
        "p99_ms": round(_pct(samples, 0.99), 2),
        "mean_ms": round(statistics.fmean(samples) * 1000, 2),
        "n": len(samples),
    }


def _line(name: str, s: dict[str, float]) -> str:
    return (
        f"{name:<44} p50 {s['p50_ms']:8.2f} ms   p99 {s['p99_ms']:8.2f} ms   "
        f"mean {s['mean_ms']:8.2f} ms   n={s['n']}"
    )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the benchmark's own subprocesses (those still running), then wait."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _load(
    gateway: str,
    codes: list[str],
    *,
    officers: int,
    seconds: float,
    rate: float,
    case_id: str,
) -> dict[str, Any]:
    """``officers`` threads asking for profiles for ``seconds``; what they saw."""
    latencies: list[float] = []
    statuses: dict[str, Counter[str]] = {}
    errors: list[str] = []
    breaker: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def officer(index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(timeout=60) as http:
            # Spread the first queries over one think time, as officers do not start together.
            time.sleep(rng.expovariate(rate))
            while time.monotonic() < stop:
                body = {
                    "personal_code": rng.choice(codes),
                    "purpose": "benchmark",
                    "officer_id": f"officer-{index}",
                    "case_id": case_id,
                }
                started = time.perf_counter()
                try:
                    r = http.post(f"{gateway}/v1/registries/profile", json=body)
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(type(exc).__name__)
                    continue
                took = time.perf_counter() - started
                with lock:
                    if r.status_code != 200:
                        errors.append(f"HTTP {r.status_code}")
                        continue
                    latencies.append(took)
                    for name, entry in r.json()["registries"].items():
                        statuses.setdefault(name, Counter())[entry["status"]] += 1
                time.sleep(rng.expovariate(rate))

    def watch() -> None:
        with httpx.Client(timeout=10) as http:
            while time.monotonic() < stop:
                try:
                    checks = http.get(f"{gateway}/ready").json()["checks"]["registries"]
                    breaker.append(checks[SLOW]["state"])
                except (httpx.HTTPError, KeyError, ValueError):
                    breaker.append("?")
                time.sleep(1.0)

    threads = [threading.Thread(target=officer, args=(i,)) for i in range(officers)]
    threads.append(threading.Thread(target=watch))
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    return {
        "profiles": len(latencies),
        "profiles_per_second": round(len(latencies) / wall, 2),
        "wall_seconds": round(wall, 1),
        "officer_latency": latency_summary(latencies),
        "statuses": {n: dict(c) for n, c in sorted(statuses.items())},
        "errors": dict(Counter(errors)),
        f"{SLOW}_breaker_samples": dict(Counter(breaker)),
    }


def _registry_times(db: Path, case_id: str) -> dict[str, Any]:
    """Each registry's own query time (audit ``duration_ms``) in one load phase."""
    out: dict[str, Any] = {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT registry, status, duration_ms FROM registry_queries WHERE case_id = ?",
            (case_id,),
        ).fetchall()
    by: dict[str, list[float]] = {}
    for registry, status, ms in rows:
        by.setdefault(registry, []).append((ms or 0) / 1000)
        by.setdefault(f"{registry}:{status}", []).append((ms or 0) / 1000)
    for key, values in sorted(by.items()):
        s = latency_summary(values)
        out[key] = {"n": len(values), "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"]}
    return out


def run(
    *, n: int, profile_n: int, officers: int, load_seconds: float, rate: float
) -> dict[str, Any]:
    """Every measurement of the module docstring, in one run; the figures as a dict."""
    quiet_logging()
    from gateway.registries.contract import REGISTRIES
    from gateway.registries.header import parse_identifier, viss_header
    from gateway.registries.sim import FaultPlan, VissSimulator
    from gateway.runtime import Runtime
    from gateway.soap.client import pooled_session, zeep_settings

    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-registries-"))
    # Temp keys (gateway, every institution's simulator, VISS), temp SQLite store, free ports.
    # Delivery stays on as in production (nothing is queued; /ready also wants the worker).
    env = make_env(
        tmp, delivery={"enabled": True}, logging={"environment": "production", "level": "WARNING"}
    )
    settings, config = env.settings, env.config
    api_port, viss_port = settings.api.port, settings.simulators["viss"].port
    # The simulator and the gateway run as their own processes, as in production, so that
    # neither competes with the other (or with this client) for one interpreter's GIL.
    base_cmd = [sys.executable, "-m", "gateway", "--config", str(config)]
    procs = [
        subprocess.Popen([*base_cmd, "sim", "viss"], stdout=subprocess.DEVNULL),
        subprocess.Popen([*base_cmd, "serve"], stdout=subprocess.DEVNULL),
    ]
    server_pid = procs[1].pid
    # Whatever happens below (a process that never gets ready, an assertion), stop both.
    atexit.register(_stop, procs)
    gateway = f"http://127.0.0.1:{api_port}"
    sim_url = f"http://127.0.0.1:{viss_port}"
    _wait_for(f"{sim_url}/control/stats")
    _wait_for(f"{gateway}/ready")
    # In-process copies (not served) for the per-step breakdown and to pick persons.
    sim = VissSimulator(settings)
    runtime = Runtime(settings)
    person = sim.population.find("several_documents", "disability", "employed", "social")[0]
    body = {
        "personal_code": person.personal_code,
        "purpose": "benchmark",
        "officer_id": "bench",
        "case_id": "VPD-BENCH-1",
    }

    # Direct zeep: the same WSDL, header blocks and simulator; no verification, no audit.
    cfg = settings.registries
    transport = Transport(session=pooled_session(), operation_timeout=5)
    client = zeep.Client(str(cfg.wsdl), transport=transport, settings=zeep_settings())
    service = client.create_service(
        "{urn:lv:vraa:viss:v1:wsdl}ViisBinding", f"http://127.0.0.1:{viss_port}/soap/viss/viis"
    )
    header = viss_header(
        client=parse_identifier(cfg.client_id, service=False, key="client_id"),
        service=parse_identifier(cfg.registries["viis"].service_id, service=True, key="service"),
        user_id="bench",
        id="PLUS-bench",
        protocol_version=cfg.protocol_version,
        issue="VPD-BENCH-1",
        purpose="benchmark",
        legal_basis=cfg.legal_basis,
    )

    def direct() -> None:
        answer = service.GetEducation(
            PersonalCode=person.personal_code, _soapheaders=header.elements()
        )
        assert answer is not None

    http = httpx.Client(timeout=30)

    def ask(registry: str) -> Callable[[], None]:
        def call() -> None:
            r = http.post(f"{gateway}/v1/registries/{registry}/queries", json=body)
            assert r.status_code == 200, r.text

        return call

    def profile() -> None:
        r = http.post(f"{gateway}/v1/registries/profile", json=body)
        assert r.status_code == 200
        assert all(e["status"] == "ok" for e in r.json()["registries"].values()), r.text

    # 1. Alternating call by call (ABAB): drift and the machine's other load hit both alike.
    for _ in range(30):
        direct()
        ask("viis")()
    via_zeep: list[float] = []
    via_gateway: list[float] = []
    server_cpu = 0.0
    for _ in range(n):
        started = time.perf_counter()
        direct()
        via_zeep.append(time.perf_counter() - started)
        cpu0 = tree_cpu_seconds(server_pid)
        started = time.perf_counter()
        ask("viis")()
        via_gateway.append(time.perf_counter() - started)
        server_cpu += tree_cpu_seconds(server_pid) - cpu0
    paired = [g - z for g, z in zip(via_gateway, via_zeep, strict=True)]
    single = {
        "direct_zeep": _summary(via_zeep),
        "gateway": _summary(via_gateway),
        "added_p50_ms": round(_pct(via_gateway, 0.5) - _pct(via_zeep, 0.5), 2),
        "added_p99_ms": round(_pct(via_gateway, 0.99) - _pct(via_zeep, 0.99), 2),
        "paired_median_added_ms": round(statistics.median(paired) * 1000, 2),
        "ratio_p50": round(_pct(via_gateway, 0.5) / _pct(via_zeep, 0.5), 2),
        # /proc counts in clock ticks (10 ms): meaningful as a mean over many queries only.
        "gateway_cpu_ms_per_query": round(server_cpu / n * 1000, 2),
    }
    result["single_viis"] = single

    # 2. Where the gateway's time goes (in process, same answer each time).
    from gateway.registries.header import VISS_HEADER, read_header
    from gateway.soap.envelope import build_envelope, parse_envelope
    from gateway.store.audit import AuditEntry

    viis = runtime.registries.clients["viis"]
    raw = build_envelope(viis.request_payload(person.personal_code), header.serialize())
    answer = sim.answer("viis", raw)[1]
    envelope = parse_envelope(answer, runtime.limits)
    signed = viis.trust.verify(envelope.body)
    entry = AuditEntry("viis", "bench", "benchmark", "VPD-BENCH-1", person.personal_code, "q", "ok")

    def validate_and_map() -> object:
        viis.schemas.validate(signed, viis.contract.schema)
        return viis.mapping.to_canonical(signed)

    steps: dict[str, dict[str, float]] = {}
    for name, fn in (
        ("parse answer envelope", lambda: parse_envelope(answer, runtime.limits)),
        (
            "read + validate echoed header",
            lambda: read_header(envelope.header, VISS_HEADER, viis.schemas),
        ),
        ("verify signature (signxml)", lambda: viis.trust.verify(envelope.body)),
        ("XSD validate + map to JSON", validate_and_map),
        (
            "audit row (SQLite, synchronous=FULL)",
            lambda: runtime.registries.audit.record([entry]),
        ),
        ("(simulator: build + sign the answer)", lambda: sim.answer("viis", raw)),
    ):
        steps[name] = _summary(_measure(fn, max(20, n // 5), warmup=5))
    result["steps_in_process"] = steps

    # 3. Fan-out against the slowest single registry.
    fanout: dict[str, Any] = {}
    for title, plan in (
        ("no injected latency", None),
        ("50 ms latency injected into RD", FaultPlan(registry="rd", mode="latency", delay=0.05)),
    ):
        http.post(f"{sim_url}/control/reset").raise_for_status()
        if plan is not None:
            http.post(f"{sim_url}/control/fault", json=plan.model_dump()).raise_for_status()
        singles = {
            name: _summary(_measure(ask(name), profile_n // 2, warmup=5)) for name in REGISTRIES
        }
        slowest = max(singles, key=lambda name: singles[name]["p50_ms"])
        fan = _summary(_measure(profile, profile_n, warmup=5))
        fanout[title] = {
            "singles": singles,
            "profile": fan,
            "slowest": slowest,
            "added_p50_ms": round(fan["p50_ms"] - singles[slowest]["p50_ms"], 2),
            "ratio_p50": round(fan["p50_ms"] / singles[slowest]["p50_ms"], 2),
        }
    result["fanout"] = fanout

    # 4. Officers under load: all healthy (the peer), then RD slowed beyond its timeout.
    if officers > 0 and load_seconds > 0:
        codes = list(sim.population.codes)
        timeout = cfg.registries[SLOW].read_timeout
        load: dict[str, Any] = {
            "officers": officers,
            "rate_per_officer": rate,
            "seconds": load_seconds,
            "slowed": SLOW,
            "read_timeout_s": timeout,
            "breaker": {
                "failure_threshold": cfg.breaker.failure_threshold,
                "reset_timeout_s": cfg.breaker.reset_timeout,
            },
        }
        db = Path(settings.store.url.split("///", 1)[1])
        for phase, case_id, plan in (
            ("healthy", "VPD-LOAD-HEALTHY", None),
            (
                f"{SLOW} slowed past its timeout",
                "VPD-LOAD-SLOW",
                FaultPlan(registry=SLOW, mode="latency", delay=timeout + 1.0),
            ),
        ):
            http.post(f"{sim_url}/control/reset").raise_for_status()
            if plan is not None:
                http.post(f"{sim_url}/control/fault", json=plan.model_dump()).raise_for_status()
            print(f"[registries] load: {officers} officers, {phase}, {load_seconds:.0f} s ...")
            figures = _load(
                gateway, codes, officers=officers, seconds=load_seconds, rate=rate, case_id=case_id
            )
            figures["registry_query_times"] = _registry_times(db, case_id)
            load[phase] = figures
        peer = load["healthy"]["officer_latency"]
        slow = load[f"{SLOW} slowed past its timeout"]["officer_latency"]
        load["ratio_p50_slowed_to_healthy"] = round(slow["p50_ms"] / peer["p50_ms"], 2)
        load["ratio_p99_slowed_to_healthy"] = round(slow["p99_ms"] / peer["p99_ms"], 2)
        result["load"] = load
        http.post(f"{sim_url}/control/reset").raise_for_status()

    result["audit_group_commit"] = "in the server process; see the load phase's rates"
    result["loadavg_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    http.close()
    _stop(procs)
    runtime.close()
    return result


def report(result: dict[str, Any]) -> None:
    """Print the figures."""
    s = result["single_viis"]
    print("\nVIIS query, sequential, alternating call by call")
    print(_line("  direct zeep -> simulator", s["direct_zeep"]))
    print(_line("  PLUS -> gateway -> simulator", s["gateway"]))
    print(
        f"  gateway added: p50 {s['added_p50_ms']:+.2f} ms, p99 {s['added_p99_ms']:+.2f} ms, "
        f"paired median {s['paired_median_added_ms']:+.2f} ms, ratio {s['ratio_p50']}, "
        f"server CPU {s['gateway_cpu_ms_per_query']} ms per query"
    )
    print("\nwhere the gateway's time goes (in process)")
    for name, fig in result["steps_in_process"].items():
        print(_line(f"  {name}", fig))
    for title, f in result["fanout"].items():
        print(f"\nprofile fan-out, {title}")
        for name, fig in f["singles"].items():
            print(_line(f"  single {name}", fig))
        print(_line("  profile (4 in parallel)", f["profile"]))
        print(
            f"  profile p50 - slowest single p50 ({f['slowest']}): {f['added_p50_ms']:+.2f} ms"
            f" (ratio {f['ratio_p50']})"
        )
    load = result.get("load")
    if load:
        print(f"\n{load['officers']} officers, {load['rate_per_officer']} profiles/s each")
        for phase in ("healthy", f"{SLOW} slowed past its timeout"):
            f = load[phase]
            lat = f["officer_latency"]
            print(
                f"  {phase:<32} profiles {f['profiles']:5d} ({f['profiles_per_second']}/s)  "
                f"p50 {lat['p50_ms']:8.2f} ms  p99 {lat['p99_ms']:8.2f} ms  "
                f"max {lat['max_ms']:8.2f} ms  errors {f['errors']}"
            )
            print(f"    statuses {f['statuses']}")
            print(f"    {SLOW} breaker samples {f[f'{SLOW}_breaker_samples']}")
            for key, t in f["registry_query_times"].items():
                if ":" not in key:
                    print(f"    {key:<5} query p50 {t['p50_ms']:8.1f} ms  p99 {t['p99_ms']:8.1f}")
        print(
            f"  slowed / healthy: p50 x{load['ratio_p50_slowed_to_healthy']}, "
            f"p99 x{load['ratio_p99_slowed_to_healthy']}"
        )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the figures and write ``bench/results/registries.json``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="queries per single measurement")
    parser.add_argument("--profile-n", type=int, default=200, help="profile requests")
    parser.add_argument("--officers", type=int, default=32, help="officers in the load phase")
    parser.add_argument(
        "--load-seconds", type=float, default=90.0, help="seconds per load phase (0: skip)"
    )
    parser.add_argument(
        "--rate", type=float, default=0.3, help="profiles a second per officer (think time)"
    )
    parser.add_argument("--quick", action="store_true", help="--n 200 --profile-n 80, 40 s load")
    parser.add_argument("--output", type=Path, default=RESULTS / "registries.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.profile_n, args.load_seconds = 200, 80, 40.0
    result = run(
        n=args.n,
        profile_n=args.profile_n,
        officers=args.officers,
        load_seconds=args.load_seconds,
        rate=args.rate,
    )
    report(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    main()
