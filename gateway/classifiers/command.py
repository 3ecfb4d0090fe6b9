"""``plus-gateway classifiers ls|sync``: the operator's side of classifier refresh.

Exit status of ``sync``: 0 when everything is in sync, when the diff shows changes that could
be applied (without ``--apply``), or when they were applied; 1 when breaks (or a list the
service does not publish) block applying, or the service failed; 2 on a configuration or
usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from gateway.classifiers.client import ClassifierClient
from gateway.classifiers.sync import ClassifierReport, SyncReport, apply, local_classifiers, prepare
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.store import Store

__all__ = ["add_classifiers_parser", "classifiers_command"]


def add_classifiers_parser(sub: Any, whoami: str) -> argparse.ArgumentParser:
    """Add ``classifiers ls|sync`` to the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "classifiers", help="code lists: list them, sync them from the E-case service"
    )
    csub = p.add_subparsers(dest="classifiers_command", required=True)
    pc = csub.add_parser("ls", help="local classifiers: name, version, source, codes")
    pc.add_argument("--json", action="store_true", help="machine-readable output")
    pc = csub.add_parser(
        "sync", help="compare with the E-case shared-classifier service; --apply to write"
    )
    pc.add_argument("--name", action="append", help="only this classifier (repeatable)")
    pc.add_argument("--apply", action="store_true", help="write the changes (journaled)")
    pc.add_argument("--force", action="store_true", help="apply despite breaks (journaled)")
    pc.add_argument("--actor", default=whoami, help="who applies (journaled)")
    pc.add_argument("--url", help="service URL (default: classifiers.service_url)")
    pc.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def classifiers_command(
    args: argparse.Namespace, settings: Settings, store: Callable[[], Store]
) -> int:
    """Run one ``classifiers`` subcommand; ``store`` opens the store when it is needed."""
    if args.classifiers_command == "ls":
        return _ls(args, settings)
    return _sync(args, settings, store)


def _ls(args: argparse.Namespace, settings: Settings) -> int:
    rows: list[dict[str, Any]] = [
        {
            "name": c.name,
            "version": c.version,
            "source": c.source,
            "codes": len(c.canonical_codes),
            "file": str(path),
        }
        for path, c in local_classifiers(settings.paths.mappings)
    ]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    width = max([len(r["name"]) for r in rows] + [4])
    print(f"{'name':<{width}}  {'version':<10} {'source':<32} codes")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['version']:<10} {r['source'] or '-':<32} {r['codes']}")
    return 0


def _sync(args: argparse.Namespace, settings: Settings, store: Callable[[], Store]) -> int:
    if args.force and not args.apply:
        raise ConfigError("--force only makes sense with --apply")
    cfg = settings.classifiers
    with ClassifierClient(
        args.url or cfg.service_url, timeout=cfg.timeout, max_bytes=cfg.max_bytes
    ) as client:
        report = prepare(
            client,
            mappings=settings.paths.mappings,
            xsd=settings.paths.xsd,
            samples=settings.paths.samples,
            names=args.name,
        )
    blocked = bool(report.errors) or (bool(report.breaks) and not args.force)
    if args.apply and report.pending and not blocked:
        apply(report, store(), actor=args.actor, force=args.force)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        _print_report(report)
        _print_outcome(report, apply_requested=args.apply, blocked=blocked)
    return 1 if blocked else 0


def _print_classifier(c: ClassifierReport) -> None:
    if c.error is not None:
        print(f"{c.name} ({c.source}): ERROR {c.error}")
        return
    assert c.diff is not None  # no error means it was compared
    d = c.diff
    if d.in_sync:
        print(f"{c.name} ({c.source}): in sync at version {d.old_version}")
        return
    state = "applied" if c.applied else "differs"
    print(f"{c.name} ({c.source}): {d.old_version} -> {d.new_version} ({state})")
    for a in d.added:
        print(
            f"  + {a.code}  {a.label_en!r} / {a.label_lv!r}  "
            f"canonical {a.canonical} (proposed from label_en; edit the file to change it)"
        )
    for r in d.removed:
        print(f"  - {r.code or '(no ecase code)'}  canonical {r.canonical}")
    for lab in d.relabelled:
        print(f"  ~ {lab.code}  canonical {lab.canonical}  {lab.key}: {lab.old!r} -> {lab.new!r}")
    for b in c.breaks:
        where = f" [{b.message_type} {b.field}]" if b.message_type else ""
        print(f"  BREAK {b.kind}{where}: {b.message}")


def _print_report(report: SyncReport) -> None:
    for c in report.classifiers:
        _print_classifier(c)
    for r in report.remote_only:
        print(f"(the service also publishes {r.source} {r.version}; no local classifier uses it)")


def _print_outcome(report: SyncReport, *, apply_requested: bool, blocked: bool) -> None:
    applied = [c for c in report.classifiers if c.applied]
    pending = report.pending
    out = sys.stderr
    if report.errors:
        print(
            f"{len(report.errors)} classifier(s) could not be compared; nothing applied", file=out
        )
    elif blocked:
        print(
            f"{len(report.breaks)} break(s) block applying: fix the XSDs, samples or mappings "
            "named above (or apply with --force, which is journaled)",
            file=out,
        )
    if applied:
        forced = [c.name for c in applied if c.forced]
        note = f" (forced: {', '.join(forced)})" if forced else ""
        print(f"applied {len(applied)} classifier(s), journaled{note}", file=out)
    elif pending and not apply_requested and not blocked:
        print(f"{len(pending)} classifier(s) differ; run with --apply to write them", file=out)
    elif not pending and not blocked:
        print("all classifiers in sync", file=out)
