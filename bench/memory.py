"""RSS over many messages, per flow (issue 14 part 5): flat means within 10 %.

    .venv/bin/python -m bench.memory [--messages 100000] [--flows outbound,inbound,registry,jobs]

Each flow runs in its own process (``--flow-child``), one thread, on the gateway's own code
with a SQLite store in ``/dev/shm`` when it exists (memory, not fsync, is measured). RSS
(``VmRSS``) is sampled after every tenth of the messages; the baseline is the sample after
the first tenth (imports, caches and pools warmed up), and the figure is the growth from
there to the end. Flows:

* ``outbound``: the outbound route (JSON, validation, reply routing, mapping, XSD, signature,
  durable accept with its idempotency key and journal entry), then every 100 messages the
  delivery bookkeeping: ``claim_due`` and ``mark_delivered_many`` (the partner's answer is not
  sent over the network here; the drain benchmark does that).
* ``inbound``: a court ruling signed by the simulated TIS (its own key; the simulator's log of
  what it sent is emptied every 100) and the inbound route (hardened parse, header blocks,
  verification, XSD, mapping, inbox insert with duplicate check and journal).
* ``registry``: ``RegistryService.query`` on VIIS for a person of the VISS simulator's
  population (a separate process on loopback): header, signature, SOAP call, verification of
  the answer, mapping, durable audit row.
* ``eservice``: a portal request (``my_probation_data`` for the simulated client, a fresh
  identity assertion signed by the simulated platform each time) through the inbound route
  (both signatures, XSD, access, inbox and request row), then PLUS's answer through the
  outbound route (scope, usage count, signature, outbox), and every 100 the delivery
  bookkeeping as in ``outbound``.
* ``jobs``: the job runner's forced run of ``retention`` (claim, lease, the purge, the run
  row and its journal entry); a run is a "message" here.
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
    machine,
    make_env,
    quiet_logging,
    sim_proc,
)

FLOWS = ("outbound", "inbound", "registry", "eservice", "jobs")
OUTBOUND_TYPE = "execution_notification"
INBOUND_TYPE = "court_ruling"
BODY = (SAMPLES / OUTBOUND_TYPE / "valid.json").read_bytes()


def rss_mib() -> float:
    """This process's resident set size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def child(flow: str, config: Path, messages: int) -> dict[str, Any]:
    """Run ``flow`` for ``messages`` in this process; RSS after every tenth."""
    from gateway.config import load_settings
    from gateway.runtime import Runtime

    quiet_logging()
    settings = load_settings(config)
    runtime = Runtime(settings)
    step = _flow(flow, runtime, BenchEnv(config.parent, config, settings))
    samples: list[tuple[int, float]] = [(0, round(rss_mib(), 1))]
    tenth = max(1, messages // 10)
    t0 = time.perf_counter()
    for i in range(1, messages + 1):
        step(i)
        if i % tenth == 0:
            samples.append((i, round(rss_mib(), 1)))
    seconds = time.perf_counter() - t0
    with runtime.engine.connect() as conn:  # what the flow left in the store: proof it ran
        stored = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in (
                "outbox",
                "inbox",
                "journal",
                "registry_queries",
                "eservice_requests",
                "job_runs",
            )
            if runtime.engine.dialect.has_table(conn, t)
        }
    runtime.close()
    base = samples[1][1]
    return {
        "flow": flow,
        "messages": messages,
        "seconds": round(seconds, 1),
        "stored_rows": stored,
        "rate_per_s": round(messages / seconds, 1),
        "rss_mib": samples,
        "baseline_mib": base,
        "end_mib": samples[-1][1],
        "growth_pct": round((samples[-1][1] - base) / base * 100, 2),
        "max_growth_pct": round((max(s[1] for s in samples[1:]) - base) / base * 100, 2),
    }


