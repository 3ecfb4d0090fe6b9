"""The volunteer facade's public list under load: 10,000 opportunities, 100 concurrent readers.

``python -m bench.facade`` (or ``python -m bench.run --only-facade``) seeds 10,000 postings of
50 organisations into a fresh SQLite store, starts the real gateway (``python -m gateway serve``
in a subprocess, delivery off) and sends ``GET /v1/volunteering/opportunities`` from 100
concurrent keep-alive clients (one asyncio loop), a fixed mix of queries: the default first
page, deeper pages, a municipality, a kind, a text search and a skill. It reports p50/p90/p99
and the rate, and the *floor* measured in the same run: the same queries answered in-process
by the store and the view code, one thread, no HTTP, JSON encoded. The ratio is p50 to the
floor's mean. It is a benchmark, not a test: it never fails on a slow result, and its request
count and time are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import RESULTS, gateway_proc, latency_summary, machine, make_env, quiet_logging

__all__ = ["report", "run"]

POSTINGS = 10_000
ORGANISATIONS = 50
READERS = 100
_MUNICIPALITIES = [
    "Rīgas valstspilsēta",
    "Cēsu novads",
    "Valmieras novads",
    "Ogres novads",
    "Liepājas valstspilsēta",
    "Daugavpils valstspilsēta",
    "Talsu novads",
]
_KINDS = ["regular", "on_demand", "one_off"]
_SKILLS = ["Fotografēšana", "Vadīšana", "Angļu valoda", "Pirmā palīdzība", "Dārzkopība"]


def _queries() -> list[dict[str, Any]]:
    """The fixed mix every reader cycles through (the floor answers the same)."""
    return [
        {},
        {},
        {"page": 2},
        {"page": 25, "per_page": 20},
        {"municipality": "Cēsu novads"},
        {"kind": "on_demand"},
        {"q": "festivāls"},
        {"skill": "pirmā palīdzība"},
        {"digital": "true", "sort": "-created"},
        {"per_page": 50},
    ]


def seed(settings: Any) -> None:
    """10,000 future postings of 50 organisations, through the facade's store area."""
    from gateway.store import Store, create_store_engine, migrate
    from gateway.store.facade import FacadeStore

    engine = create_store_engine(settings.store.url)
    migrate(engine)
    facade = FacadeStore(Store(engine).db)
    rng = random.Random(12)
    now = datetime.now(UTC)
    per_org = POSTINGS // ORGANISATIONS
    for n in range(ORGANISATIONS):
        number = f"4{n:010d}"
        facade.listings.create_organisation(
            number,
            {
                "registration_number": number,
                "name": f"Biedrība {n}",
                "type": "association",
                "field": "culture",
                "contacts": {"email": f"org{n}@example.lv"},
                "website": "https://example.lv",
            },
        )
        items = []
        for i in range(per_org):
            digital = rng.random() < 0.15
            municipality = None if digital else rng.choice(_MUNICIPALITIES)
            starts = now + timedelta(days=rng.randint(20, 200), hours=rng.randint(0, 12))
            items.append(
                {
                    "external_ref": f"b-{i}",
                    "title": f"{rng.choice(['Festivāls', 'Talka', 'Nometne', 'Koncerts'])} {n}-{i}",
                    "place": {
                        "city": municipality and municipality.split()[0],
                        "municipality": municipality,
                        "digital": digital,
                    },
                    "starts_at": starts,
                    "ends_at": starts + timedelta(hours=4),
                    "expected_hours": 4.0,
                    "duties": "Palīdzēt organizatoriem; festivāls ar daudziem apmeklētājiem. " * 3,
                    "deadline": now + timedelta(days=rng.randint(1, 19)),
                    "desired_profile": "Atsaucība",
                    "skills": rng.sample(_SKILLS, 2),
                    "volunteers_needed": rng.randint(1, 30),
                    "benefits": "Pusdienas",
                    "kind": rng.choice(_KINDS),
                }
            )
        facade.listings.import_many(number, items)
    engine.dispose()


