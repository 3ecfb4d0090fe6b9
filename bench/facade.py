"""The volunteer facade's public list under load: 10,000 opportunities, 100 concurrent readers.

``python -m bench.facade`` (or ``python -m bench.run --only-facade``) seeds 10,000 postings of
50 organisations into a fresh SQLite store, starts the real gateway (``python -m gateway serve``
in a subprocess, delivery off) and sends ``GET /v1/volunteering/opportunities`` from 100
concurrent keep-alive clients (one asyncio loop), a fixed mix of queries: the default first
page, deeper pages, a municipality, a kind, a text search and a skill. It reports p50/p90/p99
and the rate, and the *floor* measured in the same run: the same queries answered in-process
by the store and the view code, one thread, no HTTP, JSON encoded, never from the page cache.
The ratio is p50 to the floor's mean. The load runs twice: with the configured page cache
(``facade.list_cache_seconds``, what users get) and with it off (every request queries the
store: the cost of a long tail of distinct queries); ``--cache on|off`` runs one. It is a
benchmark, not a test: it never fails on a slow result, and its request count and time are
bounded.
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
from urllib.parse import urlencode, urlsplit

from bench.common import (
    RESULTS,
    gateway_proc,
    latency_summary,
    machine,
    make_env,
    quiet_logging,
    tree_cpu_seconds,
)

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


def floor(settings: Any, rounds: int) -> dict[str, Any]:
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
    cap = settings.facade.list_count_cap
    times = []
    cpu0 = time.process_time()
    per_query: dict[str, list[float]] = {}
    for i in range(rounds):
        query = queries[i % len(queries)]
        t0 = time.perf_counter()
        rows, total, capped = facade.store.listings.public_page(
            query, datetime.now(UTC), count_cap=cap
        )
        body = {
            "items": [facade.opportunity_view(r) for r in rows],
            "total": total,
            "total_capped": capped,
        }
        json.dumps(body, default=str).encode()
        times.append(time.perf_counter() - t0)
        per_query.setdefault(json.dumps(_queries()[i % len(queries)]), []).append(times[-1])
    cpu = time.process_time() - cpu0
    runtime.close()
    out: dict[str, Any] = {
        "mean_ms": round(statistics.fmean(times) * 1000, 3),
        # CPU time, unlike the wall time above, hardly moves with other processes' load.
        "cpu_mean_ms": round(cpu / rounds * 1000, 3),
        "p50_ms": round(statistics.median(times) * 1000, 3),
        "per_query_p50_ms": {
            q: round(statistics.median(ts) * 1000, 2) for q, ts in per_query.items()
        },
    }
    return out


def _two_filter_queries() -> list[dict[str, Any]]:
    """Two equality filters at once, mostly sorted by title: the planner's choice matters."""
    return [
        {"municipality": "Cēsu novads", "kind": "on_demand", "sort": "title"},
        {"municipality": "Rīgas valstspilsēta", "kind": "regular", "sort": "title"},
        {"municipality": "Valmieras novads", "kind": "one_off", "sort": "title", "page": 3},
        {"municipality": "Ogres novads", "kind": "regular"},
        {"municipality": "Talsu novads", "kind": "on_demand", "sort": "-created"},
    ]


def _explain(runtime: Any, query: Any) -> list[str]:
    """SQLite's plan of every SELECT one public-list call runs (which index it walks)."""
    from sqlalchemy import event

    engine = runtime.store.db.engine
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        runtime.facade.store.listings.public_page(query, datetime.now(UTC), count_cap=1000)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    plans = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, params in seen:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
            plans.append(" / ".join(str(row[-1]) for row in cursor.fetchall()))
    finally:
        raw.close()
    return plans


