"""Operator commands: ``plus-gateway queue ...`` and ``plus-gateway journal ...``.

Kept beside the delivery engine they operate on; ``gateway.cli`` only wires them in.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.store import Store
from gateway.store.anchor import (
    AnchorSigner,
    AnchorSink,
    AnchorVerifier,
    FileSink,
    load_anchors,
    sink_from_settings,
    write_anchor,
)
from gateway.store.queue_stats import stats as queue_stats
from gateway.store.verify import verify_journal

__all__ = ["add_journal_parser", "add_queue_parser", "journal_command", "queue_command"]

_STATUSES = ["pending", "sending", "delivered", "dead", "discarded"]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(value: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``2h`` or ``7d`` as a timedelta."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", value.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"not an age: {value!r} (use e.g. 90s, 15m, 2h, 7d)")
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2) or "s"])


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def add_queue_parser(sub: Any, whoami: str) -> argparse.ArgumentParser:
    """Add ``queue ls|show|replay|discard|stats`` to the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser("queue", help="inspect, replay, discard outbox")
    qsub = p.add_subparsers(dest="queue_command", required=True)

    def filters(pq: argparse.ArgumentParser) -> None:
        pq.add_argument("--partner")
        pq.add_argument("--operation", help="operation or message type")
        pq.add_argument("--code", "--reason-code", dest="code", help="last error code")
        pq.add_argument("--older-than", type=parse_age, help="age since accepted, e.g. 2h")

    pq = qsub.add_parser("ls", help="list outbound messages")
    pq.add_argument("--status", choices=_STATUSES)
    pq.add_argument("--stuck", action="store_true", help="sending with an expired lease")
    filters(pq)
    pq.add_argument("--limit", type=int, default=100)
    pq = qsub.add_parser("show", help="one message with its journal")
    pq.add_argument("id")
    pq = qsub.add_parser("replay", help="queue dead or stuck messages again (same ids)")
    pq.add_argument("id", nargs="?", help="one message id (or use --all-dead / --all-stuck)")
    pq.add_argument("--all-dead", action="store_true", help="every dead letter matching filters")
    pq.add_argument("--all-stuck", action="store_true", help="every row with an expired lease")
    filters(pq)
    pq.add_argument("--reason", required=True, help="why (journaled)")
    pq.add_argument("--actor", default=whoami, help="who (journaled)")
    pq = qsub.add_parser("discard", help="give up on a message for good (journaled)")
    pq.add_argument("id")
    pq.add_argument("--reason", required=True, help="why (journaled)")
    pq.add_argument("--actor", default=whoami, help="who (journaled)")
    pq = qsub.add_parser("stats", help="depth, oldest age, held messages and rates per partner")
    pq.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def add_journal_parser(sub: Any, whoami: str) -> argparse.ArgumentParser:
    """Add ``journal verify|anchor|purge`` to the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "journal", help="verify, anchor and purge the journal"
    )
    jsub = p.add_subparsers(dest="journal_command", required=True)
    pj = jsub.add_parser(
        "verify",
        help="check the hash chain, payload hashes and signed anchors; exit 1 naming the "
        "first bad entry",
    )
    pj.add_argument(
        "--anchors",
        type=Path,
        metavar="DIR",
        help="read anchors from this directory of anchors-*.jsonl (e.g. copied back from "
        "archive) instead of the configured sink",
    )
    pj.add_argument("--no-anchors", action="store_true", help="check the chain and payloads only")
    pj.add_argument(
        "--incremental",
        action="store_true",
        help="start after the newest signed anchor: only entries since it are read (run a full "
        "verification periodically: a change before the anchor shows only there)",
    )
    jsub.add_parser("anchor", help="write a signed checkpoint of the chain head to the sink now")
    pj = jsub.add_parser("purge", help="retention: remove payloads, keep hashes")
    pj.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    pj.add_argument("--actor", default=whoami, help="who (journaled)")
    return p


def queue_command(args: argparse.Namespace, store: Store) -> int:
    """Run one ``queue`` subcommand; returns the exit status."""
    command = args.queue_command
    if command == "ls":
        rows = store.outbox.messages(
            status=args.status,
            partner=args.partner,
            operation=args.operation,
            code=args.code,
            older_than=args.older_than,
            stuck=args.stuck,
            limit=args.limit,
        )
        for r in rows:
            print(
                f"{r['message_id']}  {r['status']:<9} {r['partner']:<6} {r['operation']:<34} "
                f"attempts={r['attempts']} {r['last_error_code'] or ''}"
            )
        print(f"{len(rows)} message(s)", file=sys.stderr)
        return 0
    if command == "show":
        row = store.outbox.get(args.id)
        if row is None:
            print(f"no outbound message {args.id}", file=sys.stderr)
            return 1
        _print_json({"message": row, "journal": store.journal.for_message(args.id)})
        return 0
    if command == "replay":
        return _replay(args, store)
    if command == "discard":
        if not store.outbox.discard(args.id, actor=args.actor, reason=args.reason):
            print(f"{args.id}: unknown, delivered, discarded or being sent", file=sys.stderr)
            return 1
        print(f"{args.id}: discarded")
        return 0
    if command == "stats":
        return _stats(store, as_json=args.json)
    raise ConfigError(f"unknown queue command {command}")


def _replay(args: argparse.Namespace, store: Store) -> int:
    if args.id:
        if not store.outbox.replay(args.id, actor=args.actor, reason=args.reason):
            print(f"{args.id}: unknown, delivered or being sent right now", file=sys.stderr)
            return 1
        print(f"{args.id}: queued again (same message id)")
        return 0
    if not (args.all_dead or args.all_stuck):
        print("give a message id, --all-dead or --all-stuck", file=sys.stderr)
        return 2
    rows = store.outbox.messages(
        status="dead" if args.all_dead else None,
        stuck=args.all_stuck,
        partner=args.partner,
        operation=args.operation,
        code=args.code,
        older_than=args.older_than,
        limit=None,
    )
    done = 0
    console = Console(stderr=True)
    columns = (
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("replay", total=len(rows))
        for row in rows:
            if store.outbox.replay(row["message_id"], actor=args.actor, reason=args.reason):
                done += 1
            progress.advance(task)
    print(f"{done} of {len(rows)} message(s) queued again (same message ids)")
    return 0 if done == len(rows) else 1


def _verify(args: argparse.Namespace, store: Store, settings: Settings | None) -> int:
    sink: AnchorSink | None = None
    if not args.no_anchors:
        sink = FileSink(args.anchors) if args.anchors else None
        if sink is None and settings is not None:
            sink = sink_from_settings(settings)
    anchors: list[Any] = []
    problems: list[str] = []
    if sink is not None:
        if settings is None:
            raise ConfigError("verifying anchors needs the configuration (certificates)")
        anchors, problems = load_anchors(sink, AnchorVerifier.from_settings(settings))
    since = max(anchors, key=lambda a: a.entry_id, default=None) if args.incremental else None
    if since is not None:
        verdict = verify_journal(
            store.db.engine, anchors=anchors, anchor_problems=problems, since=since
        )
    else:
        if args.incremental:
            print("no signed anchor to start from: verifying in full", file=sys.stderr)
        verdict = store.journal.verify(anchors=anchors, anchor_problems=problems)
    if not verdict.ok:
        where = f" at entry {verdict.bad_id}" if verdict.bad_id is not None else ""
        print(f"journal TAMPERED{where}: {verdict.problem}")
        print(f"({verdict.checked} entries verified before it)", file=sys.stderr)
        return 1
    print(
        f"journal intact: {verdict.checked} entries, head {verdict.head_id} "
        f"{verdict.head_hash or '-'}; {verdict.payloads} payloads match their hashes"
    )
    if verdict.since_id is not None:
        print(
            f"incremental: entries after {verdict.since_id} read, the ones up to it vouched for "
            "by its signed anchor (a full verification checks them)",
            file=sys.stderr,
        )
    if sink is None:
        print("anchors not checked: a cut tail or a full rewrite would not show", file=sys.stderr)
    elif verdict.anchored_id is None:
        print(
            f"no anchors in {sink.description}: a cut tail or a full rewrite would not show",
            file=sys.stderr,
        )
    else:
        print(
            f"{verdict.anchors} signed anchors hold ({sink.description}); the newest vouches "
            f"for entry {verdict.anchored_id}"
        )
    return 0


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _stats(store: Store, *, as_json: bool) -> int:
    stats = queue_stats(store.db)
    if as_json:
        _print_json(stats)
        return 0
    table = Table(title="outbox per partner (rates per minute, last 5 minutes)")
    for name in (
        "partner",
        "depth",
        "oldest",
        "pending",
        "sending",
        "dead",
        "held by dead",
        "delivered",
        "accepted/min",
        "delivered/min",
        "dead/min",
    ):
        table.add_column(name, justify="left" if name == "partner" else "right")
    for partner, s in sorted(stats.items()):
        counts = s["counts"]
        table.add_row(
            partner,
            str(s["depth"]),
            _age(s["oldest_age_seconds"]),
            str(counts.get("pending", 0)),
            str(counts.get("sending", 0)),
            str(counts.get("dead", 0)),
            str(s["held_by_dead"]),
            str(counts.get("delivered", 0)),
            f"{s['accepted_per_minute']:.1f}",
            f"{s['delivered_per_minute']:.1f}",
            f"{s['dead_per_minute']:.1f}",
        )
    Console(width=160).print(table)
    if any(s["held_by_dead"] for s in stats.values()):
        print(
            "held by dead: messages waiting behind a dead letter of the same case; "
            "replay or discard the dead one to release them"
        )
    return 0


def journal_command(
    args: argparse.Namespace, store: Store, settings: Settings | None = None
) -> int:
    """Run one ``journal`` subcommand; returns the exit status."""
    if args.journal_command == "verify":
        return _verify(args, store, settings)
    if args.journal_command == "anchor":
        if settings is None:
            raise ConfigError("journal anchor needs the configuration")
        sink = sink_from_settings(settings)
        if sink is None:
            raise ConfigError("journal.anchor_sink is none: there is nowhere to anchor")
        document = write_anchor(
            store, AnchorSigner.from_settings(settings), sink, settings.instance_name
        )
        print(
            f"anchored entry {document['entry_id']} ({document['count']} entries) "
            f"{document['entry_hash'] or '-'} in {sink.description}"
        )
        return 0
    if args.journal_command == "purge":
        n = store.journal.purge_payloads(timedelta(days=args.older_than), actor=args.actor)
        print(f"payloads removed from {n} journal entries older than {args.older_than} days")
        return 0
    raise ConfigError(f"unknown journal command {args.journal_command}")