def floor(settings: Any, rounds: int) -> dict[str, float]:
    """The same queries in-process: store + views + JSON, one thread, no HTTP."""
    from gateway.runtime import Runtime
    from gateway.store.facade import ListQuery

    runtime = Runtime(settings, run_migrations=False)
    assert runtime.facade is not None
    facade = runtime.facade
    queries = []
    for q in _queries():
        args = {k: v for k, v in q.items() if k not in ("q", "digital")}
        queries.append(
            ListQuery(text=q.get("q"), digital=(q.get("digital") == "true") or None, **args)
        )
    times = []
    for i in range(rounds):
        query = queries[i % len(queries)]
        t0 = time.perf_counter()
        rows, total = facade.store.listings.public_page(query, datetime.now(UTC))
        body = {"items": [facade.opportunity_view(r) for r in rows], "total": total}
        json.dumps(body, default=str).encode()
        times.append(time.perf_counter() - t0)
    runtime.close()
    return {
        "mean_ms": round(statistics.fmean(times) * 1000, 3),
        "p50_ms": round(statistics.median(times) * 1000, 3),
    }


async def _load(url: str, requests: int, readers: int, timeout: float) -> dict[str, Any]:
    queries = _queries()
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    deadline = time.monotonic() + timeout
    limits = httpx.Limits(max_connections=readers, max_keepalive_connections=readers)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def reader(n: int) -> None:
            nonlocal errors
            for i in counter:
                if time.monotonic() > deadline:
                    return
                params = queries[(i + n) % len(queries)]
                t0 = time.perf_counter()
                r = await client.get(url, params=params)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(reader(n) for n in range(readers)))
        wall = time.perf_counter() - t0
    return {
        "requests": len(latencies),
        "errors": errors,
        "wall_s": round(wall, 2),
        "rate_per_s": round(len(latencies) / wall, 1),
        **latency_summary(latencies),
    }


def run(requests: int = 6_000, readers: int = READERS, keep: bool = False) -> dict[str, Any]:
    """Seed, measure the floor, serve, load; returns the figures."""
    quiet_logging()
    tmp = Path(tempfile.mkdtemp(prefix="bench-facade-"))
    env = make_env(tmp)
    print(f"[facade] seeding {POSTINGS} postings of {ORGANISATIONS} organisations ...")
    seed(env.settings)
    print("[facade] floor: the same queries in-process ...")
    base_floor = floor(env.settings, 2_000)
    server = gateway_proc(env.config)
    server.start()
    try:
        url = f"{server.url}/v1/volunteering/opportunities"
        asyncio.run(_load(url, 500, readers, 60))  # warm-up: connections, caches
        print(f"[facade] {requests} list requests from {readers} concurrent readers ...")
        result = asyncio.run(_load(url, requests, readers, 300))
    finally:
        server.stop()
    result.update(
        postings=POSTINGS,
        readers=readers,
        floor=base_floor,
        p50_to_floor=round(result["p50_ms"] / base_floor["mean_ms"], 1),
        machine=machine(),
    )
    if not keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return result


def report(result: dict[str, Any]) -> None:
    """Print the figures."""
    print(
        f"\n[facade] public list, {result['postings']} postings, {result['readers']} readers: "
        f"p50 {result['p50_ms']} ms, p90 {result['p90_ms']} ms, p99 {result['p99_ms']} ms, "
        f"max {result['max_ms']} ms, {result['rate_per_s']}/s, {result['errors']} errors; "
        f"floor {result['floor']['mean_ms']} ms per query in-process "
        f"(p50 = {result['p50_to_floor']} x floor)"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.facade``."""
    p = argparse.ArgumentParser(prog="python -m bench.facade", description=__doc__)
    p.add_argument("--requests", type=int, default=6_000)
    p.add_argument("--readers", type=int, default=READERS)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    result = run(args.requests, args.readers, args.keep)
    report(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "facade.json").write_text(json.dumps(result, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
