"""Outbound delivery through the E-case platform simulator: retries, dead letters, restarts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx

from gateway.api import create_app
from gateway.config import Settings
from gateway.delivery import DeliveryWorker
from gateway.runtime import Runtime
from gateway.server import stop_app_threads
from gateway.sim import EcasePlatformSim, create_platform_app
from tests.conftest import sample_json, seed_answered_requests
from tests.integration.conftest import Live, serve_in_thread

# Answers the court ruling that the harness seeds into the inbox: it goes to TIS via E-case.
NOTIFICATION = sample_json("execution_notification")


def send(http: httpx.Client, gateway: str) -> str:
    response = http.post(
        f"{gateway}/v1/outbound/execution_notification",
        json=NOTIFICATION,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_server_faults_are_retried_until_delivered(live: Live) -> None:
    live.http.put(f"{live.sim_url}/sim/ecase/faults/tis", json={"mode": "server_fault", "count": 2})
    message_id = send(live.http, live.gateway)
    status = live.wait_for(message_id)
    assert status["attempts"] == 3
    journal = [e["status"] for e in live.runtime.store.journal.for_message(message_id)]
    assert journal == ["accepted", "retry", "retry", "delivered"]


def test_http_503_is_retried(live: Live) -> None:
    live.http.put(f"{live.sim_url}/sim/ecase/faults/tis", json={"mode": "http_503", "count": 1})
    status = live.wait_for(send(live.http, live.gateway))
    assert status["attempts"] == 2


def test_client_fault_goes_to_dead_letter_with_reason(live: Live) -> None:
    live.http.put(f"{live.sim_url}/sim/ecase/faults/tis", json={"mode": "client_fault", "count": 1})
    message_id = send(live.http, live.gateway)
    status = live.wait_for(message_id, "dead")
    assert status["attempts"] == 1
    assert status["last_error"]["code"] == "PARTNER_REJECTED"
    assert "simulated rejection" in status["last_error"]["message"]


def test_malformed_answer_is_permanent(live: Live) -> None:
    live.http.put(f"{live.sim_url}/sim/ecase/faults/tis", json={"mode": "malformed", "count": 1})
    status = live.wait_for(send(live.http, live.gateway), "dead")
    assert status["last_error"]["code"] == "PARTNER_REJECTED"


def test_partner_down_then_up(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    runtime = Runtime(settings)
    seed_answered_requests(settings, runtime.store, runtime.mappings)
    worker = DeliveryWorker(runtime)
    worker.start()
    server = serve_in_thread(create_app(runtime, worker), settings.api.port)
    gateway = f"http://127.0.0.1:{settings.api.port}"
    sim_server = None
    try:
        with httpx.Client(timeout=10) as http:
            message_id = send(http, gateway)
            # nobody listens on the platform's port: connection refused, retried
            status = None
            for _ in range(200):
                status = http.get(f"{gateway}/v1/messages/{message_id}").json()
                if status["attempts"] >= 2:
                    break
                time.sleep(0.05)
            assert status is not None
            assert status["status"] in ("pending", "sending")
            assert status["last_error"]["code"] == "PARTNER_UNAVAILABLE"
            platform = EcasePlatformSim(settings)
            sim_server = serve_in_thread(
                create_platform_app(platform), settings.simulators["ecase"].port
            )
            for _ in range(300):
                status = http.get(f"{gateway}/v1/messages/{message_id}").json()
                if status["status"] == "delivered":
                    break
                time.sleep(0.05)
            assert status["status"] == "delivered"
            received = platform.institution("tis").records.received()
            assert [r.message_id for r in received] == [message_id]
    finally:
        worker.stop()
        stop_app_threads(server)
        if sim_server:
            stop_app_threads(sim_server)
        runtime.close()


def test_accepted_messages_survive_a_restart(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(delivery={"enabled": False})
    runtime = Runtime(settings)
    seed_answered_requests(settings, runtime.store, runtime.mappings)
    server = serve_in_thread(create_app(runtime, None), settings.api.port)
    gateway = f"http://127.0.0.1:{settings.api.port}"
    with httpx.Client(timeout=10) as http:
        ids = [send(http, gateway) for _ in range(3)]
    stop_app_threads(server)
    runtime.close()

    # a new process-worth of runtime over the same database delivers them
    platform = EcasePlatformSim(settings)
    sim_server = serve_in_thread(create_platform_app(platform), settings.simulators["ecase"].port)
    runtime2 = Runtime(settings)
    worker = DeliveryWorker(runtime2)
    try:
        while worker.run_once():
            pass
        received = platform.institution("tis").records.received()
        assert {r.message_id for r in received} == set(ids)
        for message_id in ids:
            row = runtime2.store.outbox.get(message_id)
            assert row is not None and row["status"] == "delivered"
    finally:
        stop_app_threads(sim_server)
        runtime2.close()
