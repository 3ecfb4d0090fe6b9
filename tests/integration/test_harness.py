"""The conformance harness used on ourselves: both modes and the local API against our own
simulators and gateway (one environment for the module), deliberately broken simulators,
and targets that fail on the wire (unreachable, hanging, TLS, a WSDL that differs)."""

from __future__ import annotations

import argparse
import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.cli import main
from gateway.errors import GatewayError, MappingError
from gateway.harness.command import run_harness
from gateway.harness.environment import SimEnvironment, sim_environment, sim_settings
from gateway.harness.report import Run, write_html, write_junit
from gateway.signing import Signer
from tests.conftest import ROOT, free_port


def _args(**kw: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "config": str(ROOT / "config.yaml"),
        "mode": "all",
        "sim": False,
        "url": None,
        "institution": None,
        "sign_key": None,
        "sign_cert": None,
        "peer_cert": None,
        "peer_ca": None,
        "tls_cert": None,
        "tls_key": None,
        "tls_ca": None,
        "insecure": False,
        "timeout": 10.0,
        "connect_timeout": 3.0,
        "answer_within": None,
        "no_progress": True,
    }
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimEnvironment]:
    """Our simulators and gateway, started as ``--sim`` starts them, for the whole module."""
    settings = sim_settings(ROOT / "config.yaml", tmp_path_factory.mktemp("harness"))
    with sim_environment(settings) as started:
        yield started


#: Discrepancies the harness found in work of other areas, open with their owners.
def _failed(run: Run) -> dict[str, str]:
    return {r.case.id: r.reason for r in run.results if r.verdict == "failed"}


def test_both_modes_and_local_api_pass_with_full_operation_coverage(
    env: SimEnvironment, tmp_path: Path
) -> None:
    run = run_harness(_args(sim=True), env=env)
    assert _failed(run) == {}
    coverage = run.coverage()
    modes = {(c["mode"], c["institution"]) for c in coverage}
    for name, cfg in env.settings.institutions.items():
        if cfg.sends:
            assert ("gateway", name) in modes
        if cfg.receives or cfg.answers:
            assert ("partner", name) in modes
    for row in coverage:
        assert row["operations_exercised"] == row["operations_total"] > 0, row
    # Each institution's gateway side saw the signature-profile codes.
    gateway_rows = [c for c in coverage if c["mode"] == "gateway"]
    for row in gateway_rows:
        assert {"SIG_MISSING", "SIG_INVALID", "SIG_UNTRUSTED", "XSD_INVALID"} <= set(
            row["codes_seen"]
        )
    write_junit(run, tmp_path / "junit.xml")
    write_html(run, tmp_path / "report.html")
    junit = etree.parse(str(tmp_path / "junit.xml")).getroot()
    assert int(junit.get("tests", "0")) == len(run.results) > 200
    failures = int(junit.get("failures", "0"))
    assert failures == run.counts()["failed"] == 0
    page = (tmp_path / "report.html").read_text("utf-8")
    assert "plus-gateway conformance report" in page and "<script" not in page
    # Personal data of the samples never reaches the report in clear.
    for secret in ("140394-12342", "Ozoliņš", "1994-03-14", "329184-20573", "Zālītis"):
        assert secret not in page
    assert "******-*****" in page or "***" in page


def _prois(env: SimEnvironment) -> Any:
    return env.institution_sim("prois")


def _partner_run(env: SimEnvironment, institution: str) -> Run:
    return run_harness(_args(mode="partner", institution=[institution]), env=env)


def test_broken_simulator_signing_with_the_wrong_key_is_named(
    env: SimEnvironment, tmp_path: Path
) -> None:
    sim = _prois(env)
    good = sim.signer
    keys = env.keys
    # The gateway's own key: a real signature, but not the institution's pinned one.
    sim.signer = Signer.from_files(keys / "gateway-key.pem", keys / "gateway-cert.pem")
    try:
        run = _partner_run(env, "prois")
    finally:
        sim.signer = good
    failed = _failed(run)
    assert not run.ok
    assert "partner.prois.mediation_result.valid" in failed
    assert all("SIG_UNTRUSTED" in failed[k] for k in failed if k.endswith((".valid", ".answer")))
    write_html(run, tmp_path / "r.html")
    assert "acknowledgement&#x27;s signature is refused: SIG_UNTRUSTED" in (
        tmp_path / "r.html"
    ).read_text("utf-8")


