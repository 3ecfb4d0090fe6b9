"""Backlog drain after an E-case outage (issue 14 part 1), with the sequential rate as its peer.

    .venv/bin/python -m bench.drain [--messages 18488] [--cases 5000] [--latency 0.05]
        [--concurrency 32] [--sequential 300] [--posters 4]

One E-case platform simulator (``plus-gateway sim ecase``, a separate process) answers for
the simulated TIS; every answer is delayed by ``--latency`` (the platform's ``slow`` fault).

1. Sequential peer: ``--sequential`` notifications are queued with delivery off, then a
   gateway with ``ecase.concurrency: 1`` drains them. Its rate is the floor of the ratio.
2. The outage: a gateway with ``ecase.concurrency: --concurrency`` runs while the platform
   answers every request with HTTP 503. ``--messages`` notifications over ``--cases`` cases
   are accepted through the local API (``--posters`` clients) and wait behind TIS's open
   breaker.
3. Recovery: the platform answers again (after ``--latency``). Timed from that moment until
   the simulator holds every accepted message: the breaker's trial message, the pull forward
   and the concurrent drain. Checked: every message delivered once, each case in acceptance
   order, no dead letter.

Figures go to stdout and ``bench/results/drain.json``. Loopback only, no assertions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    RESULTS,
    SAMPLES,
    BenchEnv,
    Proc,
    decision_envelope,
    free_port,
    gateway_proc,
    machine,
    make_env,
    quiet_logging,
    sim_proc,
    soap_headers,
)

MESSAGE_TYPE = "execution_notification"
INSTITUTION = "tis"
SAMPLE = (SAMPLES / MESSAGE_TYPE / "valid.json").read_text("utf-8")


def _config(env: BenchEnv, name: str, *, concurrency: int, probe: float) -> Path:
    """This run's gateway config over its own database and port, delivering to the platform
    simulator with production retry settings and a trial message each ``probe`` seconds."""
    config, _ = env.variant(
        name,
        api={"port": free_port()},
        store={"url": f"sqlite:///{env.tmp / name}.db"},
        ecase={"concurrency": concurrency, "connect_timeout": 2, "operation_timeout": 10},
        institutions={INSTITUTION: {"breaker": {"reset_timeout": probe}}},
        delivery={
            "enabled": True,
            "poll_interval": 0.5,
            "batch_size": 64,
            "lease_seconds": 120,
            "concurrency": concurrency,
        },
        logging={"environment": "production", "level": "WARNING"},
    )
    return config


def _fault(sim: Proc, mode: str, delay: float = 0.0) -> None:
    plan = {"mode": mode, "count": 0, "delay": delay}
    httpx.put(f"{sim.url}/sim/ecase/faults", json=plan, timeout=10).raise_for_status()


def _received(sim: Proc) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(
        f"{sim.url}/sim/ecase/received/{INSTITUTION}", timeout=60
    ).json()
    return data


def _seed_ruling(env: BenchEnv, gateway: Proc) -> None:
    """The court ruling every notification answers, into the gateway's inbox (reply routing)."""
    from gateway.sim import InstitutionSim

    envelope = decision_envelope(InstitutionSim(env.settings, INSTITUTION), SAMPLE.encode())
    r = httpx.post(
        f"{gateway.url}/soap/ecase",
        content=envelope,
        headers=soap_headers("urn:lv:ecase:plus:v1", "SubmitCourtRuling"),
        timeout=30,
    )
    r.raise_for_status()


def _post_all(gateway: Proc, cases: list[str], posters: int) -> list[tuple[str, str]]:
    """POST one notification per entry of ``cases`` (in that order per case) with ``posters``
    clients; returns (case, message id) in acceptance order per case."""
    accepted: list[tuple[int, str, str]] = []
    lock = threading.Lock()
    # One poster owns whole cases, so a case's messages are accepted in their order.
    by_poster: list[list[tuple[int, str]]] = [[] for _ in range(posters)]
    index = {c: i for i, c in enumerate(sorted(set(cases)))}
    for n, case in enumerate(cases):
        by_poster[index[case] % posters].append((n, case))

    def run(mine: list[tuple[int, str]]) -> None:
        with httpx.Client(timeout=60) as client:
            for n, case in mine:
                body = SAMPLE.replace("K30-0412-26/14", case)
                for _ in range(5):
                    r = client.post(
                        f"{gateway.url}/v1/outbound/{MESSAGE_TYPE}",
                        content=body,
                        headers={
                            "Idempotency-Key": str(uuid.uuid4()),
                            "Content-Type": "application/json",
                        },
                    )
                    if r.status_code == 202:
                        with lock:
                            accepted.append((n, case, str(r.json()["id"])))
                        break
                    time.sleep(0.2)

    threads = [threading.Thread(target=run, args=(m,)) for m in by_poster]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [(case, mid) for _, case, mid in sorted(accepted)]


def _wait_all(gateway: Proc, sim: Proc, n: int, timeout: float) -> tuple[float, dict[str, Any]]:
    """Seconds until the gateway has recorded ``n`` deliveries and holds nothing more (its
    outbox statistics, polled each second), and then what the simulator received."""
    t0 = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        while time.perf_counter() - t0 < timeout:
            try:
                stats = client.get(f"{gateway.url}/v1/admin/outbox/stats").json()
            except httpx.HTTPError:
                stats = {}
            mine = stats.get(INSTITUTION, {})
            if mine.get("counts", {}).get("delivered", 0) >= n and mine.get("depth") == 0:
                break
            time.sleep(1.0)
    seconds = time.perf_counter() - t0
    return seconds, _received(sim)


