"""The harness against a TLS endpoint that requires a client certificate, as real partner test
environments do: with the client certificate and the CA it passes; without the CA, or without
the client certificate, the TLS failure is one clear report entry."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.harness.command import run_harness
from gateway.harness.environment import sim_environment, sim_settings
from gateway.sim import create_platform_app
from tests.conftest import ROOT, free_port
from tests.integration.test_harness import _args


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool = False, ip: bool = False
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, key: Any, cert: x509.Certificate) -> tuple[Path, Path]:
    key_path = path.with_name(path.name + "-key.pem")
    cert_path = path.with_name(path.name + "-cert.pem")
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The E-case platform simulator behind TLS that requires a client certificate."""
    work = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("harness test CA", ca_key, "harness test CA", ca_key, ca=True)
    _, ca_path = _write(work / "ca", ca_key, ca)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _write(
        work / "server",
        server_key,
        _cert("127.0.0.1", server_key, "harness test CA", ca_key, ip=True),
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _write(
        work / "client",
        client_key,
        _cert("prois test client", client_key, "harness test CA", ca_key),
    )
    settings = sim_settings(ROOT / "config.yaml", work)
    with sim_environment(settings, seed=False) as env:
        port = free_port()
        config = uvicorn.Config(
            create_platform_app(env.platform),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            ssl_keyfile=str(server[0]),
            ssl_certfile=str(server[1]),
            ssl_ca_certs=str(ca_path),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
        )
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not uv.started and time.monotonic() < deadline:
            time.sleep(0.02)
        keys = env.keys
        yield {
            "url": f"https://127.0.0.1:{port}/soap/ecase",
            "ca": ca_path,
            "client": client,
            "keys": {
                "sign_key": keys / "gateway-key.pem",
                "sign_cert": keys / "gateway-cert.pem",
                "peer_cert": [keys / "prois-sim-cert.pem"],
            },
        }
        uv.should_exit = True
        thread.join(10)


def test_client_certificate_and_ca_pass(tls: dict[str, Any]) -> None:
    key, cert = tls["client"]
    run = run_harness(
        _args(
            mode="partner",
            url=tls["url"],
            institution=["prois"],
            tls_ca=tls["ca"],
            tls_cert=cert,
            tls_key=key,
            **tls["keys"],
        )
    )
    assert {r.case.id: r.reason for r in run.results if r.verdict == "failed"} == {}
    assert run.ok


def test_server_certificate_not_trusted_is_a_tls_failure(tls: dict[str, Any]) -> None:
    key, cert = tls["client"]
    run = run_harness(
        _args(
            mode="partner",
            url=tls["url"],
            institution=["prois"],
            tls_cert=cert,
            tls_key=key,
            timeout=3,
            **tls["keys"],
        )
    )
    (reason,) = [r.reason for r in run.results if r.verdict == "failed"]
    assert reason.startswith("TLS failure") and "CERTIFICATE_VERIFY_FAILED" in reason


def test_missing_client_certificate_is_a_tls_failure(tls: dict[str, Any]) -> None:
    run = run_harness(
        _args(
            mode="partner",
            url=tls["url"],
            institution=["prois"],
            tls_ca=tls["ca"],
            timeout=3,
            **tls["keys"],
        )
    )
    failed = [r.reason for r in run.results if r.verdict == "failed"]
    assert len(failed) == 1, failed
    assert failed[0].startswith("TLS failure"), failed[0]
