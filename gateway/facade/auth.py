"""Bearer tokens of the facade: an OIDC-style issuer, its JWKS, three roles (PyJWT).

A token is a JWS-signed JWT from the configured issuer. It must name the issuer (``iss``), this
API (``aud``), a subject (``sub``), and carry ``exp`` and ``iat``; ``roles`` lists any of
``volunteer``, ``organisation_user`` and ``policy_analyst``; an organisation user's token names
the organisation's registration number in ``organisation``. The signing key is found by ``kid``
in the issuer's JWKS: fetched from ``facade.auth.jwks_url`` (cached, and refetched at most every
:data:`MIN_REFRESH` seconds when a token names a kid not in the cache, so forged kids cannot make
us hammer the issuer), or built from PEM keys in ``facade.auth.public_keys``.

Every refusal is a 401 with a stable code; only algorithms in ``facade.auth.algorithms`` are
tried (never ``none``, never HMAC: a public key must not double as a shared secret).

``plus-gateway facade token`` mints development tokens with ``facade.auth.signing_key``; the
same code path verifies them as any other issuer's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.config import FacadeAuthSettings
from gateway.errors import ConfigError
from gateway.facade.errors import AuthError, ForbiddenError, IssuerUnavailableError
from gateway.signing.keys import load_private_key

__all__ = [
    "MIN_REFRESH",
    "ROLES",
    "Jwks",
    "Principal",
    "TokenVerifier",
    "jwk_of",
    "mint_token",
    "thumbprint",
]

#: The roles a token may carry.
ROLES = ("volunteer", "organisation_user", "policy_analyst")
#: Seconds between two refetches of a remote JWKS caused by unknown kids.
MIN_REFRESH = 30.0

_HEADER = "header.Authorization"


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    subject: str
    roles: frozenset[str]
    organisation: str | None = None

    def require(self, role: str) -> Principal:
        """This principal if it has ``role``; 403 ROLE_REQUIRED otherwise."""
        if role not in self.roles:
            raise ForbiddenError("ROLE_REQUIRED", f"this call needs the role {role}", path=_HEADER)
        return self

    def require_organisation(self, org_id: str) -> Principal:
        """An organisation user of ``org_id``; 403 otherwise (another organisation's data)."""
        self.require("organisation_user")
        if self.organisation != org_id:
            raise ForbiddenError(
                "ORGANISATION_FORBIDDEN",
                "the token's organisation is not this organisation",
                path="path.organisation_id",
            )
        return self


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_of(public_key: Any) -> dict[str, Any]:
    """The public JWK of an RSA or EC public key, with its RFC 7638 thumbprint as ``kid``."""
    if isinstance(public_key, rsa.RSAPublicKey):
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public_key))
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public_key))
    else:
        raise ConfigError("facade.auth: only RSA and EC keys are supported")
    jwk["kid"] = thumbprint(jwk)
    jwk["use"] = "sig"
    return jwk


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA or EC public JWK."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({k: jwk[k] for k in members}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


def _load_public(path: Path) -> Any:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"facade.auth.public_keys: cannot read {path}: {exc.strerror} "
            "(run `plus-gateway keys init`)"
        ) from exc
    try:
        if b"CERTIFICATE" in data:
            from cryptography import x509

            return x509.load_pem_x509_certificate(data).public_key()
        return serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ConfigError(f"facade.auth.public_keys: {path} is not a PEM key: {exc}") from exc


