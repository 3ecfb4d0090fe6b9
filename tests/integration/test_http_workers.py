"""``api.workers: 2`` (issue 14 part 4): a real ``serve`` with one extra HTTP process.

Both processes accept on the one port; what either accepts is delivered once, in case order,
by the primary's delivery worker. SIGTERM stops both within the bound with status 0; SIGKILL
of the primary takes its HTTP worker down too (no orphan accepting what nobody would deliver),
and a restart delivers everything accepted. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import postgres_schema
from tests.integration.procs import (
    Proc,
    assert_case_order,
    gateway_proc,
    post_notification,
    running_sim,
    wait_received,
    write_config,
)

pytestmark = pytest.mark.integration

CASES = [f"K30-0412-26/{n}" for n in range(1, 9)]


@pytest.fixture
def sim(tmp_path: Path, keys_dir: Path) -> Iterator[tuple[Proc, int]]:
    with running_sim(tmp_path, keys_dir) as started:
        yield started


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/gateway.db"
        return
    with postgres_schema(migrated=True) as url:
        yield url


def http_workers(gateway: Proc) -> list[int]:
    """Pids of the gateway's spawned HTTP workers (children running multiprocessing's spawn)."""
    assert gateway.popen is not None
    out = subprocess.run(
        ["pgrep", "-P", str(gateway.popen.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    found = []
    for pid in out:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(int(pid))
    return found


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_listening_worker(gateway: Proc, timeout: float = 90) -> int:
    """The HTTP worker's pid, once its log says it serves (it loads its runtime first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = http_workers(gateway)
        log = gateway.log.read_text(errors="replace")
        if pids and all(f"Started server process [{p}]" in log for p in pids):
            return pids[0]
        time.sleep(0.2)
    raise AssertionError(f"no HTTP worker came up:\n{gateway.log.read_text()[-3000:]}")


def gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or " Z " in _stat(pid):
            return True
        time.sleep(0.1)
    return False


def _stat(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return " Z "


def post_many(url: str, per_case: int) -> list[tuple[str, str]]:
    """8 clients, one case each (so each case's acceptance order is its posting order)."""
    accepted: list[tuple[str, str]] = []
    lock = threading.Lock()

    def run(case: str) -> None:
        with httpx.Client(timeout=60) as client:
            for _ in range(per_case):
                mid = post_notification(client, url, case)
                assert mid is not None
                with lock:
                    accepted.append((case, mid))

    threads = [threading.Thread(target=run, args=(c,)) for c in CASES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return accepted


def test_two_processes_accept_deliver_in_order_and_stop_gracefully(
    tmp_path: Path, keys_dir: Path, sim: tuple[Proc, int], store_url: str
) -> None:
    simulator, sim_port = sim
    config = write_config(
        tmp_path,
        keys_dir,
        store_url,
        sim_port=sim_port,
        api={"workers": 2},
        delivery={"shutdown_timeout": 5},
        logging={"level": "INFO"},  # uvicorn's "Started server process [pid]" per process
    )
    gateway = gateway_proc(config, tmp_path)
    gateway.start()
    try:
        worker = wait_listening_worker(gateway)
        before = cpu_seconds(worker)
        accepted = post_many(gateway.url, per_case=15)
        # The HTTP worker took part (it only serves HTTP: its CPU is requests it answered).
        assert cpu_seconds(worker) - before > 0.05
        snap = wait_received(simulator, {m for _, m in accepted}, timeout=120)
        ids = [r["message_id"] for r in snap["received"]]
        assert len(ids) == len(set(ids)) and set(ids) >= {m for _, m in accepted}
        assert_case_order(snap, accepted)
        assert gateway.popen is not None
        t0 = time.monotonic()
        gateway.popen.send_signal(signal.SIGTERM)
        assert gateway.popen.wait(60) == 0
        assert time.monotonic() - t0 < 5 + 10  # the bound plus the watchdog's grace, generous
        assert gone(worker, 10), "the HTTP worker outlived the stop"
    finally:
        gateway.stop()


def two_process_gateway(tmp_path: Path, keys_dir: Path, sim_port: int) -> Proc:
    """A started gateway with one HTTP worker beside its primary, on SQLite."""
    config = write_config(
        tmp_path,
        keys_dir,
        f"sqlite:///{tmp_path}/gateway.db",
        sim_port=sim_port,
        api={"workers": 2},
        logging={"level": "INFO"},
    )
    gateway = gateway_proc(config, tmp_path)
    gateway.start()
    return gateway


def test_sigkill_of_the_primary_takes_its_http_worker_down_and_loses_nothing(
    tmp_path: Path, keys_dir: Path, sim: tuple[Proc, int]
) -> None:
    simulator, sim_port = sim
    gateway = two_process_gateway(tmp_path, keys_dir, sim_port)
    try:
        worker = wait_listening_worker(gateway)
        accepted = post_many(gateway.url, per_case=5)
        gateway.kill()
        assert gone(worker, 30), "an orphaned HTTP worker kept the port"
        gateway.start()  # the port is free again, the store intact
        snap = wait_received(simulator, {m for _, m in accepted}, timeout=120)
        assert_case_order(snap, accepted)
    finally:
        gateway.stop()


def test_a_killed_http_worker_is_replaced_and_the_gateway_keeps_accepting(
    tmp_path: Path, keys_dir: Path, sim: tuple[Proc, int]
) -> None:
    simulator, sim_port = sim
    gateway = two_process_gateway(tmp_path, keys_dir, sim_port)
    try:
        first = wait_listening_worker(gateway)
        os.kill(first, signal.SIGKILL)
        assert gone(first, 30)
        # The primary's monitor notices within a second or two and spawns another worker,
        # which serves once it has loaded its runtime.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            pids = [p for p in http_workers(gateway) if p != first]
            if pids and f"Started server process [{pids[0]}]" in gateway.log.read_text():
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no new HTTP worker:\n{gateway.log.read_text()[-3000:]}")
        second = pids[0]
        log = gateway.log.read_text()
        assert "http worker died; starting another" in log
        assert f'"pid": {first}' in log and f'"pid": {second}' in log
        # The gateway accepts again on the shared socket (whichever process the kernel
        # hands a connection), and what it accepts is delivered, each case in order.
        accepted = post_many(gateway.url, per_case=3)
        snap = wait_received(simulator, {m for _, m in accepted}, timeout=120)
        assert_case_order(snap, accepted)
    finally:
        gateway.stop()
