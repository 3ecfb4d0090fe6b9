"""The ``plus-gateway`` command.

Exit status: 0 success, 1 the input was refused (invalid, unverifiable), 2 configuration or
usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError, GatewayError

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# -- commands ------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.server import serve

    serve(_settings(args), with_simulators=args.with_simulators)
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    settings = _settings(args)
    target, rest = args.target, list(args.rest)
    if target == "send":
        if len(rest) != 2:
            raise ConfigError("usage: plus-gateway sim send INSTITUTION MESSAGE_TYPE")
        from gateway.sim import InstitutionSim

        sim = InstitutionSim(settings, rest[0])
        sample = Path(args.sample) if args.sample else None
        _print_json(sim.send(rest[1], sample=sample, keep_id=args.keep_id))
        return 0
    if target == "serve":  # the older spelling: sim serve NAME
        target, rest = (rest[0] if rest else "ecase"), rest[1:]
    if rest:
        raise ConfigError(f"sim {target}: unexpected {' '.join(rest)}")
    if target == "ckan":
        from gateway.opendata.ckansim import serve_ckan_simulator

        serve_ckan_simulator(settings)
        return 0
    from gateway.server import serve_simulator

    serve_simulator(settings, target)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    import datetime as dt

    def day(value: str | None, *, end: bool) -> dt.datetime | None:
        if value is None:
            return None
        try:
            start = dt.datetime.combine(dt.date.fromisoformat(value), dt.time.min, tzinfo=dt.UTC)
        except ValueError:
            raise ConfigError(
                f"--{'to' if end else 'from'}: {value!r} is not a date YYYY-MM-DD"
            ) from None
        return start + dt.timedelta(days=1 if end else 0)

    rows = _store(args).audit.search(
        args.personal_code,
        since=day(args.date_from, end=False),
        until=day(args.date_to, end=True),
        limit=args.limit,
    )
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print(
                f"{r['at']:%Y-%m-%d %H:%M:%S}  {r['registry']:<4} {r['status']:<11} "
                f"officer={r['officer_id']} case={r['case_id']} purpose={r['purpose']!r}"
                f"{' cached' if r['cached'] else ''}"
            )
    print(f"{len(rows)} quer{'y' if len(rows) == 1 else 'ies'}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import httpx

    settings = _settings(args)
    try:
        if args.flow == "volunteering":
            from gateway.facade.demo import run_volunteering_demo

            return run_volunteering_demo(settings, gateway_url=args.gateway)
        if args.flow == "eservices":
            from gateway.eservices.demo import run_eservices_demo

            return run_eservices_demo(settings, gateway_url=args.gateway)
        from gateway.demo import run_demo

        return run_demo(settings, gateway_url=args.gateway, institution=args.institution)
    except httpx.ConnectError as exc:
        # The demos drive a running gateway; without one, say so rather than print a trace.
        url = args.gateway or settings.api.base_url()
        print(
            f"no gateway answers at {url} ({exc}): start it with `make run` in another "
            "terminal, then run the demo again",
            file=sys.stderr,
        )
        return 2


def cmd_facade(args: argparse.Namespace) -> int:
    from gateway.facade.command import facade_command

    return facade_command(args, _settings(args), lambda: _store(args))


def _load_xml(path: str, settings: Settings) -> Any:
    from gateway.soap.envelope import parse_envelope
    from gateway.xml import XmlLimits, parse_xml

    limits = XmlLimits(settings.xml.max_bytes)
    data = Path(path).read_bytes()
    root = parse_xml(data, limits)
    if root.tag.endswith("}Envelope"):
        return parse_envelope(data, limits).body
    return root


def cmd_validate(args: argparse.Namespace) -> int:
    from gateway.mapping import MappingRegistry
    from gateway.ns import DS
    from gateway.xml import SchemaRegistry

    settings = _settings(args)
    document = _load_xml(args.file, settings)
    mappings = MappingRegistry.load(settings.paths.mappings)
    matches = [m for m in mappings.all() if m.root == document.tag]
    if not matches:
        print(f"{args.file}: no message type has root element {document.tag}", file=sys.stderr)
        return 1
    mapping = matches[0]
    SchemaRegistry(settings.paths.xsd).validate(document, mapping.schema)
    signed = document.find(f"{{{DS}}}Signature") is not None
    print(
        f"{args.file}: valid {mapping.message_type} ({mapping.operation}), "
        f"{'signed' if signed else 'unsigned'}"
    )
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from gateway.signing import Signer
    from gateway.xml import serialize

    settings = _settings(args)
    signer = Signer.from_files(
        settings.signing.key, settings.signing.certificate, settings.signing.algorithm
    )
    signed = serialize(signer.sign(_load_xml(args.file, settings)))
    if args.output:
        Path(args.output).write_bytes(signed)
        print(f"signed {args.file} -> {args.output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(signed)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from gateway.signing import TrustStore

    settings = _settings(args)
    if args.institution:
        trust_cfg = settings.institution(args.institution).trust
        trust = TrustStore.from_files(
            list(trust_cfg.certificates),
            trust_cfg.ca,
            accept_legacy_uri=settings.signing.accept_legacy_uri,
        )
        who = args.institution
    else:
        trust = TrustStore.from_files(
            [settings.signing.certificate], accept_legacy_uri=settings.signing.accept_legacy_uri
        )
        who = "the gateway's own certificate"
    trust.verify(_load_xml(args.file, settings))
    print(f"{args.file}: signature valid, signer trusted by {who}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from gateway.signing.keys import init_keys

    settings = _settings(args)
    # Simulators that sign (institutions, VISS) need a pair; the E-case platform has none.
    names = ["gateway", *(f"{p}-sim" for p, sim in settings.simulators.items() if sim.key)]
    if settings.facade.enabled:
        from gateway.facade.keys import KEY_NAMES

        # The volunteer facade's certificate seal and development token issuer.
        names.extend(KEY_NAMES)
    made = init_keys(Path(settings.paths.keys), names, args.algorithm, force=args.force)
    for name, (key, cert) in made.items():
        print(f"{name}: {key} {cert}")
    return 0


def _store(args: argparse.Namespace) -> Any:
    from gateway.store import Store, create_store_engine, migrate

    settings = _settings(args)
    engine = create_store_engine(settings.store.url)
    migrate(engine)
    return Store(engine)


def cmd_queue(args: argparse.Namespace) -> int:
    from gateway.delivery.operator import queue_command

    return queue_command(args, _store(args))


def cmd_journal(args: argparse.Namespace) -> int:
    from gateway.delivery.operator import journal_command

    # Settings too: anchors are read from and written to the configured sink.
    return journal_command(args, _store(args), _settings(args))


def cmd_classifiers(args: argparse.Namespace) -> int:
    from gateway.classifiers.command import classifiers_command

    # The store is opened (and migrated) only when a sync is applied.
    return classifiers_command(args, _settings(args), lambda: _store(args))


def cmd_jobs(args: argparse.Namespace) -> int:
    from gateway.jobs.command import jobs_command

    return jobs_command(args, _settings(args), _store(args))


def cmd_opendata(args: argparse.Namespace) -> int:
    from gateway.opendata.command import opendata_command

    # The store is opened (and migrated) only by the subcommands that need it.
    return opendata_command(args, _settings(args), lambda: _store(args))


def cmd_harness(args: argparse.Namespace) -> int:
    from gateway.harness.command import harness_command

    return harness_command(args)


def cmd_reports(args: argparse.Namespace) -> int:
    from gateway.reports.command import reports_command

    return reports_command(args, _settings(args), lambda: _store(args))


# -- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``plus-gateway``."""
    parser = argparse.ArgumentParser(prog="plus-gateway", description=__doc__)
    parser.add_argument("--config", default=None, help="config file (default config.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway")
    p.add_argument("--with-simulators", action="store_true", help="also serve partner simulators")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "sim",
        help="simulators: ecase | <direct institution> | viss | ckan, or send",
        description="Serve one simulator (ecase: the E-case platform with every E-case "
        "institution; a direct institution's name; viss), or make a simulated institution "
        "send: sim send INSTITUTION MESSAGE_TYPE [--sample FILE] [--keep-id].",
    )
    p.add_argument("target", nargs="?", default="ecase", help="ecase, viss, ckan, a name, or send")
    p.add_argument("rest", nargs="*", help="for send: INSTITUTION MESSAGE_TYPE")
    p.add_argument("--sample", help="XML payload or canonical JSON (default: the valid sample)")
    p.add_argument("--keep-id", action="store_true", help="keep the sample's message id")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("demo", help="walk through the flows against a running gateway")
    p.add_argument(
        "flow",
        nargs="?",
        default="reply-routing",
        choices=["reply-routing", "volunteering", "eservices"],
        help="reply-routing (default), volunteering (the volunteer facade) or eservices "
        "(one round trip of each portal e-service)",
    )
    p.add_argument("--gateway", default=None, help="gateway base URL (default from config)")
    p.add_argument(
        "--institution",
        help="the E-case institution that asks for the report (default: the first configured)",
    )
    p.set_defaults(func=cmd_demo)

    from gateway.facade.command import add_facade_parser

    add_facade_parser(sub).set_defaults(func=cmd_facade)

    p = sub.add_parser("validate", help="validate an XML message against its XSD")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("sign", help="sign an XML payload with the gateway's key")
    p.add_argument("file")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("verify", help="verify a signed XML payload")
    p.add_argument("file")
    p.add_argument(
        "--institution",
        "--partner",  # the name before institutions were data; kept for old scripts
        dest="institution",
        help="verify against this institution's trust store (a name under institutions:)",
    )
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("keys", help="demo keys")
    keysub = p.add_subparsers(dest="keys_command", required=True)
    pk = keysub.add_parser("init", help="create demo keys and self-signed certificates")
    pk.add_argument("--algorithm", default="rsa-sha256", choices=["rsa-sha256", "ecdsa-sha256"])
    pk.add_argument("--force", action="store_true", help="overwrite existing keys")
    pk.set_defaults(func=cmd_keys)

    from gateway.delivery.operator import add_journal_parser, add_queue_parser

    add_queue_parser(sub, _whoami()).set_defaults(func=cmd_queue)
    add_journal_parser(sub, _whoami()).set_defaults(func=cmd_journal)

    from gateway.classifiers.command import add_classifiers_parser

    add_classifiers_parser(sub, _whoami()).set_defaults(func=cmd_classifiers)

    from gateway.jobs.command import add_jobs_parser
    from gateway.opendata.command import add_opendata_parser

    add_jobs_parser(sub, _whoami()).set_defaults(func=cmd_jobs)
    add_opendata_parser(sub, _whoami()).set_defaults(func=cmd_opendata)

    from gateway.reports.command import add_reports_parser

    add_reports_parser(sub, _whoami()).set_defaults(func=cmd_reports)

    from gateway.harness.command import add_harness_parser

    add_harness_parser(sub).set_defaults(func=cmd_harness)

    p = sub.add_parser("audit", help="data-protection audit")
    asub = p.add_subparsers(dest="audit_command", required=True)
    pa = asub.add_parser("queries", help="who looked at this person's data (registry queries)")
    pa.add_argument("--personal-code", required=True)
    pa.add_argument("--from", dest="date_from", help="from this day YYYY-MM-DD (UTC)")
    pa.add_argument("--to", dest="date_to", help="up to and including this day (UTC)")
    pa.add_argument("--limit", type=int, default=1000)
    pa.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_audit)
    return parser


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"plus-gateway: configuration error: {exc.message}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"plus-gateway: {exc}", file=sys.stderr)
        for detail in exc.details[:5]:
            print(f"  {detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
