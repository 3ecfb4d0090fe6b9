"""A year of the eight open data sets from a 17,500-client extract: build and publish.

``python -m bench.opendata`` (or ``python -m bench.run --opendata`` / ``--only-opendata``):

1. the twelve monthly extracts of a synthetic year (17,500 clients; input, not timed) are
   delivered through the intake (validated row by row, stored) in a child process: *intake*;
2. in a fresh child process, every month and then the year are built (all eight sets,
   disclosure control with the months frozen for the year, CSV, Data Package, DCAT-AP) and
   published through ckanapi to the CKAN simulator, itself a separate process
   (``plus-gateway sim ckan``): *build + publish*, its wall time and the child's peak RSS;
3. the *floor*, in another fresh child over the same stored extracts: the same counts with
   plain ``Counter`` passes, written as CSV, each file uploaded with one bare multipart POST
   to the same simulator (no suppression, no metadata, no CKAN protocol), so the ratio is
   what disclosure control, packaging and safe publication cost over the bare minimum.

Peak memory is ``ru_maxrss`` of each child (it includes the interpreter and libraries; the
RSS right after the imports is reported beside it). It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, Proc, free_port, machine, make_env

__all__ = ["report", "run"]

YEAR = 2026


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- children ------------------------------------------------------------------------------


def child_intake(config: Path, extracts: Path) -> dict[str, Any]:
    """Deliver the twelve extracts through the intake (as the API does), timed."""
    from gateway.config import load_settings
    from gateway.opendata.extract import ExtractCodes
    from gateway.opendata.service import receive_extract
    from gateway.store import Store, create_store_engine, migrate

    settings = load_settings(config)
    engine = create_store_engine(settings.store.url)
    migrate(engine)
    store = Store(engine)
    codes = ExtractCodes.load(settings.paths.mappings)
    base_rss = _rss_mib()
    per: dict[str, float] = {}
    rows = 0
    started = time.perf_counter()
    for month in range(1, 13):
        period = f"{YEAR}-{month:02d}"
        t0 = time.perf_counter()
        with (extracts / f"{period}.csv").open("rb") as fh:
            received = receive_extract(
                store, codes, period=period, fmt="csv", lines=fh, actor="bench"
            )
        assert received.accepted, received.errors[:3]
        per[period] = round(time.perf_counter() - t0, 2)
        rows = received.rows
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "per_extract_seconds": per,
        "december_rows": rows,
        "rss_after_imports_mib": round(base_rss, 1),
        "peak_rss_mib": round(_rss_mib(), 1),
    }


def child_publish(config: Path) -> dict[str, Any]:
    """Build and publish every month and the year, timed; the child's peak RSS."""
    from gateway.config import load_settings
    from gateway.opendata.service import publish
    from gateway.store import Store, create_store_engine

    settings = load_settings(config)
    store = Store(create_store_engine(settings.store.url))
    base_rss = _rss_mib()
    per: dict[str, float] = {}
    suppressed = 0
    started = time.perf_counter()
    for period in [*(f"{YEAR}-{m:02d}" for m in range(1, 13)), str(YEAR)]:
        t0 = time.perf_counter()
        result = publish(settings, store, period)
        assert set(result["published"]["sets"].values()) == {"added"}, result["published"]
        per[period] = round(time.perf_counter() - t0, 2)
        suppressed += sum(s["suppressed"] for s in result["sets"].values())
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "per_period_seconds": per,
        "suppressed_cells": suppressed,
        "rss_after_imports_mib": round(base_rss, 1),
        "peak_rss_mib": round(_rss_mib(), 1),
    }


def child_floor(config: Path) -> dict[str, Any]:
    """The bare minimum: the same counts by Counter passes, CSV, one multipart POST each."""
    import requests

    from gateway.config import load_settings
    from gateway.opendata.datasets import PeriodSpan
    from gateway.opendata.service import load_extract_rows
    from gateway.store import Store, create_store_engine

    settings = load_settings(config)
    store = Store(create_store_engine(settings.store.url))
    url = settings.opendata.ckan.url.rstrip("/") + "/api/action/resource_create_floor"
    session = requests.Session()
    started = time.perf_counter()
    files = 0
    for period in [*(f"{YEAR}-{m:02d}" for m in range(1, 13)), str(YEAR)]:
        span = PeriodSpan.of(period)
        rows = load_extract_rows(store, period)
        active = [
            r
            for r in rows
            if r.start_date <= span.last_day
            and (r.closing_date is None or r.closing_date >= span.first_day)
        ]
        closed = [
            r
            for r in rows
            if r.closing_date is not None and span.first_day <= r.closing_date <= span.last_day
        ]
        tables: dict[str, Counter[tuple[Any, ...]]] = {
            "ds1": Counter(),
            "ds3": Counter(),
            "ds4": Counter(),
            "ds5": Counter(),
            "ds6": Counter(),
            "ds8": Counter(),
        }
        for r in active:
            age = span.year - r.birth_year
            for key in (
                ("sex", r.sex),
                ("age", age // 10),
                ("offence", r.sexual_offence, r.violent_offence),
                ("activity", r.economic_activity_start),
                ("total",),
            ):
                tables["ds1"][(r.function_subtype, *key)] += 1
            tables["ds3"][(r.programme_participation,)] += 1
        for r in closed:
            tables["ds4"][(r.economic_activity_start, r.economic_activity_end)] += 1
            tables["ds5"][(r.mediation_outcome,)] += 1
            tables["ds6"][(r.reoffended,)] += 1
        tables["ds8"][("persons",)] = len({r.person_id for r in active})
        tables["ds8"][("clients",)] = len(active)
        for name, counts in tables.items():
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for key, value in sorted(counts.items(), key=str):
                writer.writerow([period, *key, value])
            session.post(
                url, files={"upload": (f"{name}.csv", buffer.getvalue().encode())}, timeout=30
            )
            files += 1
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "files": files,
        "peak_rss_mib": round(_rss_mib(), 1),
    }


