"""Partner outages without dead cases (issue 8 part 6), through the E-case platform simulator.

Timings are production's divided by ``SCALE`` (300): a 30-minute outage lasts 6 s, the retry
cap of 300 s is 1 s, a week's ``max_age`` is 33 minutes, and the breaker probes every 10 s
/ 300. Assertions are about outcomes (what was delivered, dead-lettered, in which order, how
many attempts were spent) and never about how long something took; loops are bounded.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from gateway.config import Settings
from gateway.store.schema import utcnow
from tests.conftest import sample_json
from tests.integration.conftest import Live, running

pytestmark = pytest.mark.integration

SCALE = 300.0
OUTAGE = 30 * 60 / SCALE
THRESHOLD = 5
#: Production's retry policy and breaker, scaled.
POLICY = {
    "base_delay": 1.0 / SCALE,
    "max_delay": 300.0 / SCALE,
    "max_attempts": 12,
    "max_age": 7 * 24 * 3600 / SCALE,
}
BREAKER = {"failure_threshold": THRESHOLD, "reset_timeout": 10.0 / SCALE}
NOTIFICATION = sample_json("execution_notification")


def scaled(make_settings: Callable[..., Settings], **breaker: Any) -> Settings:
    return make_settings(
        institutions={"tis": {"retry": POLICY, "breaker": {**BREAKER, **breaker}}},
        ecase={"concurrency": 8},
        delivery={"poll_interval": 0.05},
    )


def post(live: Live, case: str) -> str:
    body = {**NOTIFICATION, "case": {**NOTIFICATION["case"], "number": case}}
    r = live.http.post(
        f"{live.gateway}/v1/outbound/execution_notification",
        json=body,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def platform_fault(live: Live, mode: str, count: int = 0, delay: float = 0.0) -> None:
    plan = {"mode": mode, "count": count, "delay": delay}
    assert live.http.put(f"{live.sim_url}/sim/ecase/faults", json=plan).status_code == 200


def tis_fault(live: Live, mode: str, count: int = 0, delay: float = 0.0) -> None:
    plan = {"mode": mode, "count": count, "delay": delay}
    assert live.http.put(f"{live.sim_url}/sim/ecase/faults/tis", json=plan).status_code == 200


def partner(live: Live) -> dict[str, Any]:
    """TIS in the /ready details: breaker state, failures, waiting messages."""
    ready = live.http.get(f"{live.gateway}/ready").json()
    found: dict[str, Any] = ready["checks"]["delivery_partners"]["partners"]["tis"]
    return found


def wait_until(check: Callable[[], bool], what: str, tries: int = 600) -> None:
    for _ in range(tries):
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def outbox(live: Live) -> list[dict[str, Any]]:
    return live.runtime.store.outbox.messages(partner="tis", limit=None)


def received(live: Live) -> list[str]:
    return [r.message_id for r in live.sim("tis").records.received()]


def assert_case_order(live: Live, accepted: list[tuple[str, str]]) -> None:
    order = {m: i for i, m in enumerate(received(live))}
    for case in {c for c, _ in accepted}:
        mine = [order[m] for c, m in accepted if c == case]
        assert mine == sorted(mine), f"case {case} out of order"


def metric(live: Live, name: str) -> float:
    """Sum of every series of ``name`` in /metrics."""
    total = 0.0
    for line in live.http.get(f"{live.gateway}/metrics").text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_30_minute_outage_leaves_no_dead_letter_and_drains_in_order(
    make_settings: Callable[..., Settings],
) -> None:
    with running(scaled(make_settings)) as live:
        accepted = [(f"K-{c}", post(live, f"K-{c}")) for c in range(10)]
        for _, m in accepted:
            live.wait_for(m)

        # The platform goes down for every addressee (HTTP 503)...
        platform_fault(live, "http_503")
        start = time.monotonic()
        wave = 0
        while time.monotonic() - start < OUTAGE / 2:
            # ...while PLUS keeps sending: old cases and new ones.
            accepted += [(f"K-{c}", post(live, f"K-{c}")) for c in range(wave, wave + 15)]
            wave += 3
            time.sleep(0.2)
        during = partner(live)
        assert during["state"] in ("open", "half_open") and during["waiting"] > 0
        text = live.http.get(f"{live.gateway}/metrics").text
        assert 'plusgw_delivery_breaker_state{partner="tis",state="closed"} 0.0' in text
        assert metric(live, 'plusgw_delivery_waiting_messages{partner="tis"}') > 0
        # ...then the platform is back but TIS behind it faults (SOAP Server faults).
        tis_fault(live, "server_fault")
        platform_fault(live, "none")
        while time.monotonic() - start < OUTAGE:
            accepted += [(f"N-{c}", post(live, f"N-{c}")) for c in range(wave, wave + 5)]
            wave += 5
            time.sleep(0.2)
        rows = outbox(live)
        assert not [r for r in rows if r["status"] == "dead"]
        assert partner(live)["waiting"] > 0

        tis_fault(live, "none")  # recovery
        wait_until(
            lambda: all(r["status"] == "delivered" for r in outbox(live)),
            "every message delivered after the recovery",
        )
        rows = outbox(live)
        assert len(rows) == len(accepted) and {r["status"] for r in rows} == {"delivered"}
        assert_case_order(live, accepted)
        assert live.sim("tis").records.snapshot()["duplicates"] == 0
        # Sends while the breaker was open did not count: a message spent at most the
        # failures before the breaker opened (plus one on a recovery straggler), never the
        # dozens a 30-minute outage would have cost it with backoff alone.
        assert max(r["attempts"] for r in rows) <= THRESHOLD + 2
        waited = [
            e["status"]
            for m in [m for _, m in accepted]
            for e in live.runtime.store.journal.for_message(m)
        ]
        assert "waiting" in waited and "dead" not in waited
        after = partner(live)
        assert after["state"] == "closed" and after["waiting"] == 0
        assert live.runtime.store.journal.verify().ok


def test_without_the_breaker_the_same_outage_kills_cases(
    make_settings: Callable[..., Settings],
) -> None:
    """The control: a breaker that never opens leaves the backoff alone against the outage,
    and 12 attempts capped at 300 s end long before 30 minutes do."""
    with running(scaled(make_settings, failure_threshold=1_000_000)) as live:
        platform_fault(live, "http_503")
        accepted = [(f"K-{c}", post(live, f"K-{c}")) for c in range(5)]
        wait_until(
            lambda: all(r["status"] == "dead" for r in outbox(live)),
            "every head message dead-lettered",
            tries=int(OUTAGE / 0.05),
        )
        assert partner(live)["state"] == "closed"
        platform_fault(live, "none")
        assert {r["attempts"] for r in outbox(live)} == {POLICY["max_attempts"]}
        assert len(accepted) == 5


def test_recovery_pulls_waiting_messages_forward_past_their_backoff(
    make_settings: Callable[..., Settings],
) -> None:
    """Failures counted before the breaker opened left long backoffs (up to minutes here);
    once the trial message gets through, every waiting message is due at once."""
    settings = make_settings(
        institutions={
            "tis": {
                "retry": {"base_delay": 60, "max_delay": 600, "max_attempts": 12},
                "breaker": {"failure_threshold": 4, "reset_timeout": 0.1},
            }
        },
        delivery={"poll_interval": 0.05},
    )
    with running(settings) as live:
        platform_fault(live, "http_503")
        ids = [post(live, f"F-{c}") for c in range(6)]
        wait_until(lambda: partner(live)["state"] != "closed", "the breaker opens")
        backoff = {
            r["message_id"]: r["next_attempt_at"]
            for r in outbox(live)
            if r["attempts"] and r["next_attempt_at"] > utcnow() + timedelta(seconds=10)
        }
        assert backoff  # three counted failures, each with up to a minute or two of backoff
        platform_fault(live, "none")
        wait_until(
            lambda: all(r["status"] == "delivered" for r in outbox(live)),
            "every message delivered",
        )
        rows = {r["message_id"]: r for r in outbox(live)}
        assert set(rows) == set(ids)
        for message_id, due in backoff.items():
            assert rows[message_id]["delivered_at"] < due  # did not sleep out its backoff
        # The breaker's trial goes out ahead of its backoff by itself, before the pull: when
        # it is one of the waiting messages, the others are the ones pulled forward.
        trial = min(rows.values(), key=lambda r: r["delivered_at"])["message_id"]
        pulled = metric(live, 'plusgw_delivery_pulled_forward_total{partner="tis"}')
        assert pulled >= len(set(backoff) - {trial})
        assert partner(live)["state"] == "closed"


@contextmanager
def watched_sends(live: Live, case_of: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Count messages in flight per case and overall around the client's sends."""
    client = live.runtime.channels.client_for("tis")
    original = client.send
    lock = threading.Lock()
    in_flight: Counter[str] = Counter()
    seen: dict[str, Any] = {"per_case": 0, "overall": 0}

    def send(operation: str, payload: bytes, **kwargs: Any) -> Any:
        case = case_of.get(kwargs.get("message_id") or "", "?")
        with lock:
            in_flight[case] += 1
            seen["per_case"] = max(seen["per_case"], in_flight[case])
            seen["overall"] = max(seen["overall"], sum(in_flight.values()))
        try:
            return original(operation, payload, **kwargs)
        finally:
            with lock:
                in_flight[case] -= 1

    client.send = send  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        client.send = original  # type: ignore[method-assign]


