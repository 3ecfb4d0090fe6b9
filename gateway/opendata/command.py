"""``plus-gateway opendata build|publish|generate|load``.

- ``build --period P --out DIR``: the period's packages from the stored extract (or
  ``--extract FILE``), written to DIR; nothing is published.
- ``publish --period P``: run the publishing job for P now (``--force --reason`` to
  republish changed content; journaled), with a progress bar.
- ``generate --period YYYY-MM``: a synthetic extract (about 17,500 clients a year) to stdout
  or ``--out FILE``.
- ``load --period YYYY-MM FILE``: validate and store an extract from a file, as the API does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.store import Store

__all__ = ["add_opendata_parser", "opendata_command"]


def add_opendata_parser(sub: Any, whoami: str) -> argparse.ArgumentParser:
    """Add ``opendata ...`` to the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser("opendata", help="the eight open data sets")
    osub = p.add_subparsers(dest="opendata_command", required=True)
    pb = osub.add_parser("build", help="write a period's packages (CSV, datapackage, DCAT-AP)")
    pb.add_argument("--period", required=True, help="a month YYYY-MM or a year YYYY")
    pb.add_argument("--out", required=True, help="directory to write to")
    pb.add_argument("--extract", help="build from this extract file instead of the stored one")
    pb.add_argument("--all-sets", action="store_true", help="all eight, not the staged ones")
    pp = osub.add_parser("publish", help="publish a period to CKAN now (the publishing job)")
    pp.add_argument("--period", required=True, help="a month YYYY-MM or a year YYYY")
    pp.add_argument("--force", action="store_true", help="republish a period that ran")
    pp.add_argument("--reason", help="why (required with --force or a past period; journaled)")
    pp.add_argument("--actor", default=whoami)
    pg = osub.add_parser("generate", help="a synthetic extract for a month")
    pg.add_argument("--period", required=True, help="YYYY-MM")
    pg.add_argument("--clients", type=int, default=17_500, help="clients in the year")
    pg.add_argument("--seed", type=int, default=2026)
    pg.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    pg.add_argument("--out", help="file (default: stdout)")
    pl = osub.add_parser("load", help="validate and store an extract file (as the API does)")
    pl.add_argument("--period", required=True, help="YYYY-MM")
    pl.add_argument("file")
    pl.add_argument("--actor", default=whoami)
    return p


def _month(period: str) -> tuple[int, int]:
    try:
        year, month = int(period[:4]), int(period[5:7])
    except ValueError:
        raise ConfigError(f"--period {period!r}: expected YYYY-MM") from None
    if len(period) != 7 or not 1 <= month <= 12:
        raise ConfigError(f"--period {period!r}: expected YYYY-MM")
    return year, month


def opendata_command(
    args: argparse.Namespace, settings: Settings, store: Callable[[], Store]
) -> int:
    """Run one ``opendata`` subcommand; ``store`` opens the store when needed."""
    command = args.opendata_command
    if command == "generate":
        return _generate(args)
    if command == "load":
        return _load(args, settings, store())
    if command == "build":
        return _build(args, settings, store)
    return _publish(args, settings, store())


def _generate(args: argparse.Namespace) -> int:
    from gateway.opendata.synthetic import SyntheticYear, extract_csv, extract_jsonl

    year, month = _month(args.period)
    rows = SyntheticYear(year, clients=args.clients, seed=args.seed).extract(month)
    chunks = extract_csv(rows) if args.format == "csv" else extract_jsonl(rows)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    try:
        for chunk in chunks:
            out.write(chunk)
    finally:
        if args.out:
            out.close()
    return 0


def _file_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from fh


def _load(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    from gateway.opendata.extract import ExtractCodes
    from gateway.opendata.service import receive_extract

    _month(args.period)
    path = Path(args.file)
    fmt = "jsonl" if path.suffix in (".jsonl", ".ndjson") else "csv"
    received = receive_extract(
        store,
        ExtractCodes.load(settings.paths.mappings),
        period=args.period,
        fmt=fmt,
        lines=_file_lines(path),
        actor=args.actor,
        max_errors=settings.opendata.max_errors,
    )
    if received.accepted:
        print(f"extract {received.id} for {received.period}: {received.rows} rows accepted")
        return 0
    print(
        f"extract {received.id} for {received.period} refused: {received.error_count} error(s); "
        "the last good extract stays",
        file=sys.stderr,
    )
    for e in received.errors[:20]:
        print(f"  {e['path']}: {e['message']}", file=sys.stderr)
    return 1


def _build(args: argparse.Namespace, settings: Settings, store: Callable[[], Store]) -> int:
    from gateway.opendata.build import build_release
    from gateway.opendata.extract import ExtractCodes, ExtractInvalidError, ExtractValidator
    from gateway.opendata.service import load_extract_rows

    codes = ExtractCodes.load(settings.paths.mappings)
    options = settings.opendata
    if args.all_sets:
        options = options.model_copy(update={"datasets": tuple(range(1, 9))})
    if args.extract:
        path = Path(args.extract)
        month = f"{args.period}-12" if len(args.period) == 4 else args.period
        validator = ExtractValidator(codes, month, max_errors=settings.opendata.max_errors)
        with path.open(encoding="utf-8") as fh:
            source = (
                validator.jsonl_rows(fh)
                if path.suffix in (".jsonl", ".ndjson")
                else (validator.csv_rows(fh))
            )
            rows = list(source)
        if not validator.ok:
            raise ExtractInvalidError(
                f"{args.extract}: {validator.error_count} error(s)",
                details=validator.error_details(),
            )
    else:
        rows = load_extract_rows(store(), args.period)
    release = build_release(rows, args.period, codes, options)
    for directory in release.write(Path(args.out)):
        print(directory)
    print(json.dumps(release.summary(), indent=2), file=sys.stderr)
    return 0


def _publish(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    import argparse as _argparse

    from gateway.jobs.command import jobs_command
    from gateway.jobs.runner import load_jobs

    kind = "year" if len(args.period) == 4 else "month"
    names = [
        s.name
        for s in load_jobs(settings).values()
        if s.run == "opendata.publish" and s.period == kind
    ]
    if not names:
        raise ConfigError(f"no job in {settings.jobs.schedules} publishes {kind}ly open data")
    return jobs_command(
        _argparse.Namespace(
            jobs_command="run",
            name=names[0],
            period=args.period,
            force=args.force,
            reason=args.reason,
            actor=args.actor,
            json=False,
        ),
        settings,
        store,
    )
