"""``plus-gateway harness``: run the conformance harness, or write the partner kit.

::

    plus-gateway harness --sim [--mode all|partner|gateway|local] [--institution NAME ...]
    plus-gateway harness --mode partner --url URL --institution NAME [keys, TLS, timeouts]
    plus-gateway harness kit --institution NAME --out DIR

Exit status: 0 every case passed, 1 a case failed (the report names it), 2 a configuration
or usage error.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from gateway.channels.header import parse_identifier
from gateway.config import Settings, load_settings
from gateway.errors import ConfigError
from gateway.harness.report import Run, write_html, write_junit

__all__ = ["add_harness_parser", "harness_command", "run_harness"]

MODES = ("partner", "gateway", "local")


def add_harness_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``harness`` subcommand and its options."""
    p: argparse.ArgumentParser = sub.add_parser(
        "harness",
        help="conformance harness (partner | gateway | local API modes), partner kit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", nargs="?", default="run", choices=["run", "kit"])
    p.add_argument(
        "--mode",
        default="all",
        choices=["all", "soap", *MODES],
        help="all (default), soap (partner and gateway), partner, gateway or local",
    )
    p.add_argument("--sim", action="store_true", help="start our simulators and gateway")
    p.add_argument("--url", help="the target: partner or gateway SOAP endpoint, or API base URL")
    p.add_argument("--institution", action="append", help="institution (repeat; default all)")
    p.add_argument("--sign-key", type=Path, help="PEM key the harness signs with")
    p.add_argument("--sign-cert", type=Path, help="PEM certificate of --sign-key")
    p.add_argument(
        "--peer-cert",
        type=Path,
        action="append",
        help="PEM certificate the target signs with (pinned; repeat for a rollover)",
    )
    p.add_argument(
        "--peer-ca", type=Path, help="CA bundle the target's signing certificate chains to"
    )
    p.add_argument("--tls-cert", type=Path, help="TLS client certificate (PEM)")
    p.add_argument("--tls-key", type=Path, help="TLS client key (PEM)")
    p.add_argument("--tls-ca", type=Path, help="CA bundle to verify the target's TLS certificate")
    p.add_argument(
        "--insecure", action="store_true", help="do not verify TLS (never in production)"
    )
    p.add_argument("--timeout", type=float, default=10.0, help="read timeout per request, s")
    p.add_argument(
        "--answer-within",
        type=float,
        help="partner mode: seconds an answer may take (default: the gateway's operation "
        "timeout for that institution, after which it would resend)",
    )
    p.add_argument("--connect-timeout", type=float, default=3.0, help="connect timeout, s")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("harness-report"),
        help="report directory (junit.xml, report.html); the kit's directory",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def harness_command(args: argparse.Namespace) -> int:
    """Entry point of ``plus-gateway harness``."""
    if args.action == "kit":
        from gateway.harness.kit import write_kit

        if not args.institution or len(args.institution) != 1:
            raise ConfigError("harness kit: name exactly one --institution")
        written = write_kit(args.config, args.institution[0], args.out)
        print(f"partner kit for {args.institution[0]} written to {written}")
        return 0
    run = run_harness(args)
    args.out.mkdir(parents=True, exist_ok=True)
    write_junit(run, args.out / "junit.xml")
    write_html(run, args.out / "report.html")
    print(run.summary())
    for result in run.results:
        if result.verdict == "failed":
            print(f"  FAILED {result.case.id}: {result.reason}", file=sys.stderr)
    print(f"reports: {args.out / 'junit.xml'} {args.out / 'report.html'}")
    return 0 if run.ok else 1


def run_harness(args: argparse.Namespace, env: Any = None) -> Run:
    """Build the modes the options ask for and run them (``env``: an already started
    :class:`~gateway.harness.environment.SimEnvironment`, for tests)."""
    from gateway.harness.environment import sim_environment, sim_settings
    from gateway.harness.runner import run_modes

    if not args.sim and env is None and not args.url:
        raise ConfigError("harness: give --url (and --institution) or --sim")
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="plusgw-harness-")))
        if env is None and args.sim:
            from gateway.logging import configure_logging

            # The started gateway and simulators log errors only: the report is the output.
            configure_logging("development", "ERROR")
            settings = sim_settings(args.config, work)
            if not args.no_progress:
                print("starting our simulators and gateway on loopback ...", file=sys.stderr)
            env = stack.enter_context(sim_environment(settings))
        settings = env.settings if env is not None else load_settings(args.config)
        modes = build_modes(args, settings, env, work, stack)
        target = env.gateway_url + " (--sim: our simulators and gateway)" if env else args.url
        run = Run(target=target)
        return run_modes(run, modes, progress=not args.no_progress)
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack never swallows