class _DroppingSigner:
    """Signs like the real signer after dropping a required element from query answers."""

    def __init__(self, real: Signer, local: str) -> None:
        self.real = real
        self.local = local

    def sign(self, element: etree._Element, **kw: Any) -> etree._Element:
        for found in element.iter(f"{{*}}{self.local}"):
            parent = found.getparent()
            if parent is not None:
                parent.remove(found)
        return self.real.sign(element, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_broken_simulator_dropping_a_required_element_is_named(env: SimEnvironment) -> None:
    sim = env.institution_sim("tis")
    good = sim.signer
    # RequestId is required in every query answer; acknowledgements have none.
    sim.signer = _DroppingSigner(good, "RequestId")
    try:
        run = _partner_run(env, "tis")
    finally:
        sim.signer = good
    failed = _failed(run)
    assert set(failed) == {"partner.tis.ruling_state_query.answer"}
    reason = failed["partner.tis.ruling_state_query.answer"]
    assert "does not validate" in reason and "RequestId" in reason


def test_broken_simulator_answering_the_wrong_fault_code_is_named(env: SimEnvironment) -> None:
    sim = _prois(env)
    original: Callable[[GatewayError], tuple[int, bytes]] = sim._refuse

    def wrong_code(exc: GatewayError) -> tuple[int, bytes]:
        if exc.code == "XSD_INVALID":
            exc = MappingError("refused as a mapping failure instead")
        return original(exc)

    setattr(sim, "_refuse", wrong_code)  # noqa: B010 - a deliberately broken instance
    try:
        run = _partner_run(env, "prois")
    finally:
        delattr(sim, "_refuse")
    failed = _failed(run)
    assert failed, "the wrong code went unnoticed"
    assert all("expected the fault XSD_INVALID, got MAPPING_FAILED" in r for r in failed.values())
    assert any(".xsd-" in k for k in failed) and any(".invalid-" in k for k in failed)


def test_broken_simulator_answering_too_slowly_is_named(env: SimEnvironment) -> None:
    from gateway.sim import FaultPlan

    sim = _prois(env)
    # The first message to ProIS waits 2 s: past the 1.5 s the caller is told to wait.
    sim.faults.set(FaultPlan(mode="slow", delay=2.0, count=1))
    try:
        run = run_harness(_args(mode="partner", institution=["prois"], answer_within=1.5), env=env)
    finally:
        sim.faults.set(FaultPlan())
    slow = [r for r in run.results if "beyond the 1.5 s the gateway waits" in r.reason]
    assert len(slow) == 1 and slow[0].verdict == "failed"
    assert not run.ok


# -- targets that fail on the wire ----------------------------------------------------------


def _keys(keys_dir: Path) -> dict[str, Any]:
    """The signing pair and the pinned peer certificate of a partner-mode run on a URL."""
    return {
        "sign_key": keys_dir / "gateway-key.pem",
        "sign_cert": keys_dir / "gateway-cert.pem",
        "peer_cert": [keys_dir / "tis-sim-cert.pem"],
    }


def test_unreachable_target_is_one_clear_entry_and_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, keys_dir: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/soap/ecase"
    status = main(
        [
            "--config",
            str(ROOT / "config.yaml"),
            "harness",
            "--mode",
            "partner",
            "--url",
            url,
            "--institution",
            "tis",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--timeout",
            "2",
            "--sign-key",
            str(keys_dir / "gateway-key.pem"),
            "--sign-cert",
            str(keys_dir / "gateway-cert.pem"),
            "--peer-cert",
            str(keys_dir / "tis-sim-cert.pem"),
        ]
    )
    out = capsys.readouterr()
    assert status == 1
    assert "Traceback" not in out.out + out.err
    assert "unreachable" in out.err
    assert "harness FAILED: 0 passed, 1 failed" in out.out


@pytest.fixture
def hanging() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/soap/ecase"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def test_hanging_endpoint_is_bounded_by_the_timeout(hanging: str, keys_dir: Path) -> None:
    run = run_harness(
        _args(mode="partner", url=hanging, institution=["tis"], timeout=0.5, **_keys(keys_dir))
    )
    failed = _failed(run)
    assert len(failed) == 1
    (reason,) = failed.values()
    assert reason.startswith("no answer within 0.5 s")
    assert all(r.verdict == "skipped" for r in run.results if r.verdict != "failed")


def test_tls_failure_is_a_report_entry(env: SimEnvironment, keys_dir: Path) -> None:
    # https to a plain-HTTP endpoint: the handshake fails.
    url = env.partner_url("tis").replace("http://", "https://")
    run = run_harness(
        _args(mode="partner", url=url, institution=["tis"], timeout=3, **_keys(keys_dir))
    )
    (reason,) = _failed(run).values()
    assert reason.startswith("TLS failure")


def test_wsdl_that_differs_is_reported_with_the_difference(keys_dir: Path) -> None:
    wsdl = (ROOT / "wsdl/ecase.wsdl").read_bytes()
    # The partner's portType lacks one operation and names another.
    changed = wsdl.replace(b'name="SubmitMediationResult"', b'name="SubmitMediationOutcome"')

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.end_headers()
            self.wfile.write(changed)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/soap/ecase"
        run = run_harness(
            _args(mode="partner", url=url, institution=["prois"], timeout=3, **_keys(keys_dir))
        )
    finally:
        server.shutdown()
        server.server_close()
    reasons = _failed(run)
    wsdl_reason = reasons["partner.prois.wsdl"]
    assert "operation SubmitMediationResult is missing" in wsdl_reason
    assert "operation SubmitMediationOutcome is not in our contract" in wsdl_reason
