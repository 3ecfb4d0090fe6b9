"""The monthly usage report reaches VRAA over real HTTP: job -> local API -> outbox ->
delivery -> the VRAA simulator (signed, XSD-valid), once per month and figures however often it
runs; changed figures go as a corrected report; VRAA down loses nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from gateway.api import create_app
from gateway.config import Settings
from gateway.delivery import DeliveryWorker
from gateway.jobs import JobRunner
from gateway.runtime import Runtime
from gateway.server import stop_app_threads
from gateway.sim import InstitutionSim, create_institution_app
from tests.integration.conftest import serve_in_thread


@dataclass
class Vraa:
    runtime: Runtime
    sim: InstitutionSim
    http: httpx.Client
    runner: JobRunner

    def wait_delivered(self, message_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            body = self.http.get(f"/v1/messages/{message_id}").json()
            if body.get("status") == "delivered":
                return body
            time.sleep(0.1)
        raise AssertionError(f"{message_id} not delivered: {body}")


@pytest.fixture
def vraa(settings: Settings) -> Iterator[Vraa]:
    sim = InstitutionSim(settings, "vraa")
    sim_server = serve_in_thread(create_institution_app(sim), settings.simulators["vraa"].port)
    runtime = Runtime(settings)
    worker = DeliveryWorker(runtime)
    worker.start()
    gateway = serve_in_thread(create_app(runtime, worker), settings.api.port)
    http = httpx.Client(base_url=f"http://127.0.0.1:{settings.api.port}", timeout=30)
    try:
        runner = JobRunner(settings, runtime.store, owner="test", runtime=runtime)
        yield Vraa(runtime, sim, http, runner)
    finally:
        http.close()
        worker.stop()
        stop_app_threads(gateway)
        stop_app_threads(sim_server)
        runtime.close()


def _uses(runtime: Runtime) -> None:
    for i in range(7):
        runtime.store.usage.record(
            at=datetime(2027, 3, 1 + i, 9, tzinfo=UTC),
            eservice="my_probation_data",
            recipient_type="client",
            outcome="answered" if i else "failed",
            client_key=f"client-{i % 3}",
        )
    runtime.store.usage.record(
        at=datetime(2027, 3, 20, tzinfo=UTC),
        eservice="probation_client_data",
        recipient_type="employer",
        outcome="answered",
        client_key=None,
    )
    # April's use is not March's.
    runtime.store.usage.record(
        at=datetime(2027, 4, 2, tzinfo=UTC),
        eservice="information_to_vpd",
        recipient_type="client",
        outcome="accepted",
        client_key="client-9",
    )


def test_job_delivers_the_month_to_vraa_once(vraa: Vraa) -> None:
    _uses(vraa.runtime)
    outcome = vraa.runner.run_now(
        "eservices-usage-vraa", period="2027-03", actor="test", reason="a past month in a test"
    )
    assert outcome.status == "succeeded", outcome
    result = outcome.result
    assert result["institution"] == "vraa"
    assert (result["rows"], result["total_uses"], result["distinct_clients"]) == (3, 8, 3)
    delivered = vraa.wait_delivered(result["message_id"])
    assert delivered["message_type"] == "eservice_usage_report"

    received = vraa.sim.records.snapshot()
    assert not received["rejected"]
    [message] = received["received"]
    report = message["canonical"]
    assert report["period"] == "2027-03"
    assert report["total_uses"] == 8 and report["distinct_clients"] == 3
    assert report["provider"]["name"] == "Valsts probācijas dienests"
    assert {(u["eservice"], u["outcome"], u["uses"]) for u in report["usage"]} == {
        ("my_probation_data", "answered", 6),
        ("my_probation_data", "failed", 1),
        ("probation_client_data", "answered", 1),
    }
    assert {u["service_code"] for u in report["usage"]} == {"VPD-EP-01", "VPD-EP-02"}

    # A forced rerun of the month finds the message accepted already: VRAA gets it once.
    again = vraa.runner.run_now(
        "eservices-usage-vraa", period="2027-03", force=True, actor="test", reason="rerun"
    )
    assert again.status == "succeeded", again
    assert again.result["message_id"] == result["message_id"]
    time.sleep(1.0)  # room for a second delivery, were there one
    assert len(vraa.sim.records.snapshot()["received"]) == 1

    # A use recorded late changes March: a forced rerun sends the corrected report.
    vraa.runtime.store.usage.record(
        at=datetime(2027, 3, 31, 20, tzinfo=UTC),
        eservice="employer_information",
        recipient_type="volunteer",
        outcome="accepted",
        client_key=None,
    )
    corrected = vraa.runner.run_now(
        "eservices-usage-vraa", period="2027-03", force=True, actor="test", reason="correction"
    )
    assert corrected.status == "succeeded", corrected
    assert corrected.result["message_id"] != result["message_id"]
    vraa.wait_delivered(corrected.result["message_id"])
    first, second = (r["canonical"] for r in vraa.sim.records.snapshot()["received"])
    assert (first["total_uses"], second["total_uses"]) == (8, 9)
    assert second["period"] == "2027-03"


def test_vraa_down_the_report_waits_and_goes_when_it_is_back(settings: Settings) -> None:
    """The job succeeds while VRAA is down (the report is in the outbox); delivery sends it
    once VRAA answers again: nothing is lost."""
    runtime = Runtime(settings)
    worker = DeliveryWorker(runtime)
    worker.start()
    gateway = serve_in_thread(create_app(runtime, worker), settings.api.port)
    http = httpx.Client(base_url=f"http://127.0.0.1:{settings.api.port}", timeout=30)
    sim_server = None
    try:
        _uses(runtime)
        runner = JobRunner(settings, runtime.store, owner="test", runtime=runtime)
        outcome = runner.run_now(
            "eservices-usage-vraa", period="2027-03", actor="test", reason="vraa is down"
        )
        assert outcome.status == "succeeded", outcome
        message_id = outcome.result["message_id"]
        deadline = time.monotonic() + 60
        while http.get(f"/v1/messages/{message_id}").json().get("attempts", 0) < 1:
            assert time.monotonic() < deadline, "no delivery attempt"
            time.sleep(0.1)
        assert http.get(f"/v1/messages/{message_id}").json()["status"] != "delivered"
        sim = InstitutionSim(settings, "vraa")
        sim_server = serve_in_thread(create_institution_app(sim), settings.simulators["vraa"].port)
        Vraa(runtime, sim, http, runner).wait_delivered(message_id, timeout=120)
        [received] = sim.records.snapshot()["received"]
        assert received["canonical"]["total_uses"] == 8
    finally:
        http.close()
        worker.stop()
        stop_app_threads(gateway)
        if sim_server is not None:
            stop_app_threads(sim_server)
        runtime.close()