def build_modes(
    args: argparse.Namespace, settings: Settings, env: Any, work: Path, stack: ExitStack
) -> list[Any]:
    """The mode objects for the options, sharing one contract and one transport per URL."""
    from gateway.harness.cases import ContractModel
    from gateway.harness.environment import hold_for_poll
    from gateway.harness.gatewaymode import GatewayMode
    from gateway.harness.localapi import LocalApiMode
    from gateway.harness.partner import PartnerMode
    from gateway.harness.runner import SigningKey
    from gateway.harness.transport import Target, Transport
    from gateway.signing import TrustStore
    from gateway.signing.keys import init_keys

    contract = ContractModel(settings)
    names = args.institution or (
        sorted(n for n in settings.institutions if n in settings.simulators)
        if env is not None
        else None
    )
    if not names:
        raise ConfigError("harness: name the --institution whose side is tested")
    for name in names:
        settings.institution(name)  # ConfigError naming it if unknown
    intruder_files = init_keys(work / "intruder", ["harness-intruder"])["harness-intruder"]
    intruder = SigningKey.from_files(*intruder_files)
    transports: dict[str, Transport] = {}

    def transport(url: str) -> Transport:
        found = transports.get(url)
        if found is None:
            found = Transport(
                Target(
                    url=url,
                    connect_timeout=args.connect_timeout,
                    read_timeout=args.timeout,
                    client_cert=args.tls_cert,
                    client_key=args.tls_key,
                    ca=args.tls_ca,
                    insecure=args.insecure,
                )
            )
            stack.callback(found.close)
            transports[url] = found
        return found

    def trust(certs: list[Path], ca: Path | None) -> TrustStore:
        return TrustStore.from_files(
            certs,
            ca,
            max_certificates=settings.xml.max_certificates,
            accept_legacy_uri=False,
        )

    gateway_id = parse_identifier(settings.ecase.client_id, service=False, key="ecase.client_id")
    wanted = {"all": MODES, "soap": ("partner", "gateway")}.get(args.mode, (args.mode,))
    modes: list[Any] = []
    for name in names:
        cfg = settings.institution(name)
        member = parse_identifier(cfg.member, service=False, key=f"institutions.{name}.member")
        sim = settings.simulators.get(name)
        if "partner" in wanted and (cfg.receives or cfg.answers or cfg.delivery_mode == "poll"):
            sign = SigningKey.from_files(
                args.sign_key or Path(settings.signing.key),
                args.sign_cert or Path(settings.signing.certificate),
            )
            peer = trust(
                list(args.peer_cert or cfg.trust.certificates), args.peer_ca or cfg.trust.ca
            )
            modes.append(
                PartnerMode(
                    contract=contract,
                    institution=name,
                    transport=transport(env.partner_url(name) if env else args.url),
                    url=env.partner_url(name) if env else args.url,
                    signing=sign,
                    trust=peer,
                    intruder=intruder,
                    sender=gateway_id,
                    addressee=member,
                    id_prefix="PLUS",
                    answer_within=getattr(args, "answer_within", None)
                    or settings.timeouts(name)[1],
                    holder=partial(hold_for_poll, env, name, contract) if env is not None else None,
                )
            )
        if "gateway" in wanted and cfg.sends:
            key = args.sign_key or (sim.key if sim else None)
            cert = args.sign_cert or (sim.certificate if sim else None)
            if key is None or cert is None:
                raise ConfigError(f"harness gateway mode: --sign-key/--sign-cert of {name}")
            certs = args.peer_cert or (
                list(sim.trust.certificates)
                if sim and sim.trust
                else [settings.signing.certificate]
            )
            other = None
            if env is not None:
                others = [
                    n
                    for n in names + sorted(settings.simulators)
                    if n != name
                    and n in settings.institutions
                    and settings.simulators[n].key is not None
                ]
                if others:
                    o = settings.simulators[others[0]]
                    assert o.key is not None and o.certificate is not None
                    other = SigningKey.from_files(Path(o.key), Path(o.certificate))
            url = env.gateway_endpoint(name) if env else args.url
            modes.append(
                GatewayMode(
                    contract=contract,
                    institution=name,
                    transport=transport(url),
                    url=url,
                    signing=SigningKey.from_files(Path(key), Path(cert)),
                    trust=trust([Path(c) for c in certs], args.peer_ca),
                    intruder=intruder,
                    sender=member,
                    addressee=gateway_id,
                    id_prefix=name.upper(),
                    other=other,
                    preparers=env.preparers if env is not None else None,
                )
            )
    if "local" in wanted:
        base = env.gateway_url if env else args.url
        modes.append(
            LocalApiMode(
                contract=contract,
                transport=transport(base),
                base_url=base,
                wait_delivery=env is not None,
                refresh=env.fresh_reference if env is not None else None,
            )
        )
    return modes