def planner(settings: Any, rounds: int = 500) -> dict[str, Any]:
    """Two-filter queries on a copy of the store without and one with ``ANALYZE``.

    The two stores are queried in turn, query by query, so both see the same machine load
    (this machine's other work moves wall times by several times between minutes); CPU time
    is measured per store too.
    """
    import shutil

    from gateway.runtime import Runtime
    from gateway.store import Store, create_store_engine
    from gateway.store.facade import ListQuery
    from gateway.store.maintenance import analyze

    plain_path = Path(settings.store.url.removeprefix("sqlite:///"))
    analyzed_path = plain_path.with_name("analyzed.db")
    shutil.copyfile(plain_path, analyzed_path)
    engine = create_store_engine(f"sqlite:///{analyzed_path}")
    took = analyze(Store(engine).db)
    engine.dispose()
    analyzed_settings = settings.model_copy(
        update={"store": settings.store.model_copy(update={"url": f"sqlite:///{analyzed_path}"})}
    )
    runtimes = {
        "before": Runtime(settings, run_migrations=False),
        "after": Runtime(analyzed_settings, run_migrations=False),
    }
    mix = _two_filter_queries()
    cap = settings.facade.list_count_cap
    per_query: dict[str, dict[str, list[float]]] = {k: {} for k in runtimes}
    cpu = dict.fromkeys(runtimes, 0.0)
    for i in range(rounds):
        q = mix[i % len(mix)]
        for label, runtime in runtimes.items():
            facade = runtime.facade
            assert facade is not None
            c0, t0 = time.process_time(), time.perf_counter()
            rows, total, _capped = facade.store.listings.public_page(
                ListQuery(**q), datetime.now(UTC), count_cap=cap
            )
            body = {"items": [facade.opportunity_view(r) for r in rows], "total": total}
            json.dumps(body, default=str).encode()
            per_query[label].setdefault(json.dumps(q, ensure_ascii=False), []).append(
                time.perf_counter() - t0
            )
            cpu[label] += time.process_time() - c0
    out: dict[str, Any] = {"analyze_seconds": took, "rounds": rounds}
    for label, runtime in runtimes.items():
        every = [t for ts in per_query[label].values() for t in ts]
        out[label] = {
            "mean_ms": round(statistics.fmean(every) * 1000, 3),
            "cpu_mean_ms": round(cpu[label] / rounds * 1000, 3),
            "per_query_p50_ms": {
                q: round(statistics.median(ts) * 1000, 2) for q, ts in per_query[label].items()
            },
            "plan": _explain(runtime, ListQuery(**mix[0])),
        }
        runtime.close()
    return out


def run_planner(rounds: int = 500) -> dict[str, Any]:
    """Seed a fresh store and measure :func:`planner` (``--planner``)."""
    quiet_logging()
    tmp = Path(tempfile.mkdtemp(prefix="bench-facade-planner-"))
    env = make_env(tmp)
    print(f"[facade] seeding {POSTINGS} postings of {ORGANISATIONS} organisations ...")
    seed(env.settings)
    print("[facade] two-filter queries before and after ANALYZE ...")
    result = planner(env.settings, rounds)
    result.update(postings=POSTINGS, machine=machine())
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return result


