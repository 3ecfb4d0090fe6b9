"""Keys and certificates shared by the signing tests.

Key generation is the slow part (RSA ~50-100 ms), so key pairs are made once per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.signing import Signer, TrustStore, init_keys

from .support import CaSetup, Pair, issue_ca, issue_leaf


@pytest.fixture(scope="session")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="session")
def rsa_pairs(keydir: Path) -> dict[str, Pair]:
    made = init_keys(keydir / "rsa", ["alice", "mallory"])
    return {name: Pair(*paths) for name, paths in made.items()}


@pytest.fixture(scope="session")
def ec_pairs(keydir: Path) -> dict[str, Pair]:
    made = init_keys(keydir / "ec", ["alice-ec"], algorithm="ecdsa-sha256")
    return {name: Pair(*paths) for name, paths in made.items()}


@pytest.fixture(scope="session")
def alice(rsa_pairs: dict[str, Pair]) -> Signer:
    return Signer.from_files(rsa_pairs["alice"].key, rsa_pairs["alice"].cert)


@pytest.fixture(scope="session")
def mallory(rsa_pairs: dict[str, Pair]) -> Signer:
    return Signer.from_files(rsa_pairs["mallory"].key, rsa_pairs["mallory"].cert)


@pytest.fixture(scope="session")
def alice_ec(ec_pairs: dict[str, Pair]) -> Signer:
    pair = ec_pairs["alice-ec"]
    return Signer.from_files(pair.key, pair.cert, algorithm="ecdsa-sha256")


@pytest.fixture(scope="session")
def trust_alice(rsa_pairs: dict[str, Pair], ec_pairs: dict[str, Pair]) -> TrustStore:
    return TrustStore.from_files([rsa_pairs["alice"].cert, ec_pairs["alice-ec"].cert])


@pytest.fixture(scope="session")
def ca_setup(keydir: Path) -> CaSetup:
    directory = keydir / "ca"
    directory.mkdir()
    ca_key, ca_cert = issue_ca(directory)
    return CaSetup(ca_cert=ca_cert, leaf=issue_leaf(directory, ca_key, ca_cert, "tis-signer"))