class Jwks:
    """The issuer's signing keys by kid: a fixed set, or a remote JWKS kept fresh."""

    def __init__(
        self,
        *,
        url: str | None = None,
        keys: Sequence[dict[str, Any]] = (),
        cache_seconds: float = 300.0,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = 0.0
        if keys:
            self._keys = self._parse({"keys": list(keys)})

    @classmethod
    def from_settings(cls, auth: FacadeAuthSettings, keys_dir: Path) -> Jwks:
        """From ``facade.auth``: the JWKS URL, else the PEM public keys (by default the
        development issuer's certificate in ``keys_dir``)."""
        if auth.jwks_url:
            return cls(
                url=auth.jwks_url,
                cache_seconds=auth.jwks_cache_seconds,
                timeout=auth.jwks_timeout,
            )
        paths = auth.public_keys or (Path(keys_dir) / "facade-issuer-cert.pem",)
        return cls(keys=[jwk_of(_load_public(p)) for p in paths])

    @staticmethod
    def _parse(document: Any) -> dict[str, jwt.PyJWK]:
        out: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type we cannot use (or a malformed entry): not ours to verify
            kid = entry.get("kid") or (
                thumbprint(entry) if entry.get("kty") in ("RSA", "EC") else None
            )
            if kid:
                out[kid] = key
        return out

    def _fetch(self) -> None:
        assert self.url is not None
        try:
            response = httpx.get(self.url, timeout=self.timeout, follow_redirects=False)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise IssuerUnavailableError(
                f"the token issuer's JWKS could not be fetched: {type(exc).__name__}"
            ) from exc
        self._keys = self._parse(document)
        self._fetched = time.monotonic()

    def key(self, kid: str | None) -> jwt.PyJWK:
        """The key a token names by ``kid`` (or the only key, when it names none)."""
        with self._lock:
            if self.url is not None:
                age = time.monotonic() - self._fetched
                stale = not self._fetched or age > self.cache_seconds
                unknown = kid is not None and kid not in self._keys and age > MIN_REFRESH
                if stale or unknown:
                    self._fetch()
            keys = dict(self._keys)
        if kid is None:
            if len(keys) == 1:
                return next(iter(keys.values()))
            raise AuthError("TOKEN_KEY_UNKNOWN", "the token names no key (kid)", path=_HEADER)
        found = keys.get(kid)
        if found is None:
            raise AuthError(
                "TOKEN_KEY_UNKNOWN", "the token's key (kid) is not the issuer's", path=_HEADER
            )
        return found

    def document(self) -> dict[str, Any]:
        """The key set as a JWKS document (public parts only)."""
        return {"keys": [dict(k._jwk_data) for k in self._keys.values()]}


_DECODE_ERRORS: tuple[tuple[type[Exception], str, str], ...] = (
    (jwt.ExpiredSignatureError, "TOKEN_EXPIRED", "the token has expired"),
    (jwt.ImmatureSignatureError, "TOKEN_NOT_YET_VALID", "the token is not valid yet"),
    (jwt.InvalidAudienceError, "TOKEN_AUDIENCE", "the token is not for this API (aud)"),
    (jwt.InvalidIssuerError, "TOKEN_ISSUER", "the token is not from the configured issuer"),
    (jwt.MissingRequiredClaimError, "TOKEN_CLAIMS", "the token lacks a required claim"),
    (jwt.InvalidSignatureError, "TOKEN_SIGNATURE", "the token's signature does not verify"),
)


class TokenVerifier:
    """Verifies bearer tokens against the issuer, audience and JWKS of ``facade.auth``."""

    def __init__(self, auth: FacadeAuthSettings, jwks: Jwks) -> None:
        self.issuer = auth.issuer
        self.audience = auth.audience
        self.algorithms = tuple(auth.algorithms)
        self.leeway = auth.leeway
        self.jwks = jwks

    def principal(self, authorization: str | None) -> Principal:
        """Who an ``Authorization: Bearer ...`` header speaks for; 401 when it does not."""
        if not authorization:
            raise AuthError("TOKEN_MISSING", "this call needs a bearer token", path=_HEADER)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError(
                "TOKEN_MISSING", "the Authorization header is not 'Bearer <token>'", path=_HEADER
            )
        return self.verify(token)

    def verify(self, token: str) -> Principal:
        """Verify one compact JWT; every failure is an :class:`AuthError`."""
        if len(token) > 8192:
            raise AuthError("TOKEN_MALFORMED", "the token is too long", path=_HEADER)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("TOKEN_MALFORMED", "the token is not a JWT", path=_HEADER) from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise AuthError(
                "TOKEN_ALGORITHM", "the token's algorithm is not accepted", path=_HEADER
            )
        kid = header.get("kid")
        key = self.jwks.key(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            for kind, code, message in _DECODE_ERRORS:
                if isinstance(exc, kind):
                    raise AuthError(code, message, path=_HEADER) from exc
            raise AuthError("TOKEN_INVALID", "the token is not valid", path=_HEADER) from exc
        subject = claims.get("sub")
        roles = claims.get("roles", [])
        organisation = claims.get("organisation")
        if (
            not isinstance(subject, str)
            or not 0 < len(subject) <= 200
            or not isinstance(roles, list)
            or (organisation is not None and not isinstance(organisation, str))
        ):
            raise AuthError("TOKEN_CLAIMS", "sub, roles or organisation is malformed", path=_HEADER)
        return Principal(
            subject=subject,
            roles=frozenset(r for r in roles if r in ROLES),
            organisation=organisation,
        )


def mint_token(
    auth: FacadeAuthSettings,
    *,
    subject: str,
    roles: Sequence[str],
    organisation: str | None = None,
    lifetime: int = 3600,
    audience: str | None = None,
    issuer: str | None = None,
    key_path: Path | None = None,
    now: float | None = None,
) -> str:
    """A development token signed with ``facade.auth.signing_key`` (or ``key_path``).

    ``audience``/``issuer`` override the configured ones, and ``now`` the clock: tests use
    them for wrong-audience and expired tokens made by the real issuer key.
    """
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ConfigError(f"unknown role {unknown[0]!r}; use {', '.join(ROLES)}")
    if not 0 < lifetime <= auth.max_token_lifetime:
        raise ConfigError(f"lifetime must be 1..{auth.max_token_lifetime} seconds")
    path = key_path or auth.signing_key
    if path is None:
        raise ConfigError("facade.auth.signing_key is not set; no development issuer here")
    try:
        private = load_private_key(path, "rsa-sha256")
        alg = "RS256"
    except ConfigError:
        private = load_private_key(path, "ecdsa-sha256")
        alg = "ES256"
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": issuer or auth.issuer,
        "aud": audience or auth.audience,
        "sub": subject,
        "roles": list(roles),
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": uuid.uuid4().hex,
    }
    if organisation:
        claims["organisation"] = organisation
    kid = jwk_of(private.public_key())["kid"]
    return jwt.encode(claims, private, algorithm=alg, headers={"kid": kid})
