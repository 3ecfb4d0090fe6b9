"""``plus-gateway facade ...``: development tokens, the issuer's JWKS, archiving on demand.

plus-gateway facade token --role volunteer --subject alice
plus-gateway facade token --role organisation_user --organisation 40008000001 --subject bob
plus-gateway facade token --role policy_analyst --subject carol --lifetime 600
plus-gateway facade jwks        the development issuer's public JWKS (for an IdP-less setup)
plus-gateway facade archive     archive postings past their deadline now (what serve loops)
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from gateway.config import Settings
from gateway.errors import ConfigError

__all__ = ["add_facade_parser", "facade_command"]


def add_facade_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``facade`` and its subcommands to the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "facade", help="volunteer facade: development tokens, JWKS, archiving"
    )
    fsub = p.add_subparsers(dest="facade_command", required=True)
    t = fsub.add_parser("token", help="mint a development bearer token (the dev issuer's key)")
    t.add_argument(
        "--role",
        action="append",
        required=True,
        choices=["volunteer", "organisation_user", "policy_analyst"],
        help="a role; repeat for several",
    )
    t.add_argument("--subject", required=True, help="the token's sub (who the user is)")
    t.add_argument("--organisation", help="registration number (organisation_user)")
    t.add_argument("--lifetime", type=int, default=3600, help="seconds (default 3600)")
    fsub.add_parser("jwks", help="print the development issuer's public JWKS")
    fsub.add_parser("archive", help="archive postings past their deadline now")
    return p


def facade_command(args: argparse.Namespace, settings: Settings, store: Callable[[], Any]) -> int:
    """Run ``plus-gateway facade <command>``."""
    from gateway.facade.auth import jwk_of, mint_token
    from gateway.facade.keys import issuer_paths

    if args.facade_command == "token":
        if "organisation_user" in args.role and not args.organisation:
            raise ConfigError("--organisation is required with --role organisation_user")
        key, _cert = issuer_paths(settings)
        print(
            mint_token(
                settings.facade.auth,
                subject=args.subject,
                roles=args.role,
                organisation=args.organisation,
                lifetime=args.lifetime,
                key_path=key,
            )
        )
        return 0
    if args.facade_command == "jwks":
        from gateway.signing.keys import load_certificates

        _key, cert = issuer_paths(settings)
        jwk = jwk_of(load_certificates(cert)[0].public_key())
        print(json.dumps({"keys": [jwk]}, indent=2))
        return 0
    from gateway.facade.archive import archive_expired

    print(f"{archive_expired(store())} posting(s) archived")
    return 0
