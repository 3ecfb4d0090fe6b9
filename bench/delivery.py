"""Delivery benchmark: drain rate, enqueue and claim rates by backlog size, RSS over 100k.

The drain goes to the simulated TIS behind the E-case platform simulator
(``plus-gateway sim ecase``, a separate process), as the gateway delivers in production.

    .venv/bin/python -m bench.delivery [--sizes 10000,1000000] [--drain 400] [--rss 100000]

Loopback only, bounded in time, no assertions: it prints figures (and writes them as JSON to
bench/results/delivery.json). PostgreSQL parts run when PLUSGW_TEST_POSTGRES_URL is set; they
use a throwaway schema.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text

from bench.common import (
    RESULTS,
    SAMPLES,
    BenchEnv,
    Proc,
    decision_envelope,
    free_port,
    gateway_proc,
    make_env,
    quiet_logging,
    sim_proc,
    soap_headers,
)
from gateway.store import OutboundRecord, Store, create_store_engine, migrate
from gateway.store.schema import outbox, utcnow

PG = os.environ.get("PLUSGW_TEST_POSTGRES_URL")
MESSAGE_TYPE = "execution_notification"
OPERATION = "SubmitExecutionNotification"
INSTITUTION = "tis"
SAMPLE = (SAMPLES / MESSAGE_TYPE / "valid.json").read_text("utf-8")


def _pg_schema(url: str) -> tuple[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_store_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", (admin, schema)


def _drop(handle: Any) -> None:
    admin, schema = handle
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


# -- drain to the simulator --------------------------------------------------------------


def _gateway_config(env: BenchEnv, name: str, url: str, **delivery: Any) -> Path:
    """A gateway config of this run over ``url`` on its own port, delivering to the platform
    simulator with the crash tests' short timeouts, fast retries and short leases."""
    config, _ = env.variant(
        name,
        api={"port": free_port()},
        store={"url": url},
        ecase={"connect_timeout": 0.5, "operation_timeout": 2},
        institutions={
            INSTITUTION: {"retry": {"base_delay": 0.05, "max_delay": 0.3, "max_attempts": 1000}}
        },
        delivery={
            "enabled": True,
            "poll_interval": 0.05,
            "batch_size": 10,
            "lease_seconds": 4,
            **delivery,
        },
        logging={"environment": "production", "level": "WARNING"},
    )
    return config


