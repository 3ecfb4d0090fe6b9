"""Publishing availability to a real CalDAV server (Radicale on loopback): full and incremental.

``python -m bench.calendar`` (also ``python -m bench.run --calendar``) measures, in one run:

* **full sync**: 50 resources, each with working hours (five weekly closed intervals) and a
  year of busy time (four weekly series until a year ahead and two one-off blocks a month,
  so 33 objects and about 230 busy occurrences per resource), published
  by ``CalendarSync.publish`` into an empty home collection: build every object, create the
  collections, list them, PUT each with ``If-None-Match: *``, record its hash and ETag;
* **incremental run**: the next run after PLUS changed 1 % of the blocks (a few per resource
  on a tenth of the resources): list each collection, compare, PUT only the changed ones;
* an **idle run**: nothing changed;
* the **floor**, in the same run against a second Radicale of the same kind (also empty at
  the start, since Radicale's cost per write grows with what it stores): the same bytes
  written by a bare keep-alive httpx client (MKCALENDAR + PUT per object, no listing, no
  hashing, no store), and for the incremental run the same PROPFINDs and the PUTs of the
  objects that changed, done bare. Ratios are to that floor.

It is a benchmark, not a test: it never fails on a slow result.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import httpx

from bench.common import RESULTS, free_port, machine, quiet_logging

RESOURCES = 50


def _settings(tmp: Path, url: str, home: str) -> Any:
    from gateway.config import load_settings
    from gateway.signing.keys import init_keys

    keys = tmp / "keys"
    init_keys(keys, ["gateway", "tis-sim", "prois-sim", "ievp-sim", "em-sim", "viss-sim"])
    institutions = {
        n: {"trust": {"certificates": [str(keys / f"{n}-sim-cert.pem")]}}
        for n in ("tis", "prois", "ievp", "em")
    }
    return load_settings(
        Path(__file__).resolve().parent.parent / "config.yaml",
        store={"url": f"sqlite:///{tmp}/gateway.db"},
        signing={
            "key": str(keys / "gateway-key.pem"),
            "certificate": str(keys / "gateway-cert.pem"),
        },
        institutions=institutions,
        registries={"trust": {"certificates": [str(keys / "viss-sim-cert.pem")]}},
        journal={"anchor_path": str(tmp / "anchors")},
        calendar={"url": url, "home": home},
    )


def _year_of_blocks(start: datetime, per_month: int, seed: int) -> list[Any]:
    """A year of a resource's busy time: four weekly series until a year from now (a
    consultation hour, a team meeting, ...) and ``per_month`` one-off blocks a month."""
    from gateway.calendar.service import BusyBlock

    until = (start + timedelta(days=365)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = [
        BusyBlock(
            f"w{k}",
            start + timedelta(days=k, hours=9 + 2 * k + seed % 2),
            start + timedelta(days=k, hours=10 + 2 * k + seed % 2),
            f"FREQ=WEEKLY;UNTIL={until}",
        )
        for k in range(4)
    ]
    for month in range(12):
        for k in range(per_month):
            day = start + timedelta(days=30 * month + 1 + (7 * k + seed) % 28)
            if day.weekday() >= 5:
                day += timedelta(days=2)
            begin = day.replace(hour=14, minute=0)
            out.append(BusyBlock(f"b{month}-{k}", begin, begin + timedelta(hours=2)))
    return out


def _floor_full(
    url: str, home: str, bodies: dict[str, dict[str, bytes]], auth: tuple[str, str]
) -> float:
    """The same objects written by a bare client: MKCALENDAR and PUT, nothing else."""
    with httpx.Client(auth=auth, timeout=30) as http:
        began = time.perf_counter()
        for rid, objects in bodies.items():
            http.request("MKCALENDAR", f"{url}{home}{rid}/")
            for name, body in objects.items():
                r = http.put(
                    f"{url}{home}{rid}/{name}",
                    content=body,
                    headers={"Content-Type": "text/calendar", "If-None-Match": "*"},
                )
                assert r.status_code in (201, 204), r.status_code
        return time.perf_counter() - began


def _floor_incremental(
    url: str,
    home: str,
    resources: list[str],
    changed: dict[str, dict[str, bytes]],
    auth: tuple[str, str],
) -> float:
    body = (
        b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:">'
        b"<d:prop><d:getetag/></d:prop></d:propfind>"
    )
    with httpx.Client(auth=auth, timeout=30) as http:
        began = time.perf_counter()
        for rid in resources:
            http.request("PROPFIND", f"{url}{home}{rid}/", content=body, headers={"Depth": "1"})
        for rid, objects in changed.items():
            for name, data in objects.items():
                http.put(
                    f"{url}{home}{rid}/{name}",
                    content=data,
                    headers={"Content-Type": "text/calendar"},
                )
        return time.perf_counter() - began


def run(resources: int = RESOURCES, per_month: int = 2, keep: bool = False) -> dict[str, Any]:
    """Full, incremental and idle publishing runs with their floors; returns the figures."""
    from gateway.calendar import Calendar
    from gateway.calendar.radicale import CALENDAR_SIDE, RadicaleServer
    from gateway.calendar.service import WorkingHours
    from gateway.store import Store, create_store_engine, migrate

    quiet_logging()
    tmp = Path(tempfile.mkdtemp(prefix="plusgw-bench-calendar-"))
    # Two servers of the same kind, both empty at the start: Radicale's cost per write grows
    # with what it already stores, so the floor must not write into the gateway's server.
    server, floor_server = (
        RadicaleServer(
            host="127.0.0.1",
            port=free_port(),
            storage=tmp / name,
            username="plus-gateway",
            password="plus-gateway",
        ).start()
        for name in ("radicale", "radicale-floor")
    )
    try:
        settings = _settings(tmp, server.url, "/plus-gateway/")
        engine = create_store_engine(settings.store.url)
        migrate(engine)
        store = Store(engine)
        calendar = Calendar(settings, store)
        service = calendar.service
        monday = datetime.now(UTC).date() + timedelta(days=7 - datetime.now(UTC).weekday())
        start = datetime.combine(monday, dtime(), tzinfo=service.default_tz)
        hours = [WorkingHours(d, dtime(9), dtime(17)) for d in range(5)]
        ids = [f"room-{i:03d}" for i in range(resources)]
        loaded = time.perf_counter()
        for i, rid in enumerate(ids):
            service.put_resource(
                rid, kind="room", label=f"Room {i}", location="Rīga", working_hours=hours
            )
            service.replace_busy(rid, _year_of_blocks(start, per_month, i))
        load_seconds = time.perf_counter() - loaded
        objects = {rid: calendar.sync.desired(store.calendar.resource(rid) or {}) for rid in ids}
        total = sum(len(v) for v in objects.values())
        print(
            f"[calendar] {resources} resources, {total} objects "
            f"({total / resources:.0f} each), loaded in {load_seconds:.1f} s"
        )

        # The floor first: the same bytes, written by a bare client into the other server.
        floor_home = f"/{CALENDAR_SIDE[0]}/"
        auth = CALENDAR_SIDE
        floor_full = _floor_full(floor_server.url, floor_home, objects, auth)
        print(f"[calendar] floor of the full sync: {floor_full:.1f} s")

        began = time.perf_counter()
        full = calendar.sync.publish()
        full_seconds = time.perf_counter() - began
        print(f"[calendar] full sync: {full_seconds:.1f} s ({full.written} written)")
        assert not full.failed, full.failed

        began = time.perf_counter()
        idle = calendar.sync.publish()
        idle_seconds = time.perf_counter() - began

        # 1 % of the blocks change: a few on a tenth of the resources.
        touched = ids[:: max(1, resources // 10)]
        per_resource = max(1, total // 100 // len(touched))
        for rid in touched:
            blocks = store.calendar.busy(rid)
            from gateway.calendar.service import BusyBlock

            new = [
                BusyBlock(
                    b["busy_id"],
                    b["start"],
                    b["end"] + (timedelta(minutes=30) if k < per_resource else timedelta()),
                    b["rrule"],
                )
                for k, b in enumerate(blocks)
            ]
            service.replace_busy(rid, new)
        began = time.perf_counter()
        incremental = calendar.sync.publish()
        incremental_seconds = time.perf_counter() - began
        print(
            f"[calendar] incremental run: {incremental_seconds:.2f} s "
            f"({incremental.written} written)"
        )

        # The objects the incremental run had to write, written bare into the floor server.
        changed = {}
        for rid in touched:
            after = calendar.sync.desired(store.calendar.resource(rid) or {})
            changed[rid] = {n: b for n, b in after.items() if objects[rid].get(n) != b}
        floor_incremental = _floor_incremental(floor_server.url, floor_home, ids, changed, auth)
        calendar.close()
        engine.dispose()
        out = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "server": "Radicale (filesystem storage) on loopback; the floor on a second one",
            "resources": resources,
            "objects": total,
            "full": {
                "seconds": round(full_seconds, 2),
                "written": full.written,
                "floor_seconds": round(floor_full, 2),
                "ratio_to_floor": round(full_seconds / floor_full, 2),
            },
            "incremental": {
                "seconds": round(incremental_seconds, 3),
                "written": incremental.written,
                "unchanged": incremental.unchanged,
                "floor_seconds": round(floor_incremental, 3),
                "ratio_to_floor": round(incremental_seconds / floor_incremental, 2),
            },
            "idle": {"seconds": round(idle_seconds, 3), "written": idle.written},
        }
        return out
    finally:
        server.stop()
        floor_server.stop()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def report(results: dict[str, Any]) -> None:
    """The human-readable lines."""
    f, i, d = results["full"], results["incremental"], results["idle"]
    print(f"\ncalendar publishing, {results['resources']} resources, {results['objects']} objects")
    print(f"  on {results['server']}")
    rows = [
        ("full sync", f["seconds"], f["floor_seconds"], f["ratio_to_floor"], f["written"]),
        ("incremental (1 %)", i["seconds"], i["floor_seconds"], i["ratio_to_floor"], i["written"]),
    ]
    for name, seconds, floor, ratio, written in rows:
        print(f"  {name:18} {seconds:9.3f} s  floor {floor:8.3f} s  x{ratio}  ({written} written)")
    print(f"  {'idle':18} {d['seconds']:9.3f} s  ({d['written']} written)")


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.calendar``."""
    p = argparse.ArgumentParser(prog="python -m bench.calendar", description=__doc__.split("\n")[0])
    p.add_argument("--resources", type=int, default=RESOURCES)
    p.add_argument(
        "--per-month", type=int, default=2, help="one-off busy blocks a month (default 2)"
    )
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    results = run(args.resources, args.per_month, args.keep)
    report(results)
    path = RESULTS / "calendar.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
