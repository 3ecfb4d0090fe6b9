"""SIGTERM and SIGINT stop a real ``python -m gateway serve`` gracefully (issue 8 part 7).

The partner is a black hole (a socket that accepts connections and never answers), so the
message being sent at the signal hangs for the whole 60 s operation timeout: the stop must
give its lease back rather than wait for it, within ``delivery.shutdown_timeout``.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.config import Settings
from gateway.lifecycle import WATCHDOG_GRACE
from gateway.store import Store, create_store_engine
from tests.conftest import ROOT, SAMPLES

pytestmark = pytest.mark.integration

SHUTDOWN_TIMEOUT = 2.0


class BlackHole:
    """A port whose connections are accepted and never answered; it counts what arrived.

    Counting matters: a message's ``sending`` status is set when it is claimed, before a pool
    thread starts the send. A test that signals on that status alone may catch the worker
    before any send began, and the worker then gives the rows back itself.
    """

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.port = int(self.socket.getsockname()[1])
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return  # closed at the end of the test
            self.connections.append(conn)  # held open, never read or answered

    def close(self) -> None:
        """Close the listening socket and every connection it took."""
        self.socket.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    """A partner that takes connections and never answers."""
    hole = BlackHole()
    try:
        yield hole
    finally:
        hole.close()


def start(settings: Settings, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True)))
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(config), "serve"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{settings.api.port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return proc, log
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"gateway did not become ready:\n{log.read_text()}")
        time.sleep(0.1)


def post_order(http: httpx.Client, base: str, case: str) -> str:
    body: dict[str, Any] = json.loads((SAMPLES / "monitoring_order/valid.json").read_text("utf-8"))
    body["vpd_case_id"] = case  # the ordering key: one case each, so none waits behind another
    r = http.post(
        f"{base}/v1/outbound/monitoring_order",
        json=body,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_releases_leases_checkpoints_the_wal_and_exits_0(
    make_settings: Callable[..., Settings], tmp_path: Path, black_hole: BlackHole, sig: int
) -> None:
    settings = make_settings(
        institutions={
            "em": {
                "endpoint": f"http://127.0.0.1:{black_hole.port}/soap/em",
                "connect_timeout": 1,
                "operation_timeout": 60,
            }
        },
        delivery={
            "poll_interval": 0.05,
            "lease_seconds": 120,
            "shutdown_timeout": SHUTDOWN_TIMEOUT,
        },
        journal={"anchor_interval": 3600},
        logging={"environment": "production", "level": "INFO"},
    )
    proc, log = start(settings, tmp_path)
    base = f"http://127.0.0.1:{settings.api.port}"
    try:
        with httpx.Client(timeout=10) as http:
            ids = [post_order(http, base, f"VPD-2026-{i:06d}") for i in range(4)]
            # Wait until a send is in flight: the partner holds a connection of ours.
            deadline = time.monotonic() + 20
            while not black_hole.connections:
                assert time.monotonic() < deadline, "no message was ever sent"
                time.sleep(0.05)
            statuses = {http.get(f"{base}/v1/messages/{m}").json()["status"] for m in ids}
            assert "sending" in statuses, statuses
        proc.send_signal(sig)
        # The bound is enforced inside the process: past shutdown_timeout + WATCHDOG_GRACE its
        # watchdog exits with status 1. The extra wait only absorbs a starved CPU, so that
        # the process's own exit status decides, not this test's clock.
        code = proc.wait(timeout=SHUTDOWN_TIMEOUT + WATCHDOG_GRACE + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert '"leases released"' in text and '"stopped"' in text, text[-3000:]

    db = Path(settings.store.url.removeprefix("sqlite:///"))
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0

    engine = create_store_engine(settings.store.url)
    try:
        store = Store(engine)
        # Every message is claimable by another worker at once: none waits out a 120 s lease.
        claimed = store.outbox.claim_due("next-instance", 10, 60)
        assert sorted(r["message_id"] for r in claimed) == sorted(ids)
        assert store.journal.verify().ok
    finally:
        engine.dispose()
    # The stop anchored the journal's head as it was at the end.
    anchors = [
        json.loads(line)
        for path in (tmp_path / "anchors").glob("anchors-*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert anchors and max(a["entry_id"] for a in anchors) == len(ids)