def _order_kept(snap: dict[str, Any], accepted: list[tuple[str, str]]) -> bool:
    position = {r["message_id"]: i for i, r in enumerate(snap["received"])}
    last: dict[str, int] = {}
    for case, mid in accepted:
        at = position.get(mid, -1)
        if at < last.get(case, -1):
            return False
        last[case] = at
    return True


def _stats(gateway: Proc) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{gateway.url}/v1/admin/outbox/stats", timeout=30).json()
    return data.get(INSTITUTION, {})


def outage(
    env: BenchEnv,
    sim: Proc,
    *,
    messages: int,
    cases: int,
    concurrency: int,
    posters: int,
    latency: float,
    probe: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Queue ``messages`` over ``cases`` while the platform is down, then time the drain
    (``profile``: a folder for py-spy's GIL samples of the gateway during the drain)."""
    tag = uuid.uuid4().hex[:6]
    config = _config(env, f"drain-{tag}", concurrency=concurrency, probe=probe)
    gateway = gateway_proc(config, f"drain-{tag}")
    gateway.start()
    _seed_ruling(env, gateway)
    httpx.delete(f"{sim.url}/sim/ecase/received", timeout=10)
    _fault(sim, "http_503")
    t0 = time.perf_counter()
    accepted = _post_all(gateway, [f"K-{i % cases}" for i in range(messages)], posters)
    queued_s = time.perf_counter() - t0
    ready = httpx.get(f"{gateway.url}/ready", timeout=30).json()
    breaker = ready["checks"]["delivery_partners"]["partners"][INSTITUTION]
    before = _stats(gateway)
    spy = _profiler(gateway, profile / f"profile-drain-c{concurrency}.txt") if profile else None
    _fault(sim, "slow", latency)  # back, answering in `latency`
    gw0, sim0 = gateway.cpu_seconds(), sim.cpu_seconds()
    seconds, snap = _wait_all(gateway, sim, len(accepted), timeout=max(600.0, messages / 5))
    gw_cpu, sim_cpu = gateway.cpu_seconds() - gw0, sim.cpu_seconds() - sim0
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
        spy.wait(timeout=60)
    after = _stats(gateway)
    gateway.stop()
    ids = [r["message_id"] for r in snap["received"]]
    delivered = len(set(ids) & {m for _, m in accepted})
    return {
        "messages": len(accepted),
        "cases": cases,
        "concurrency": concurrency,
        "queued_while_down_seconds": round(queued_s, 1),
        "breaker_while_down": breaker,
        "waiting_before_recovery": before.get("depth"),
        "dead_before_recovery": before.get("counts", {}).get("dead", 0),
        "drain_seconds": round(seconds, 1),
        "drain_per_s": round(delivered / seconds, 1),
        "delivered": delivered,
        "duplicates_dropped_by_partner": snap["duplicates"],
        "sends_received": len(ids),
        "order_kept": _order_kept(snap, accepted),
        "dead_letters": after.get("counts", {}).get("dead", 0),
        "cpu_ms_per_message_gateway": round(gw_cpu / max(delivered, 1) * 1000, 2),
        "cpu_ms_per_message_simulator": round(sim_cpu / max(delivered, 1) * 1000, 2),
        "cpu_cores_used": round((gw_cpu + sim_cpu) / seconds, 2),
    }


def _profiler(gateway: Proc, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy on the gateway (GIL-holding samples, raw stacks) until told to stop."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("  (py-spy not found; pip install py-spy to profile)", file=sys.stderr)
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            *(spy, "record", "--pid", str(gateway.pid), "--gil", "--nonblocking"),
            *("--rate", "250", "--format", "raw", "--output", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> None:
    """Run both phases and print / save the figures."""
    parser = argparse.ArgumentParser(prog="bench.drain")
    parser.add_argument("--messages", type=int, default=18_488)
    parser.add_argument("--cases", type=int, default=5_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--posters", type=int, default=4)
    parser.add_argument(
        "--probe",
        type=float,
        default=1.0,
        help="seconds between trial messages while down (breaker reset_timeout; default 10)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="folder for py-spy profiles of the gateway during each drain (py-spy installed)",
    )
    args = parser.parse_args(argv)
    quiet_logging()
    out: dict[str, Any] = {
        "machine": machine(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    with tempfile.TemporaryDirectory() as d:
        env = make_env(Path(d))
        sim = sim_proc(env.config, "ecase", "drain-sim")
        sim.start()
        try:
            common = {"posters": args.posters, "latency": args.latency, "probe": args.probe}
            # The peer: the same outage and recovery drained by one sending thread.
            out["sequential"] = outage(
                env,
                sim,
                messages=args.sequential,
                cases=args.sequential,
                concurrency=1,
                **common,
            )
            print("sequential", out["sequential"], flush=True)
            out["outage"] = outage(
                env,
                sim,
                messages=args.messages,
                cases=args.cases,
                concurrency=args.concurrency,
                profile=args.profile,
                **common,
            )
            print("outage", out["outage"], flush=True)
        finally:
            sim.stop()
    seq = out["sequential"]["drain_per_s"]
    out["ratio_to_sequential"] = round(out["outage"]["drain_per_s"] / seq, 1) if seq else None
    out["extrapolated_18488_seconds"] = (
        round(18_488 / out["outage"]["drain_per_s"], 1) if out["outage"]["drain_per_s"] else None
    )
    print(
        f"drain {out['outage']['messages']} in {out['outage']['drain_seconds']} s "
        f"({out['outage']['drain_per_s']}/s), sequential {seq}/s, "
        f"ratio {out['ratio_to_sequential']}x",
        flush=True,
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "drain.json").write_text(json.dumps(out, indent=2), "utf-8")


if __name__ == "__main__":
    main()