class _Connection:
    """One keep-alive HTTP/1.1 connection that sends GETs and reads whole answers.

    The load generator shares the machine with the server, so it is kept cheap: about a
    tenth of a millisecond of CPU per request, where httpx's AsyncClient with 100
    connections took about 7 ms (more than the cached server's 2 ms: the figures would have
    measured the client). Answers here always carry Content-Length (no streaming routes).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str, timeout: float) -> int:
        """Send ``GET target`` and read the answer; returns the status."""
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        request = f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n"
        self.writer.write(request.encode())
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError("answer without Content-Length")
        await asyncio.wait_for(self.reader.readexactly(length), timeout)
        return int(head[9:12])

    async def close(self) -> None:
        """Close the socket."""
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def _load(url: str, requests: int, readers: int, timeout: float) -> dict[str, Any]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    targets = [f"{parts.path}?{urlencode(q)}" if q else parts.path for q in _queries()]
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    deadline = time.monotonic() + timeout
    connections = [_Connection(parts.hostname, parts.port) for _ in range(readers)]

    async def reader(n: int) -> None:
        nonlocal errors
        for i in counter:
            if time.monotonic() > deadline:
                return
            target = targets[(i + n) % len(targets)]
            t0 = time.perf_counter()
            status = await connections[n].get(target, 30)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors += 1

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(reader(n) for n in range(readers)))
    finally:
        wall = time.perf_counter() - t0
        for connection in connections:
            await connection.close()
    return {
        "requests": len(latencies),
        "errors": errors,
        "wall_s": round(wall, 2),
        "rate_per_s": round(len(latencies) / wall, 1),
        **latency_summary(latencies),
    }


def _serve_and_load(config: Path, requests: int, readers: int, label: str) -> dict[str, Any]:
    server = gateway_proc(config, name=f"gateway-{label}")
    server.start()
    assert server.popen is not None
    try:
        url = f"{server.url}/v1/volunteering/opportunities"
        asyncio.run(_load(url, 500, readers, 60))  # warm-up: connections, caches
        print(f"[facade] {label}: {requests} list requests from {readers} concurrent readers ...")
        server_cpu, own_cpu = tree_cpu_seconds(server.popen.pid), time.process_time()
        result = asyncio.run(_load(url, requests, readers, 300))
        # CPU per request: what the machine's load (other processes) does not change much.
        done = max(result["requests"], 1)
        result["server_cpu_ms_per_request"] = round(
            (tree_cpu_seconds(server.popen.pid) - server_cpu) / done * 1000, 2
        )
        result["client_cpu_ms_per_request"] = round(
            (time.process_time() - own_cpu) / done * 1000, 2
        )
        return result
    finally:
        server.stop()


def run(
    requests: int = 6_000, readers: int = READERS, keep: bool = False, cache: str = "both"
) -> dict[str, Any]:
    """Seed, measure the floor, serve, load; returns the figures.

    ``cache``: ``on`` (the configured page cache), ``off`` (``list_cache_seconds: 0``) or
    ``both`` (on for the main figures, off under ``uncached``).
    """
    quiet_logging()
    tmp = Path(tempfile.mkdtemp(prefix="bench-facade-"))
    env = make_env(tmp)
    print(f"[facade] seeding {POSTINGS} postings of {ORGANISATIONS} organisations ...")
    seed(env.settings)
    print("[facade] floor: the same queries in-process ...")
    base_floor = floor(env.settings, 2_000)
    uncached_config, _ = env.variant("uncached", facade={"list_cache_seconds": 0})
    runs: dict[str, dict[str, Any]] = {}
    if cache in ("on", "both"):
        runs["cached"] = _serve_and_load(env.config, requests, readers, "cached")
    if cache in ("off", "both"):
        runs["uncached"] = _serve_and_load(uncached_config, requests, readers, "uncached")
    for figures in runs.values():
        figures["p50_to_floor"] = round(figures["p50_ms"] / base_floor["mean_ms"], 2)
    result = dict(runs.get("cached") or runs["uncached"])
    result.update(
        page_cache_seconds=env.settings.facade.list_cache_seconds if "cached" in runs else 0,
        count_cap=env.settings.facade.list_count_cap,
        postings=POSTINGS,
        readers=readers,
        floor=base_floor,
        machine=machine(),
    )
    if "cached" in runs and "uncached" in runs:
        result["uncached"] = runs["uncached"]
    if not keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return result


def report(result: dict[str, Any]) -> None:
    """Print the figures."""

    def line(label: str, r: dict[str, Any]) -> str:
        return (
            f"{label}: p50 {r['p50_ms']} ms, p90 {r['p90_ms']} ms, p99 {r['p99_ms']} ms, "
            f"max {r['max_ms']} ms, {r['rate_per_s']}/s, {r['errors']} errors "
            f"(p50 = {r['p50_to_floor']} x floor); CPU per request: server "
            f"{r['server_cpu_ms_per_request']} ms, "
            f"load generator {r['client_cpu_ms_per_request']} ms"
        )

    print(
        f"\n[facade] public list, {result['postings']} postings, {result['readers']} readers, "
        f"total counted up to {result['count_cap']}; floor {result['floor']['mean_ms']} ms per "
        f"query in-process (store + view + JSON, no cache; {result['floor']['cpu_mean_ms']} ms "
        "of CPU)"
    )
    cache = result["page_cache_seconds"]
    print("  " + line(f"page cache {cache} s" if cache else "page cache off", result))
    if "uncached" in result:
        print("  " + line("page cache off", result["uncached"]))


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.facade``."""
    p = argparse.ArgumentParser(prog="python -m bench.facade", description=__doc__)
    p.add_argument("--requests", type=int, default=6_000)
    p.add_argument("--readers", type=int, default=READERS)
    p.add_argument("--keep", action="store_true")
    p.add_argument(
        "--cache",
        choices=["both", "on", "off"],
        default="both",
        help="load with the configured page cache, without it, or both (default)",
    )
    p.add_argument(
        "--planner",
        action="store_true",
        help="only two-filter queries in-process, before and after ANALYZE",
    )
    args = p.parse_args(argv)
    if args.planner:
        figures = run_planner()
        for label in ("before", "after"):
            f = figures[label]
            print(f"  {label} ANALYZE: mean {f['mean_ms']} ms (CPU {f['cpu_mean_ms']} ms)")
            for q, ms in f["per_query_p50_ms"].items():
                print(f"    {ms:8.2f} ms  {q}")
            for plan in f["plan"]:
                print(f"    plan: {plan}")
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "facade-planner.json").write_text(
            json.dumps(figures, indent=2, ensure_ascii=False), "utf-8"
        )
        return 0
    result = run(args.requests, args.readers, args.keep, args.cache)
    report(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "facade.json").write_text(json.dumps(result, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
