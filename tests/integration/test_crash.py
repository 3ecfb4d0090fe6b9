"""Crash and multi-instance tests: real ``python -m gateway`` processes killed with SIGKILL.

Default (CI): a few kill/restart trials. ``PLUSGW_CRASH_TRIALS=20`` for the benchmark mode.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.store import Store, create_store_engine
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

TRIALS = int(os.environ.get("PLUSGW_CRASH_TRIALS", "3"))
CASES = [f"K30-0412-26/{n}" for n in range(1, 5)]


class Streamer:
    """Posts notifications round-robin over a few cases to whichever gateways are given."""

    def __init__(self, gateways: list[Proc]) -> None:
        self.gateways = gateways
        self.accepted: list[tuple[str, str]] = []
        self.unknown = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            i = 0
            while not self._stop.is_set():
                case = CASES[i % len(CASES)]
                gateway = self.gateways[i % len(self.gateways)]
                message_id = post_notification(client, gateway.url, case)
                if message_id:
                    self.accepted.append((case, message_id))
                else:
                    self.unknown += 1  # refused or the process died mid-request
                    time.sleep(0.05)
                i += 1

    def __enter__(self) -> Streamer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def sim(tmp_path: Path, keys_dir: Path) -> Iterator[tuple[Proc, int]]:
    with running_sim(tmp_path, keys_dir) as started:
        yield started


def test_sigkill_loses_nothing_and_keeps_case_order(
    tmp_path: Path, keys_dir: Path, sim: tuple[Proc, int]
) -> None:
    simulator, sim_port = sim
    config = write_config(tmp_path, keys_dir, f"sqlite:///{tmp_path}/gateway.db", sim_port=sim_port)
    gateway = gateway_proc(config, tmp_path)
    gateway.start()
    rng = random.Random(int(os.environ.get("PLUSGW_CRASH_SEED", "7")))
    try:
        with Streamer([gateway]) as stream:
            for _ in range(TRIALS):
                time.sleep(rng.uniform(0.3, 1.2))
                gateway.kill()
                gateway.start()
            time.sleep(0.3)
        accepted = stream.accepted
        # At least one accepted message per trial: how many more depends on how fast the
        # machine restarts a process (15-30 s under load), not on what is tested here.
        assert len(accepted) >= TRIALS
        snap = wait_received(simulator, {m for _, m in accepted}, timeout=40)
    finally:
        gateway.stop()
    ids = [r["message_id"] for r in snap["received"]]
    assert len(ids) == len(set(ids))  # a resend carries the same id; the partner keeps one
    assert_case_order(snap, accepted)
    print(
        f"\ncrash: {TRIALS} SIGKILLs, {len(accepted)} accepted, all delivered, "
        f"{snap['duplicates']} duplicate(s) dropped by id, {stream.unknown} unanswered posts"
    )


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema(migrated=True) as url:  # migrated once, before two instances start
        yield url


@pytest.mark.postgres
def test_two_instances_share_one_outbox_and_take_over_a_killed_one(
    tmp_path: Path, keys_dir: Path, sim: tuple[Proc, int], pg_url: str
) -> None:
    simulator, sim_port = sim
    procs = [
        gateway_proc(
            write_config(tmp_path, keys_dir, pg_url, sim_port=sim_port), tmp_path, f"gw{i}"
        )
        for i in range(2)
    ]
    for p in procs:
        p.start()
    try:
        # Phase 1: both drain one outbox; nobody sends a message another holds.
        with Streamer(procs) as stream:
            time.sleep(3)
        phase1 = stream.accepted
        snap = wait_received(simulator, {m for _, m in phase1}, timeout=30)
        assert snap["duplicates"] == 0
        assert_case_order(snap, phase1)

        # Phase 2: a slow partner keeps claims in flight; kill instance 0 while it holds some.
        httpx.put(
            f"{simulator.url}/sim/ecase/faults/tis", json={"mode": "slow", "count": 0, "delay": 0.4}
        )
        with Streamer(procs) as stream:
            time.sleep(2)
            procs[0].kill()
            time.sleep(1)
        httpx.put(f"{simulator.url}/sim/ecase/faults/tis", json={"mode": "none"})
        phase2 = stream.accepted
        snap = wait_received(simulator, {m for _, m in phase1 + phase2}, timeout=40)
        assert_case_order(snap, phase1 + phase2)
        ids = [r["message_id"] for r in snap["received"]]
        assert len(ids) == len(set(ids))
        # duplicates are possible only for what the killed instance was sending (lease expiry)
        assert snap["duplicates"] <= 10
    finally:
        for p in procs:
            p.stop()
    engine = create_store_engine(pg_url)
    store = Store(engine)
    try:
        owners = {r["lease_owner"] for r in store.outbox.messages(limit=None)}
        assert owners == {None}
        assert all(r["status"] == "delivered" for r in store.outbox.messages(limit=None))
        verdict = store.journal.verify()
        assert verdict.ok, verdict
    finally:
        engine.dispose()