def post_notification(client: httpx.Client, gateway: str, case: str) -> str | None:
    """POST one execution notification for ``case``; its id on 202, None if refused."""
    body = SAMPLE.replace("K30-0412-26/14", case)
    try:
        r = client.post(
            f"{gateway}/v1/outbound/{MESSAGE_TYPE}",
            content=body,
            headers={"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
        )
    except httpx.HTTPError:
        return None
    return str(r.json()["id"]) if r.status_code == 202 else None


def received(sim: Proc) -> dict[str, Any]:
    """What the simulated institution behind the platform received, and its duplicates."""
    data: dict[str, Any] = httpx.get(
        f"{sim.url}/sim/ecase/received/{INSTITUTION}", timeout=10
    ).json()
    return data


def drain(env: BenchEnv, url: str, instances: int, n: int) -> dict[str, Any]:
    """Queue ``n`` messages with delivery off, then time ``instances`` gateways draining them
    to the simulated TIS behind the E-case platform simulator."""
    from gateway.sim import InstitutionSim

    tag = uuid.uuid4().hex[:6]
    sim = sim_proc(env.config, "ecase", f"drain-sim-{tag}")
    sim.start()
    loader = gateway_proc(_gateway_config(env, f"loader-{tag}", url, enabled=False), "loader")
    loader.start()
    # Reply routing: the notifications answer a court ruling, which must be in the inbox.
    body = SAMPLE.encode()
    ruling = decision_envelope(InstitutionSim(env.settings, INSTITUTION), body)
    answer = httpx.post(
        f"{loader.url}/soap/ecase",
        content=ruling,
        headers=soap_headers("urn:lv:ecase:plus:v1", "SubmitCourtRuling"),
        timeout=10,
    )
    answer.raise_for_status()
    t0 = time.perf_counter()
    with httpx.Client(timeout=10) as client:
        ids = [post_notification(client, loader.url, f"K-{i % 50}") for i in range(n)]
    enqueue_s = time.perf_counter() - t0
    loader.stop()
    gws = [
        gateway_proc(_gateway_config(env, f"gw{i}-{tag}", url), f"gw{i}-{tag}")
        for i in range(instances)
    ]
    for g in gws:
        g.start()
    started = time.perf_counter()
    want = {i for i in ids if i}
    snap = received(sim)
    while time.perf_counter() - started < 300:
        snap = received(sim)
        if len(snap["received"]) >= len(want):
            break
        time.sleep(0.1)
    drained_s = time.perf_counter() - started
    for g in gws:
        g.stop()
    sim.stop()
    return {
        "messages": len(want),
        "instances": instances,
        "api_enqueue_per_s": round(len(want) / enqueue_s, 1),
        "drain_per_s": round(len(snap["received"]) / drained_s, 1),
        "delivered": len(snap["received"]),
        "duplicates": snap["duplicates"],
        "refused_by_simulator": len(snap["rejected"]),
    }


# -- enqueue and claim at backlog sizes --------------------------------------------------


def _backlog(store: Store, size: int) -> float:
    """Bulk-insert ``size`` pending rows with plain SQL (5000 cases round-robin)."""
    now = utcnow()
    t0 = time.perf_counter()
    chunk = 20_000
    with store.engine.begin() as conn:
        for start in range(0, size, chunk):
            conn.execute(
                insert(outbox),
                [
                    {
                        "message_id": f"b-{i}",
                        "partner": INSTITUTION,
                        "operation": OPERATION,
                        "message_type": MESSAGE_TYPE,
                        "ordering_key": f"K-{i % 5000}",
                        "correlation_id": None,
                        "payload": b"<x/>" * 200,
                        "payload_sha256": "0" * 64,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(start, min(start + chunk, size))
                ],
            )
    return time.perf_counter() - t0


def rates(url: str, size: int, seconds: float = 10.0) -> dict[str, Any]:
    """Enqueue (accept_outbound, one durable transaction each) and claim rates over ``size``."""
    engine = create_store_engine(url)
    migrate(engine)
    store = Store(engine)
    fill_s = _backlog(store, size)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE outbox"))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds and n < 2000:
        store.outbox.accept(
            OutboundRecord(
                message_id=f"e-{uuid.uuid4().hex}",
                partner=INSTITUTION,
                operation=OPERATION,
                message_type=MESSAGE_TYPE,
                payload=b"<x/>" * 200,
                ordering_key=f"E-{n % 100}",
                correlation_id=None,
                idempotency_key=uuid.uuid4().hex,
                request_sha256="0" * 64,
            )
        )
        n += 1
    enqueue = n / (time.perf_counter() - t0)
    claimed, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds and claimed < 4000:
        rows = store.outbox.claim_due("bench", 20, 600)
        if not rows:
            break
        claimed += len(rows)
    claim = claimed / (time.perf_counter() - t0)
    engine.dispose()
    return {
        "backlog": size,
        "fill_seconds": round(fill_s, 1),
        "enqueue_per_s": round(enqueue, 1),
        "claim_rows_per_s": round(claim, 1),
    }


# -- memory ------------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss(url: str, total: int, seconds: float = 240) -> dict[str, Any]:
    """Accept, claim and deliver ``total`` messages through the store; RSS every tenth."""
    engine = create_store_engine(url)
    migrate(engine)
    store = Store(engine)
    samples: list[tuple[int, float]] = []
    done, t0 = 0, time.perf_counter()
    step = max(total // 10, 1)
    while done < total and time.perf_counter() - t0 < seconds:
        for _ in range(100):
            store.outbox.accept(
                OutboundRecord(
                    message_id=f"r-{done}-{uuid.uuid4().hex[:8]}",
                    partner=INSTITUTION,
                    operation=OPERATION,
                    message_type=MESSAGE_TYPE,
                    payload=b"<x/>" * 200,
                    ordering_key=None,
                    correlation_id=None,
                    idempotency_key=uuid.uuid4().hex,
                    request_sha256="0" * 64,
                )
            )
        for row in store.outbox.claim_due("rss", 100, 600):
            store.outbox.mark_delivered(row, {"Status": "ACCEPTED"}, "rss")
        done += 100
        if done % step == 0:
            samples.append((done, round(_rss_mb(), 1)))
    engine.dispose()
    first = samples[1][1] if len(samples) > 1 else samples[0][1]
    growth = (samples[-1][1] - first) / first * 100 if samples else 0.0
    return {
        "messages": done,
        "seconds": round(time.perf_counter() - t0, 1),
        "rss_mb": samples,
        "growth_after_warmup_percent": round(growth, 1),
    }


def main() -> None:
    """Run the parts asked for and print / save the figures."""
    parser = argparse.ArgumentParser(prog="bench.delivery")
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--drain", type=int, default=400)
    parser.add_argument("--rss", type=int, default=100_000)
    parser.add_argument("--rss-seconds", type=float, default=240, help="time bound of the RSS run")
    parser.add_argument("--skip", default="", help="comma list of: drain,rates,rss")
    args = parser.parse_args()
    quiet_logging()
    skip = set(args.skip.split(","))
    out: dict[str, Any] = {"pg": bool(PG)}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = make_env(tmp)
        if "drain" not in skip:
            out["drain_sqlite_1"] = drain(env, f"sqlite:///{tmp}/drain.db", 1, args.drain)
            print("drain sqlite x1", out["drain_sqlite_1"], flush=True)
            if PG:
                url, handle = _pg_schema(PG)
                migrate(create_store_engine(url))
                out["drain_pg_2"] = drain(env, url, 2, args.drain)
                print("drain postgres x2", out["drain_pg_2"], flush=True)
                _drop(handle)
        if "rates" not in skip:
            for size in [int(s) for s in args.sizes.split(",")]:
                r = rates(f"sqlite:///{tmp}/rates-{size}.db", size)
                out[f"rates_sqlite_{size}"] = r
                print("rates sqlite", r, flush=True)
                if PG:
                    url, handle = _pg_schema(PG)
                    r = rates(url, size)
                    out[f"rates_pg_{size}"] = r
                    print("rates postgres", r, flush=True)
                    _drop(handle)
        if "rss" not in skip:
            shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp
            db = shm / f"rss-{uuid.uuid4().hex[:6]}.db"
            try:
                out["rss_sqlite_shm"] = rss(f"sqlite:///{db}", args.rss, args.rss_seconds)
            finally:
                for p in shm.glob(f"{db.name}*"):
                    p.unlink()
            print("rss", out["rss_sqlite_shm"], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "delivery.json").write_text(json.dumps(out, indent=2), "utf-8")


if __name__ == "__main__":
    main()
