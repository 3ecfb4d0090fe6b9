"""Benchmark: registry query latency through the gateway vs a direct zeep call.

Run from the project root::

    .venv/bin/python -m bench.registries [--n 500] [--profile-n 200]

Starts, on loopback, the VISS simulator and the gateway as separate processes (temp keys, temp
SQLite store), then measures in the same run:

1. VIIS query latency: PLUS -> gateway (JSON, audit row written, answer verified, validated,
   mapped) -> simulator, against a direct zeep call to the same simulator (zeep parses the
   answer but verifies nothing and writes nothing). Both over HTTP keep-alive, sequential.
2. The profile fan-out (all four registries in parallel) against the slowest single registry,
   first as is and then with 50 ms latency injected into one registry.

Prints p50/p99 in milliseconds. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import atexit
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import zeep
from zeep.transports import Transport

from bench.common import make_env, quiet_logging


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


def _line(name: str, samples: list[float]) -> str:
    return (
        f"{name:<44} p50 {_pct(samples, 0.5):7.2f} ms   p99 {_pct(samples, 0.99):7.2f} ms   "
        f"mean {statistics.fmean(samples) * 1000:7.2f} ms   n={len(samples)}"
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


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="queries per single measurement")
    parser.add_argument("--profile-n", type=int, default=200, help="profile requests")
    args = parser.parse_args()
    quiet_logging()

    from gateway.registries.contract import REGISTRIES
    from gateway.registries.header import parse_identifier, viss_header
    from gateway.registries.sim import FaultPlan, VissSimulator
    from gateway.runtime import Runtime
    from gateway.soap.client import pooled_session, zeep_settings

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
    # Whatever happens below (a process that never gets ready, an assertion), stop both.
    atexit.register(_stop, procs)
    gateway = f"http://127.0.0.1:{api_port}"
    sim_url = f"http://127.0.0.1:{viss_port}"
    _wait_for(f"{sim_url}/control/stats")
    _wait_for(f"{gateway}/ready")
    # In-process copies (not served) for the per-step breakdown and to pick a person.
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
        result = service.GetEducation(
            PersonalCode=person.personal_code, _soapheaders=header.elements()
        )
        assert result is not None

    http = httpx.Client(timeout=10)

    def ask(registry: str) -> Callable[[], None]:
        def call() -> None:
            r = http.post(f"{gateway}/v1/registries/{registry}/queries", json=body)
            assert r.status_code == 200, r.text

        return call

    def profile() -> None:
        r = http.post(f"{gateway}/v1/registries/profile", json=body)
        assert r.status_code == 200
        assert all(e["status"] == "ok" for e in r.json()["registries"].values()), r.text

    print(f"plus-gateway registry benchmark ({args.n} queries each, sequential, loopback)")
    # Interleave the two in blocks so drift (CPU frequency, page cache) hits both alike.
    via_gateway: list[float] = []
    via_zeep: list[float] = []
    block = max(1, args.n // 5)
    for _ in range(5):
        via_zeep += _measure(direct, block)
        via_gateway += _measure(ask("viis"), block)
    print(_line("VIIS direct zeep -> simulator", via_zeep))
    print(_line("VIIS PLUS -> gateway -> simulator", via_gateway))
    print(
        f"{'gateway overhead':<44} p50 {_pct(via_gateway, 0.5) - _pct(via_zeep, 0.5):+7.2f} ms"
        f"   p99 {_pct(via_gateway, 0.99) - _pct(via_zeep, 0.99):+7.2f} ms"
    )

    # Where the gateway's time goes (in process, same answer each time).
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

    print("\nwhere the gateway's time goes (in process)")
    for name, fn in (
        (
            "  parse answer envelope",
            lambda: parse_envelope(answer, runtime.limits),
        ),
        (
            "  read + validate echoed header",
            lambda: read_header(envelope.header, VISS_HEADER, viis.schemas),
        ),
        ("  verify signature (signxml)", lambda: viis.trust.verify(envelope.body)),
        ("  XSD validate + map to JSON", validate_and_map),
        (
            "  audit row (SQLite, synchronous=FULL)",
            lambda: runtime.registries.audit.record([entry]),
        ),
        ("  (simulator: build + sign the answer)", lambda: sim.answer("viis", raw)),
    ):
        print(_line(name, _measure(fn, max(20, args.n // 5), warmup=5)))

    for title, plan in (
        ("no injected latency", None),
        ("50 ms latency injected into RD", FaultPlan(registry="rd", mode="latency", delay=0.05)),
    ):
        http.post(f"{sim_url}/control/reset").raise_for_status()
        if plan is not None:
            http.post(f"{sim_url}/control/fault", json=plan.model_dump()).raise_for_status()
        print(f"\nprofile fan-out, {title}")
        singles = {n: _measure(ask(n), args.profile_n // 2, warmup=5) for n in REGISTRIES}
        for name, samples in singles.items():
            print(_line(f"  single {name}", samples))
        slowest = max(singles, key=lambda n: _pct(singles[n], 0.5))
        fan = _measure(profile, args.profile_n, warmup=5)
        print(_line("  profile (4 in parallel)", fan))
        print(
            f"  {'profile p50 - slowest single p50 (' + slowest + ')':<42} "
            f"{_pct(fan, 0.5) - _pct(singles[slowest], 0.5):+7.2f} ms"
        )

    http.close()
    _stop(procs)
    runtime.close()


if __name__ == "__main__":
    main()
