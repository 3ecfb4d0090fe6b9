"""Usage pseudonyms: keyed, stable, normalised, from the audit's key material."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.eservices.usage import client_key, usage_key
from gateway.jobs.retention import pseudonym_key


def test_client_key_is_stable_keyed_and_normalised() -> None:
    key = b"k" * 32
    a = client_key(key, "010190-12345")
    assert a == client_key(key, "01019012345") == client_key(key, " 010190-12345 ")
    assert len(a) == 32 and "12345" not in a
    assert a != client_key(b"j" * 32, "010190-12345")
    assert a != client_key(key, "010190-12346")
    with pytest.raises(ValueError):
        client_key(b"", "010190-12345")
    with pytest.raises(ValueError):
        client_key(key, " - ")


def test_usage_key_comes_from_the_signing_key_but_differs_from_the_audit_key(
    tmp_path: Path,
) -> None:
    pem = tmp_path / "gateway.key"
    pem.write_bytes(b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    settings = SimpleNamespace(signing=SimpleNamespace(key=pem))
    key = usage_key(settings)
    assert len(key) == 32
    assert key == usage_key(settings)
    assert key != pseudonym_key(settings)
    pem.write_bytes(b"other")
    assert usage_key(settings) != key
