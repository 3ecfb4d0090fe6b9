"""The facade's demo key pairs: the certificate seal and the development token issuer.

``plus-gateway keys init`` writes them beside the gateway's own (``paths.keys``), git-ignored
like every demo key. In production the seal key is the organisation's qualified seal and the
issuer is the identity provider's (``facade.auth.jwks_url``); neither file is then needed here.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config import Settings

__all__ = ["ISSUER", "KEY_NAMES", "SEAL", "seal_paths"]

#: ``<name>-key.pem`` / ``<name>-cert.pem`` in ``paths.keys``.
SEAL = "facade-seal"
ISSUER = "facade-issuer"
KEY_NAMES = (SEAL, ISSUER)


def seal_paths(settings: Settings) -> tuple[Path, Path]:
    """The seal's key and certificate: ``facade.seal.*`` or the demo pair in ``paths.keys``."""
    seal = settings.facade.seal
    keys = Path(settings.paths.keys)
    return (
        seal.key or keys / f"{SEAL}-key.pem",
        seal.certificate or keys / f"{SEAL}-cert.pem",
    )


def issuer_paths(settings: Settings) -> tuple[Path, Path]:
    """The development issuer's key and certificate in ``paths.keys`` (or as configured)."""
    auth = settings.facade.auth
    keys = Path(settings.paths.keys)
    return (
        auth.signing_key or keys / f"{ISSUER}-key.pem",
        keys / f"{ISSUER}-cert.pem",
    )
