"""E-service usage counting, reports and the data scope, each against a floor.

``python -m bench.usage [--postgres URL]`` measures, in one bounded run:

* counting: eight threads over two engines (two instances) recording uses, one transaction
  per use (``record_eservice_use``: the counter upsert and the client row), against two floors:
  the same number of one-row INSERT transactions into a scratch table, and of transactions
  adding one to a single hot row (every use here hits the same counter, the worst case);
* a synthetic year of 18,000 uses written through the counters (batched as the generator does),
  then the year's usage report and indicator report;
* ``apply_scope`` on an over-sharing answer of 200 clients, against ``copy.deepcopy`` of it
  (the least a function returning a stripped copy could do).

A benchmark, not a test: it prints figures and never fails on a slow result.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from gateway.eservices.scope import apply_scope
from gateway.reports.indicators import indicator_report
from gateway.reports.synthetic import synthesize_year
from gateway.reports.usage import parse_months, usage_report
from gateway.store import Database, Store, create_store_engine, migrate
from gateway.store.usage import UsageCounts

THREADS = 8


def _threads(per_thread: int, work: Callable[[int, int], None]) -> float:
    start = threading.Barrier(THREADS + 1)

    def run(n: int) -> None:
        start.wait()
        for i in range(per_thread):
            work(n, i)

    pool = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for t in pool:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in pool:
        t.join()
    return time.perf_counter() - began


def counting(url: str, per_thread: int) -> dict[str, float]:
    """Uses per second (upsert + client row) vs one-row INSERT transactions."""
    engines = [create_store_engine(url), create_store_engine(url)]
    migrate(engines[0])
    usage = [UsageCounts(Database(e)) for e in engines]
    dbs = [Database(e) for e in engines]
    with engines[0].begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_floor"))
        conn.execute(text("CREATE TABLE bench_floor (id VARCHAR(40) PRIMARY KEY, v INTEGER)"))
        conn.execute(text("DROP TABLE IF EXISTS bench_hot"))
        conn.execute(text("CREATE TABLE bench_hot (id INTEGER PRIMARY KEY, v INTEGER)"))
        conn.execute(text("INSERT INTO bench_hot VALUES (1, 0)"))
    at = datetime(2027, 6, 15, tzinfo=UTC)

    def use(n: int, i: int) -> None:
        usage[n % 2].record(
            at=at,
            eservice="my_probation_data",
            recipient_type="client",
            outcome="answered",
            client_key=f"c{(n * per_thread + i) % 5000}",
        )

    def floor(n: int, i: int) -> None:
        with dbs[n % 2].transaction() as conn:
            conn.execute(text("INSERT INTO bench_floor VALUES (:id, 1)"), {"id": uuid.uuid4().hex})

    def hot(n: int, i: int) -> None:
        with dbs[n % 2].transaction() as conn:
            conn.execute(text("UPDATE bench_hot SET v = v + 1 WHERE id = 1"))

    total = THREADS * per_thread
    # Alternate, best of two each: the machine is shared.
    gw, fl, ht = [], [], []
    for _ in range(2):
        fl.append(total / _threads(per_thread, floor))
        ht.append(total / _threads(per_thread, hot))
        gw.append(total / _threads(per_thread, use))
    for e in engines:
        e.dispose()
    return {
        "uses_per_s": round(max(gw)),
        "insert_floor_per_s": round(max(fl)),
        "hot_row_floor_per_s": round(max(ht)),
        "ratio_to_insert": round(max(fl) / max(gw), 2),
        "ratio_to_hot_row": round(max(ht) / max(gw), 2),
    }


def year(url: str) -> dict[str, float]:
    """Seconds to write a synthetic year of 18,000 uses and to report it."""
    engine = create_store_engine(url)
    migrate(engine)
    store = Store(engine)
    began = time.perf_counter()
    totals = synthesize_year(store, 2031, key=b"b" * 32, uses=18_000, seed=31)
    written = time.perf_counter() - began
    began = time.perf_counter()
    usage_report(store, parse_months("2031-01", "2031-12"))
    usage_s = time.perf_counter() - began
    began = time.perf_counter()
    indicator_report(store, 2031)
    indicators_s = time.perf_counter() - began
    engine.dispose()
    return {
        "uses": totals.uses,
        "write_s": written,
        "usage_report_s": usage_s,
        "indicator_report_s": indicators_s,
    }


def scope(repeat: int = 200) -> dict[str, float]:
    """Microseconds per apply_scope of a 200-client over-sharing answer vs deepcopy."""
    secret = {"personal_code": "010190-12345", "address": "Rīga", "notes": "x" * 200}
    answer: dict[str, Any] = {
        "request_id": "R",
        "clients": [
            {
                "client_id": f"C{i}",
                "given_name": "A",
                "family_name": "B",
                "minor": i % 7 == 0,
                "work": {"hours_worked": i, "schedule": [{"date": "2027-01-01"}] * 5, **secret},
                **secret,
            }
            for i in range(200)
        ],
    }
    assigned = {f"C{i}" for i in range(0, 200, 2)}

    def timed(fn: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(3):
            began = time.perf_counter()
            for _ in range(repeat):
                fn()
            best = min(best, (time.perf_counter() - began) / repeat)
        return best * 1e6

    gw = timed(
        lambda: apply_scope(
            "employer", "probation_client_data", answer, assigned_client_ids=assigned, minor=False
        )
    )
    fl = timed(lambda: copy.deepcopy(answer))
    return {"scope_us": gw, "deepcopy_us": fl, "ratio": gw / fl}


def main() -> None:
    """Run every measurement and print it."""
    parser = argparse.ArgumentParser(prog="python -m bench.usage")
    parser.add_argument("--postgres", help="also on PostgreSQL (a throwaway schema)")
    parser.add_argument("--per-thread", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{Path(tmp) / 'bench.db'}"
        print("counting, SQLite:", counting(sqlite, args.per_thread))
        print("year, SQLite:", year(f"sqlite:///{Path(tmp) / 'year.db'}"))
    if args.postgres:
        schema = f"b_{uuid.uuid4().hex[:10]}"
        admin: Engine = create_store_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.postgres else "?"
        url = f"{args.postgres}{sep}options=-csearch_path%3D{schema}"
        try:
            print("counting, PostgreSQL:", counting(url, args.per_thread))
            print("year, PostgreSQL:", year(url))
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print("scope:", scope())


if __name__ == "__main__":
    main()