def test_concurrent_drain_keeps_each_case_in_order_one_at_a_time(
    make_settings: Callable[..., Settings],
) -> None:
    with running(scaled(make_settings)) as live:
        platform_fault(live, "http_503")
        accepted = [(f"C-{i % 12}", post(live, f"C-{i % 12}")) for i in range(60)]
        wait_until(lambda: partner(live)["state"] != "closed", "the breaker opens")
        case_of = {m: c for c, m in accepted}
        with watched_sends(live, case_of) as seen:
            # Back, answering slowly enough for sends to overlap.
            platform_fault(live, "slow", delay=0.05)
            wait_until(
                lambda: all(r["status"] == "delivered" for r in outbox(live)),
                "every message delivered",
            )
        platform_fault(live, "none")
        assert seen["per_case"] == 1  # never two messages of one case at once
        assert seen["overall"] > 1  # but several cases at once
        assert_case_order(live, accepted)
        assert live.sim("tis").records.snapshot()["duplicates"] == 0


def test_permanent_error_still_dead_letters_and_closes_the_breaker(
    make_settings: Callable[..., Settings],
) -> None:
    with running(scaled(make_settings)) as live:
        platform_fault(live, "http_503")
        first = post(live, "P-1")
        second = post(live, "P-1")  # held behind the first (same case)
        other = post(live, "P-2")
        wait_until(lambda: partner(live)["state"] != "closed", "the breaker opens")
        # The next request (the trial message) is refused by TIS: a permanent error.
        platform_fault(live, "none")
        tis_fault(live, "client_fault", count=1)
        dead = live.wait_for(first, "dead")
        assert dead["last_error"]["code"] == "PARTNER_REJECTED"
        live.wait_for(other)  # the partner answered, so the breaker closed for the rest
        assert partner(live)["state"] == "closed"
        assert live.http.get(f"{live.gateway}/v1/messages/{second}").json()["status"] == "pending"
        stats = live.http.get(f"{live.gateway}/v1/admin/outbox/stats").json()["tis"]
        assert stats["held_by_dead"] == 1 and stats["counts"]["dead"] == 1


def test_stop_with_sends_hanging_in_the_pool_gives_every_lease_back(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        institutions={"tis": {"retry": POLICY, "breaker": BREAKER}},
        ecase={"concurrency": 3, "operation_timeout": 30},
        delivery={"poll_interval": 0.05, "lease_seconds": 120},
    )
    with running(settings) as live:
        platform_fault(live, "slow", delay=5)  # every send hangs
        ids = [post(live, f"S-{i}") for i in range(6)]
        wait_until(
            lambda: sum(r["status"] == "sending" for r in outbox(live)) == 3,
            "the pool's three threads all hold a send",
        )
        live.worker.stop(timeout=0.3)
        assert not live.worker.alive
        claimed = live.runtime.store.outbox.claim_due("next-instance", 10, 60)
        assert sorted(r["message_id"] for r in claimed) == sorted(ids)
        platform_fault(live, "none")
