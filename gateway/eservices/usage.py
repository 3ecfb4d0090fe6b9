"""Keyed pseudonyms of clients for the usage counts (distinct clients, KPI-05).

The key comes from the same material as the registry audit's pseudonyms (the gateway's signing
key, gateway/jobs/retention.py), under a label of its own: one secret to manage, yet a usage
pseudonym cannot be matched against an audit pseudonym without that key.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

__all__ = ["client_key", "usage_key"]

_LABEL = b"plus-gateway/eservice-usage/v1\x00"


def usage_key(settings: Any) -> bytes:
    """The key of usage pseudonyms, derived from the gateway's signing key (read once by the
    caller: keep the bytes, do not call this per request)."""
    material = settings.signing.key.read_bytes()
    return hashlib.sha256(_LABEL + material).digest()


def client_key(key: bytes, personal_code: str) -> str:
    """The client's usage pseudonym: HMAC-SHA256 of the personal code, 32 hex digits.

    Stable for a code (so a client counts once a year however often they come back); the
    code is normalised (spaces and the hyphen dropped) so ``010190-12345`` and
    ``01019012345`` are one client.
    """
    if not key:
        raise ValueError("an empty usage key")
    normal = "".join(personal_code.split()).replace("-", "")
    if not normal:
        raise ValueError("an empty personal code")
    return hmac.new(key, normal.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
