"""Portal-to-answer latency of the e-services with a PLUS stub that answers at once.

``python -m bench.eservices [--requests N]`` starts, on loopback, the gateway (API and delivery
worker), the E-case platform simulator with the portal behind it, and a PLUS stub: a thread
that reads ``GET /v1/eservices/requests?status=pending`` in a tight loop and answers each
request at once with ``POST /v1/eservices/requests/{id}/answer``. The portal simulator sends
``my_probation_data`` requests one after another (a real signed identity assertion each), and
for each the clock runs from the portal's send to the moment the portal simulator has the
``eservice_answer``. Split into:

* ``inbound``: portal send -> the gateway's signed acknowledgement (parse, verify both
  signatures, XSD, access, inbox + request row);
* ``plus``: acknowledgement -> the stub starts its answer (the stub's poll of the pending
  requests);
* ``outbound``: the stub's answer POST -> the portal has it (the answer route: scope, sign,
  outbox; the worker woken; delivery through the platform simulator, the portal's checks).

What the gateway adds is the whole minus the stub's share (``inbound`` + ``outbound`` when the
stub saw the request after the acknowledgement); a real PLUS adds its own time. Everything
runs in one process on a shared small machine, so the figures include the simulators' and the
stub's CPU; they are upper bounds. A benchmark, not a test: it prints figures and writes
bench/results/eservices.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import RESULTS, make_env
from gateway.api import create_app
from gateway.delivery import DeliveryWorker
from gateway.eservices.portal import PortalSim
from gateway.runtime import Runtime
from gateway.server import start_app_thread, stop_app_threads
from gateway.sim import EcasePlatformSim, create_platform_app


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def _summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "p50_ms": round(_pct(ms, 50), 1),
        "p99_ms": round(_pct(ms, 99), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
        "max_ms": round(max(ms), 1),
    }


class PlusStub(threading.Thread):
    """Answers every pending request at once (records when each answer was accepted)."""

    def __init__(self, gateway: str) -> None:
        super().__init__(name="plus-stub", daemon=True)
        self.gateway = gateway
        self.accepted: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set():
                pending = http.get(
                    f"{self.gateway}/v1/eservices/requests", params={"status": "pending"}
                ).json()["requests"]
                for row in pending:
                    rid = row["request_id"]
                    if rid in self.accepted:
                        continue
                    # Stamped before the POST: the gateway may deliver the answer before
                    # its 202 reaches the stub, and everything after this is the gateway's.
                    self.accepted[rid] = time.perf_counter()
                    http.post(
                        f"{self.gateway}/v1/eservices/requests/{rid}/answer",
                        json={"status": "answered", "content": {"case": {"status": "active"}}},
                    ).raise_for_status()
                if not pending:
                    time.sleep(0.002)


def run(requests: int) -> dict[str, Any]:
    """Start everything, send ``requests`` requests one after another, return the figures."""
    with tempfile.TemporaryDirectory(prefix="bench-eservices-") as tmp:
        env = make_env(
            Path(tmp),
            delivery={"enabled": True, "poll_interval": 0.5},
            # The sweeper is not started here; PLUS answers long before it would matter.
            eservices={"pending_after": 3600},
        )
        settings = env.settings
        platform = EcasePlatformSim(settings)
        sim_server = start_app_thread(
            create_platform_app(platform), "127.0.0.1", settings.simulators["ecase"].port, "ecase"
        )
        runtime = Runtime(settings)
        worker = DeliveryWorker(runtime)
        worker.start()
        gateway = f"http://127.0.0.1:{settings.api.port}"
        api_server = start_app_thread(
            create_app(runtime, worker), "127.0.0.1", settings.api.port, "gateway"
        )
        portal = PortalSim(settings, platform.institution(settings.eservices.portal))
        stub = PlusStub(gateway)
        stub.start()
        inbound: list[float] = []
        plus: list[float] = []
        outbound: list[float] = []
        total: list[float] = []
        try:
            for i in range(requests + 5):
                began = time.perf_counter()
                sent = portal.request("client", "my_probation_data")
                acked = time.perf_counter()
                rid = sent["request_id"]
                deadline = time.monotonic() + 30
                got: float | None = None
                while time.monotonic() < deadline:
                    if any(
                        r.message_type == "eservice_answer" and r.canonical.get("request_id") == rid
                        for r in portal.portal.records.received()[-5:]
                    ):
                        got = time.perf_counter()
                        break
                    time.sleep(0.0005)
                if got is None:
                    raise RuntimeError(f"no answer for {rid} within 30 s")
                if i < 5:
                    continue  # warm-up: connection pools, first compilations
                answered = stub.accepted[rid]
                inbound.append(acked - began)
                plus.append(answered - acked)
                outbound.append(got - answered)
                total.append(got - began)
        finally:
            stub.stop.set()
            worker.stop()
            stop_app_threads(api_server, sim_server)
            runtime.close()
        # The stub may see a request before the portal has the gateway's acknowledgement
        # (the request is committed first): then its share is nil, not negative.
        gateway_added = [t - max(0.0, p) for t, p in zip(total, plus, strict=True)]
        return {
            "requests": requests,
            "portal_to_answer": _summary(total),
            "gateway_added": _summary(gateway_added),
            "inbound": _summary(inbound),
            "plus_stub": _summary(plus),
            "outbound": _summary(outbound),
        }


def main() -> None:
    """Run the benchmark, print and store the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    figures = run(args.requests)
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "eservices.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
