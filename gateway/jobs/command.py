"""``plus-gateway jobs ls|run|history``: the operator's side of scheduled jobs.

``jobs run NAME`` runs the current period in this process (a progress bar while it works);
``--period P`` another one (journaled, with ``--reason``); ``--force`` again after it ran
(journaled). Exit status 0 when the run succeeded, 1 when it failed or was skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from gateway.config import Settings
from gateway.jobs.runner import JobRunner
from gateway.store import Store

__all__ = ["add_jobs_parser", "jobs_command"]


def add_jobs_parser(sub: Any, whoami: str) -> argparse.ArgumentParser:
    """Add ``jobs ls|run|history`` to the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser("jobs", help="scheduled jobs (schedules/*.yaml)")
    jsub = p.add_subparsers(dest="jobs_command", required=True)
    pl = jsub.add_parser("ls", help="jobs, schedules, next fire time, latest run")
    pl.add_argument("--json", action="store_true")
    pr = jsub.add_parser("run", help="run a job now (this period, or --period P)")
    pr.add_argument("name")
    pr.add_argument("--period", help="the period to run (2026-10, 2026, 2026-10-05, ...)")
    pr.add_argument("--force", action="store_true", help="run again a period that ran")
    pr.add_argument("--reason", help="why (required with --force or a past --period)")
    pr.add_argument("--actor", default=whoami, help="who (journaled)")
    pr.add_argument("--json", action="store_true")
    ph = jsub.add_parser("history", help="runs of a job, newest first")
    ph.add_argument("name")
    ph.add_argument("--limit", type=int, default=20)
    ph.add_argument("--json", action="store_true")
    return p


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def jobs_command(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """Run one ``jobs`` subcommand."""
    runner = JobRunner(settings, store, owner=f"cli:{args.__dict__.get('actor', 'operator')}")
    if args.jobs_command == "ls":
        rows = runner.describe()
        if args.json:
            _print_json(rows)
            return 0
        print(f"{'job':<22} {'schedule':<20} {'period':<6} {'next':<17} latest")
        for r in rows:
            latest = r["latest"]
            last = f"{latest['period']} {latest['status']}" if latest.get("period") else "-"
            nxt = f"{r['next_fire']:%Y-%m-%d %H:%M}" if r["next_fire"] else "disabled"
            print(f"{r['name']:<22} {r['schedule']:<20} {r['period']:<6} {nxt:<17} {last}")
        return 0
    if args.jobs_command == "history":
        runner.spec(args.name)
        runs = runner.runs.history(args.name, args.limit)
        if args.json:
            _print_json(runs)
            return 0
        for r in runs:
            who = f" by {r['actor']} ({r['reason']})" if r["forced"] else ""
            error = f" {r['last_error_code']}: {r['last_error']}" if r["last_error_code"] else ""
            print(f"{r['period']:<17} {r['status']:<9} attempts={r['attempts']}{who}{error}")
        return 0
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        transient=True,
        disable=args.json or not sys.stderr.isatty(),
        console=None,
    ) as bar:
        task = bar.add_task(args.name, total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total or None, description=f"{args.name} {what}")

        outcome = runner.run_now(
            args.name,
            period=args.period,
            force=args.force,
            actor=args.actor,
            reason=args.reason,
            progress=progress,
        )
    if args.json:
        _print_json(vars(outcome))
    else:
        print(f"{outcome.job} {outcome.period}: {outcome.status} (attempt {outcome.attempt})")
        if outcome.error:
            print(f"  {outcome.error_code or ''} {outcome.error}".rstrip(), file=sys.stderr)
        if outcome.result:
            print(json.dumps(outcome.result, indent=2, ensure_ascii=False, default=str))
    return 0 if outcome.status == "succeeded" else 1
