"""``plus-gateway reports indicators|usage|synthesize``.

- ``indicators --year 2027 [--json]``: the result indicators against their targets, with
  small bar charts (rich), or as JSON.
- ``usage --from 2027-01 [--to 2027-12] [--format json|csv]``: the usage counters, as the
  local API's ``GET /v1/reports/eservices`` answers them.
- ``synthesize --year 2027 [--uses N] [--clients N] [--seed S]``: a year of synthetic usage
  written through the usage counters, and the year's active clients as PLUS would send them;
  refused when the year already has uses (``--add`` to add anyway).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.store import Store

__all__ = ["add_reports_parser", "reports_command"]


def add_reports_parser(sub: Any, whoami: str) -> argparse.ArgumentParser:
    """Add ``reports ...`` to the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "reports", help="e-service usage and the result indicators"
    )
    rsub = p.add_subparsers(dest="reports_command", required=True)
    pi = rsub.add_parser("indicators", help="the result indicators of a year vs their targets")
    pi.add_argument("--year", type=int, required=True)
    pi.add_argument("--json", action="store_true", help="print JSON")
    pu = rsub.add_parser("usage", help="e-service uses by month, e-service, recipient, outcome")
    pu.add_argument("--from", dest="first", required=True, help="first month YYYY-MM")
    pu.add_argument("--to", dest="last", help="last month YYYY-MM (default: --from)")
    pu.add_argument("--format", choices=["json", "csv"], default="json")
    ps = rsub.add_parser("synthesize", help="write a year of synthetic usage (demo, tests)")
    ps.add_argument("--year", type=int, required=True)
    ps.add_argument("--uses", type=int, default=12_000)
    ps.add_argument("--clients", type=int, default=17_500, help="active clients in the year")
    ps.add_argument("--seed", type=int, default=2027)
    ps.add_argument("--add", action="store_true", help="add to a year that has uses already")
    ps.add_argument("--actor", default=whoami)
    return p


def _year(value: int) -> int:
    if not 1900 <= value <= 2999:
        raise ConfigError(f"--year {value}: expected a year 1900..2999")
    return value


def reports_command(
    args: argparse.Namespace, settings: Settings, store_factory: Callable[[], Store]
) -> int:
    """Run ``reports <subcommand>``; returns the exit status."""
    if args.reports_command == "indicators":
        from rich.console import Console

        from gateway.reports.indicators import default_indicator_specs, indicator_report
        from gateway.reports.render import render_indicators

        year = _year(args.year)
        specs = default_indicator_specs(settings.paths.mappings.resolve())
        report = indicator_report(store_factory(), year, specs)
        if args.json:
            print(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            render_indicators(report, Console())
        return 0
    if args.reports_command == "usage":
        from gateway.reports.usage import MonthRangeError, parse_months, usage_csv, usage_report

        try:
            months = parse_months(args.first, args.last, where="option")
        except MonthRangeError as exc:
            raise ConfigError(str(exc).replace("option.", "--")) from None
        report = usage_report(store_factory(), months)
        if args.format == "csv":
            sys.stdout.write(usage_csv(report))
        else:
            print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    from gateway.eservices.usage import usage_key
    from gateway.reports.synthetic import synthesize_year

    year = _year(args.year)
    if args.uses < 0 or args.clients < 1:
        raise ConfigError("--uses must be >= 0 and --clients >= 1")
    store = store_factory()
    if store.usage.rows(f"{year}-01", f"{year}-12") and not args.add:
        raise ConfigError(f"{year} has uses already; pass --add to add synthetic ones")
    totals = synthesize_year(
        store,
        year,
        key=usage_key(settings),
        uses=args.uses,
        active_clients=args.clients,
        seed=args.seed,
    )
    store.indicators.put_totals(str(year), {"active_clients": args.clients}, actor=args.actor)
    print(
        json.dumps(
            {
                "year": year,
                "uses": totals.uses,
                "served": totals.served,
                "by_outcome": dict(totals.by_outcome),
                "distinct_clients": totals.distinct_clients,
                "active_clients": totals.active_clients,
            },
            indent=2,
        )
    )
    return 0