def _flow(flow: str, runtime: Any, env: BenchEnv) -> Any:
    """One message of ``flow`` as a callable of its ordinal."""
    from gateway.pipeline import Exchange
    from gateway.sim import InstitutionSim
    from gateway.soap.envelope import build_envelope

    sim = InstitutionSim(env.settings, "tis")
    if flow == "outbound":
        # The ruling the notifications answer (reply routing reads it from the inbox).
        decision = decision_envelope(sim, BODY, INBOUND_TYPE)
        runtime.routes.inbound(Exchange(direction="in", partner="", endpoint="ecase", raw=decision))
        mapping = runtime.mappings.get(OUTBOUND_TYPE)
        # 1,000 cases round-robin: a claim takes one message per case.
        bodies = [
            json.loads(BODY.replace(b"K30-0412-26/14", f"K-{c}".encode())) for c in range(1000)
        ]

        def outbound(i: int) -> None:
            runtime.routes.outbound(
                Exchange(
                    direction="out",
                    partner="",
                    mapping=mapping,
                    canonical=dict(bodies[i % len(bodies)]),
                    idempotency_key=uuid.uuid4().hex,
                )
            )
            if i % 100 == 0:
                rows = runtime.store.outbox.claim_due("memory", 100, 60)
                runtime.store.outbox.mark_delivered_many(
                    [(r, {"Status": "ACCEPTED"}) for r in rows], "memory"
                )

        return outbound
    if flow == "inbound":

        def inbound(i: int) -> None:
            _, _, payload, header = sim.build(INBOUND_TYPE)
            raw = build_envelope(payload, header.serialize())
            runtime.routes.inbound(Exchange(direction="in", partner="", endpoint="ecase", raw=raw))
            if i % 100 == 0:
                sim.records.reset()

        return inbound
    if flow == "registry":
        from gateway.registries.client import QueryContext
        from gateway.registries.population import Population

        codes = Population().codes
        ctx = QueryContext(officer_id="officer-memory", purpose="benchmark", case_id="K-1")

        def registry(i: int) -> None:
            runtime.registries.query("viis", codes[i % len(codes)], ctx)

        return registry
    if flow == "eservice":
        from gateway.eservices.portal import PERSONAS, PortalSim

        portal = PortalSim(env.settings)
        answer = runtime.mappings.get("eservice_answer")

        def eservice(i: int) -> None:
            canonical = portal.canonical(PERSONAS["client"], "my_probation_data")
            _, _, payload, header = portal.portal.build(
                "eservice_request", canonical=canonical, keep_id=True
            )
            raw = build_envelope(payload, header.serialize())
            runtime.routes.inbound(Exchange(direction="in", partner="", endpoint="ecase", raw=raw))
            request_id = canonical["message_id"]
            runtime.routes.outbound(
                Exchange(
                    direction="out",
                    partner="",
                    mapping=answer,
                    canonical={
                        "request_id": request_id,
                        "eservice": "my_probation_data",
                        "status": "answered",
                        "notify_e_address": False,
                        "content": json.dumps({"case": {"status": "active"}}),
                    },
                    idempotency_key=f"eservice-answer:{request_id}",
                    correlation_id=request_id,
                )
            )
            if i % 100 == 0:
                rows = runtime.store.outbox.claim_due("memory", 200, 60)
                runtime.store.outbox.mark_delivered_many(
                    [(r, {"Status": "ACCEPTED"}) for r in rows], "memory"
                )
                portal.portal.records.reset()

        return eservice
    if flow == "jobs":
        from gateway.jobs import JobRunner

        runner = JobRunner(env.settings, runtime.store)

        def jobs(i: int) -> None:
            runner.run_now("retention", force=True, actor="bench", reason="memory benchmark")

        return jobs
    raise SystemExit(f"unknown flow {flow}")


def run(messages: int, flows: list[str], job_runs: int) -> dict[str, Any]:
    """Every flow in its own child process, one after the other."""
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="plusgw-memory-", dir=shm if shm.is_dir() else None))
    out: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "flows": {},
    }
    try:
        env = make_env(base, logging={"environment": "production", "level": "ERROR"})
        viss = None
        if "registry" in flows:
            viss = sim_proc(env.config, "viss", "memory-viss")
            viss.start(health="/soap/viss/viis?wsdl")
        try:
            for flow in flows:
                n = job_runs if flow == "jobs" else messages
                config, _ = env.variant(
                    f"memory-{flow}", store={"url": f"sqlite:///{base}/{flow}.db"}
                )
                load = _loadavg()
                proc = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.memory",
                        "--flow-child",
                        flow,
                        "--config",
                        str(config),
                        "--messages",
                        str(n),
                    ],
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    check=False,
                )
                if proc.returncode != 0:
                    out["flows"][flow] = {"error": proc.stderr[-2000:]}
                    print(f"  {flow}: failed\n{proc.stderr[-2000:]}", flush=True)
                    continue
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                result["loadavg_at_start"] = load
                out["flows"][flow] = result
                print(
                    f"  {flow}: {n} in {result['seconds']} s, RSS {result['baseline_mib']} -> "
                    f"{result['end_mib']} MiB ({result['growth_pct']:+.1f} %, max "
                    f"{result['max_growth_pct']:+.1f} %)",
                    flush=True,
                )
        finally:
            if viss is not None:
                viss.stop()
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    out["loadavg_at_end"] = _loadavg()
    out["flat"] = {
        f: abs(r.get("growth_pct", 1e9)) <= 10 and r.get("max_growth_pct", 1e9) <= 10
        for f, r in out["flows"].items()
    }
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--job-runs", type=int, default=None, help="default: messages / 10")
    p.add_argument("--flows", default=",".join(FLOWS))
    p.add_argument("--output", type=Path, default=RESULTS / "memory.json")
    p.add_argument("--flow-child", help=argparse.SUPPRESS)
    p.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.flow_child:
        print(json.dumps(child(args.flow_child, args.config, args.messages)), flush=True)
        return 0
    quiet_logging()
    flows = [f for f in args.flows.split(",") if f]
    job_runs = args.job_runs if args.job_runs is not None else max(100, args.messages // 10)
    print(f"memory: {args.messages} messages per flow ({job_runs} job runs), load {_loadavg()}")
    result = run(args.messages, flows, job_runs)
    print(f"flat (within 10 %): {result['flat']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
