"""Delivery through the E-case platform simulator: faults, dead letters, replay, push."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from gateway.cli import build_parser
from gateway.config import Settings
from gateway.delivery.operator import queue_command
from gateway.server import stop_app_threads
from gateway.sim import create_platform_app
from tests.conftest import free_port, sample_json
from tests.integration.conftest import Live, running, serve_in_thread

# An execution notification answering the court ruling the harness seeds: TIS, via E-case.
SAMPLE = sample_json("execution_notification")


def post(live: Live, case: str = "K1-01-26/1") -> str:
    body = {**SAMPLE, "case": {**SAMPLE["case"], "number": case}}
    r = live.http.post(
        f"{live.gateway}/v1/outbound/execution_notification",
        json=body,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def fault(live: Live, mode: str, count: int = 0, delay: float = 0) -> None:
    plan = {"mode": mode, "count": count, "delay": delay}
    assert live.http.put(f"{live.sim_url}/sim/ecase/faults/tis", json=plan).status_code == 200


def test_transient_faults_retry_and_deliver(live: Live) -> None:
    fault(live, "http_503", count=2)
    first = post(live, "K-503")
    assert live.wait_for(first)["attempts"] == 3
    fault(live, "server_fault", count=2)
    second = post(live, "K-FAULT")
    status = live.wait_for(second)
    assert status["attempts"] == 3 and status["last_error"] is None
    assert live.http.get(f"{live.sim_url}/sim/ecase/received/tis").json()["duplicates"] == 0


def test_permanent_faults_dead_letter_then_replay_keeps_id(live: Live) -> None:
    fault(live, "client_fault", count=1)
    dead = post(live, "K-DEAD")
    later = post(live, "K-DEAD")  # same case: held behind the dead one
    other = post(live, "K-OTHER")
    status = live.wait_for(dead, "dead")
    assert status["last_error"]["code"] == "PARTNER_REJECTED" and status["attempts"] == 1
    live.wait_for(other)
    time.sleep(0.3)
    assert live.http.get(f"{live.gateway}/v1/messages/{later}").json()["status"] == "pending"

    admin = f"{live.gateway}/v1/admin/outbox"
    listed = live.http.get(admin, params={"status": "dead", "code": "PARTNER_REJECTED"}).json()
    assert [i["message_id"] for i in listed["items"]] == [dead]
    stats = live.http.get(f"{admin}/stats").json()["tis"]
    assert stats["held_by_dead"] == 1
    bad = live.http.post(f"{admin}/{dead}/replay", json={"actor": "", "reason": "x"})
    assert bad.status_code == 422
    r = live.http.post(f"{admin}/{dead}/replay", json={"actor": "ilze", "reason": "TIS fixed"})
    assert r.status_code == 200, r.text
    assert live.wait_for(dead)["attempts"] == 1  # fresh budget, same id
    live.wait_for(later)
    order = [m.message_id for m in live.sim("tis").records.received()]
    assert order.index(dead) < order.index(later)
    shown = live.http.get(f"{admin}/{dead}").json()
    replayed = [e for e in shown["journal"] if e["status"] == "replayed"]
    assert replayed[0]["actor"] == "ilze" and replayed[0]["detail"] == "TIS fixed"
    assert live.http.get(f"{live.gateway}/v1/admin/journal/verify").json()["ok"] is True


def test_malformed_answer_is_permanent_and_discard_releases_case(live: Live) -> None:
    fault(live, "malformed", count=1)
    dead = post(live, "K-MAL")
    later = post(live, "K-MAL")
    assert live.wait_for(dead, "dead")["last_error"]["code"] == "PARTNER_REJECTED"
    admin = f"{live.gateway}/v1/admin/outbox"
    r = live.http.post(f"{admin}/{dead}/discard", json={"actor": "ilze", "reason": "resent"})
    assert r.status_code == 200
    live.wait_for(later)
    assert (
        live.http.post(f"{admin}/{dead}/discard", json={"actor": "a", "reason": "b"}).status_code
        == 404
    )
    metrics = live.http.get(f"{live.gateway}/metrics").text
    assert 'plusgw_dead_letters_total{code="PARTNER_REJECTED"' in metrics
    labels = 'operation="SubmitExecutionNotification",partner="tis",status="discarded"'
    assert f"plusgw_outbox_messages{{{labels}}} 1.0" in metrics
    assert "plusgw_outbox_oldest_age_seconds" in metrics


def test_cli_bulk_replay_and_stats(live: Live, capsys: Any) -> None:
    fault(live, "client_fault", count=3)
    ids = [post(live, f"K-BULK-{i}") for i in range(3)]
    for i in ids:
        live.wait_for(i, "dead")
    parser = build_parser()
    store = live.runtime.store
    assert queue_command(parser.parse_args(["queue", "stats"]), store) == 0
    out = capsys.readouterr().out
    assert "tis" in out and "held by dead" in out
    args = parser.parse_args(
        ["queue", "replay", "--all-dead", "--partner", "tis", "--reason", "fixed", "--actor", "t"]
    )
    assert queue_command(args, store) == 0
    assert "3 of 3 message(s) queued again" in capsys.readouterr().out
    live.worker.wake()
    for i in ids:
        live.wait_for(i)
    assert queue_command(parser.parse_args(["queue", "stats", "--json"]), store) == 0
    out = capsys.readouterr().out  # the worker's logs share stdout here
    stats = json.loads(out[out.index("{\n") : out.index("\n}\n") + 2])
    assert stats["tis"]["counts"]["delivered"] == 3 and stats["tis"]["depth"] == 0


def _receiver(fail_first: int) -> tuple[FastAPI, list[dict[str, Any]]]:
    got: list[dict[str, Any]] = []
    calls = {"n": 0}
    lock = threading.Lock()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        body = await request.json()
        with lock:
            calls["n"] += 1
            if calls["n"] <= fail_first:
                return Response("busy", status_code=503)
            assert request.headers["idempotency-key"] == body["id"]
            got.append(body)
        return Response(status_code=204)

    return app, got


def test_push_mode_delivers_inbox_in_order_with_retries(
    make_settings: Callable[..., Settings],
) -> None:
    port = free_port()
    settings = make_settings(
        push={
            "url": f"http://127.0.0.1:{port}/hook",
            "retry": {"base_delay": 0.05, "max_delay": 0.1},
        }
    )
    app, got = _receiver(fail_first=2)
    receiver = serve_in_thread(app, port)
    try:
        with running(settings, seed=False) as live:
            sent = [live.sim("tis").send("court_ruling") for _ in range(3)]
            assert all(a["Status"] == "ACCEPTED" for a in sent)
            deadline = time.monotonic() + 15
            while len(got) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [g["partner_message_id"] for g in got] == [a["MessageId"] for a in sent]
            assert [g["cursor"] for g in got] == sorted(g["cursor"] for g in got)
            assert got[0]["message"]["case"]["number"]
            # pushed means acknowledged: nothing is left to pull. The push is recorded once the
            # webhook has answered, a moment after the receiver took the message.
            settle = time.monotonic() + 5
            while True:
                items = live.http.get(f"{live.gateway}/v1/inbox").json()["items"]
                if not items or time.monotonic() > settle:
                    break
                time.sleep(0.05)
            assert items == []
            statuses = [e["status"] for e in live.runtime.store.journal.for_message(got[0]["id"])]
            assert statuses.count("push_retry") == 2 and statuses[-1] == "pushed"
    finally:
        stop_app_threads(receiver)


def test_outage_then_recovery_delivers_everything_in_order(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        institutions={"tis": {"retry": {"base_delay": 0.05, "max_delay": 0.3, "max_attempts": 500}}}
    )
    with running(settings, sim=False) as live:
        cases = [f"K-OUT-{c}" for c in range(3)]
        ids: list[tuple[str, str]] = []
        for i in range(12):
            case = cases[i % 3]
            ids.append((case, post(live, case)))
        time.sleep(1.0)  # connection refused: nobody listens yet
        assert all(
            live.http.get(f"{live.gateway}/v1/messages/{m}").json()["status"] != "delivered"
            for _, m in ids
        )
        sim_server = serve_in_thread(
            create_platform_app(live.platform), settings.simulators["ecase"].port
        )
        try:
            fault(live, "http_503", count=6)
            time.sleep(0.5)
            fault(live, "server_fault", count=6)
            time.sleep(0.5)
            fault(live, "slow", count=3, delay=0.3)
            for case in cases:
                ids.append((case, post(live, case)))
            for _, m in ids:
                live.wait_for(m, timeout=30)
            received = [r.message_id for r in live.sim("tis").records.received()]
            for case in cases:
                mine = [m for c, m in ids if c == case]
                assert [r for r in received if r in mine] == mine
            stats = live.runtime.store.outbox.stats()["tis"]
            assert stats["counts"].get("dead", 0) == 0
        finally:
            stop_app_threads(sim_server)