def _child(kind: str, *args: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.opendata", "--child", kind, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{kind} child failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- the run -------------------------------------------------------------------------------


def run(clients: int = 17_500, repeats: int = 2) -> dict[str, Any]:
    """Intake, then build + publish and the floor alternated ``repeats`` times; figures."""
    from gateway.opendata.synthetic import SyntheticYear, extract_csv

    with tempfile.TemporaryDirectory(prefix="bench-opendata-") as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        env = make_env(
            tmp,
            opendata={
                "datasets": list(range(1, 9)),
                "output": str(tmp / "opendata"),
                "ckan": {"url": f"http://127.0.0.1:{port}", "api_key": "bench-key"},
            },
        )
        config = env.config
        extracts = tmp / "extracts"
        extracts.mkdir()
        population = SyntheticYear(YEAR, clients=clients)
        for month in range(1, 13):
            with (extracts / f"{YEAR}-{month:02d}.csv").open("w", encoding="utf-8") as fh:
                fh.writelines(extract_csv(population.extract(month)))
        size = (extracts / f"{YEAR}-12.csv").stat().st_size
        print(f"[opendata] intake of 12 extracts ({clients} clients a year) ...")
        intake = _child("intake", config, extracts)
        runs: dict[str, list[dict[str, Any]]] = {"publish": [], "floor": []}
        # Alternated, a fresh CKAN simulator each time, best of `repeats`: the machine may be
        # shared, and the minimum is the least disturbed measurement of both.
        for _ in range(repeats):
            for kind in ("publish", "floor"):
                ckan = Proc(config, ["sim", "ckan"], f"http://127.0.0.1:{port}", tmp / "ckan.log")
                ckan.start(health="/api/3/action/status_show")
                try:
                    print(f"[opendata] {kind}: 12 months and the year, all eight sets ...")
                    runs[kind].append(_child(kind, config))
                finally:
                    ckan.stop()
        published = min(runs["publish"], key=lambda r: r["seconds"])
        floor = min(runs["floor"], key=lambda r: r["seconds"])
        return {
            "when": date.today().isoformat(),
            "machine": machine(),
            "clients_a_year": clients,
            "december_extract_bytes": size,
            "intake": intake,
            "build_publish": published,
            "floor": floor,
            "ratio_to_floor": round(published["seconds"] / max(floor["seconds"], 1e-9), 1),
            "all_runs_seconds": {k: [r["seconds"] for r in v] for k, v in runs.items()},
        }


def report(result: dict[str, Any]) -> None:
    """Print the figures."""
    bp, fl, it = result["build_publish"], result["floor"], result["intake"]
    print(
        f"  intake of 12 extracts: {it['seconds']} s (December: {it['december_rows']} rows, "
        f"{result['december_extract_bytes'] / 1e6:.1f} MB, "
        f"{it['per_extract_seconds'][f'{YEAR}-12']} s), peak RSS {it['peak_rss_mib']} MiB"
    )
    print(
        f"  build + publish a year (12 months + the year, 8 sets): {bp['seconds']} s, "
        f"peak RSS {bp['peak_rss_mib']} MiB (after imports {bp['rss_after_imports_mib']} "
        f"MiB), {bp['suppressed_cells']} cells suppressed; the year alone "
        f"{bp['per_period_seconds'][str(YEAR)]} s"
    )
    print(
        f"  floor (Counter + CSV + bare POST, {fl['files']} files): {fl['seconds']} s; "
        f"ratio {result['ratio_to_floor']}x"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point (also the children's)."""
    p = argparse.ArgumentParser(prog="bench.opendata")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--clients", type=int, default=17_500)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    if args.child:
        from bench.common import quiet_logging

        quiet_logging()
        kind, *paths = args.child
        func = {"intake": child_intake, "publish": child_publish, "floor": child_floor}[kind]
        print(json.dumps(func(*map(Path, paths))))
        return 0
    result = run(args.clients, args.repeats)
    report(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "opendata.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {RESULTS / 'opendata.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
