"""Key and certificate files: loading them once at start-up, and creating demo pairs.

Every loader raises :class:`~gateway.errors.ConfigError` naming the offending path, because
these files come from configuration and a bad one must stop start-up, not the first message.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gateway.errors import ConfigError

__all__ = [
    "ALGORITHMS",
    "PrivateKey",
    "fingerprint",
    "init_keys",
    "load_certificates",
    "load_private_key",
    "new_key",
    "self_signed",
]

#: Signature algorithms the gateway signs with (short names as in configuration).
ALGORITHMS = ("rsa-sha256", "ecdsa-sha256")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_DEMO_ORGANISATION = "plus-gateway demo"
_DEMO_VALIDITY = dt.timedelta(days=730)
# A little back-dating so a partner whose clock runs slightly behind accepts a fresh cert.
_CLOCK_SKEW = dt.timedelta(minutes=5)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of the DER encoding, lower-case hex without separators."""
    return cert.fingerprint(hashes.SHA256()).hex()


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def load_private_key(path: Path, algorithm: str = "rsa-sha256") -> PrivateKey:
    """Load an unencrypted PEM (PKCS#8 or traditional) private key matching ``algorithm``."""
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"unknown signature algorithm {algorithm!r}; use one of {ALGORITHMS}")
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        # TypeError: the key is encrypted; ValueError: not a PEM key at all.
        raise ConfigError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if algorithm == "rsa-sha256":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError(f"{path} is not an RSA key but the algorithm is {algorithm}")
        if key.key_size < 2048:
            raise ConfigError(f"{path} is an RSA key of {key.key_size} bits; 2048 is the minimum")
        return key
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{path} is not an EC key but the algorithm is {algorithm}")
    return key


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Load every certificate from a PEM bundle (or a single DER certificate)."""
    data = _read(path, "certificate")
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ConfigError(f"{path} holds no readable X.509 certificate: {exc}") from exc
    if not certs:
        raise ConfigError(f"{path} holds no certificate")
    return certs


def _write_private(path: Path, data: bytes) -> None:
    # Create with 0600 from the start so the key is never readable by others, even briefly;
    # chmod afterwards in case the file already existed with wider permissions (force=True).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def new_key(algorithm: str = "rsa-sha256") -> PrivateKey:
    """A fresh private key for ``algorithm`` (RSA 2048 or EC P-256), in memory only."""
    if algorithm == "rsa-sha256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def self_signed(name: str, key: PrivateKey) -> x509.Certificate:
    """A self-signed demo certificate (CN=``name``) for ``key``; simulators use it too."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _DEMO_ORGANISATION),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + _DEMO_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def init_keys(
    directory: Path,
    names: list[str],
    algorithm: str = "rsa-sha256",
    force: bool = False,
) -> dict[str, tuple[Path, Path]]:
    """Create a demo key pair and self-signed certificate for each name.

    Writes ``<name>-key.pem`` (PKCS#8, mode 0600) and ``<name>-cert.pem`` (CN=<name>,
    O=plus-gateway demo, valid two years, SHA-256) into ``directory``. Existing pairs are kept
    unless ``force``; a half pair (only the key or only the certificate) is a ConfigError, since
    silently replacing one half would break whoever already holds the other.

    Returns ``{name: (key_path, cert_path)}`` for every name.
    """
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"unknown signature algorithm {algorithm!r}; use one of {ALGORITHMS}")
    directory = Path(directory)
    for name in names:
        if not _SAFE_NAME.match(name):
            raise ConfigError(f"key name {name!r} is not a safe file name")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create key directory {directory}: {exc}") from exc

    out: dict[str, tuple[Path, Path]] = {}
    for name in names:
        key_path = directory / f"{name}-key.pem"
        cert_path = directory / f"{name}-cert.pem"
        out[name] = (key_path, cert_path)
        exists = (key_path.exists(), cert_path.exists())
        if not force and all(exists):
            continue
        if not force and any(exists):
            present = key_path if exists[0] else cert_path
            raise ConfigError(f"{present} exists without its pair; remove it or use force")
        key = new_key(algorithm)
        cert = self_signed(name, key)
        try:
            _write_private(
                key_path,
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        except OSError as exc:
            raise ConfigError(f"cannot write key pair {name!r} in {directory}: {exc}") from exc
    return out
