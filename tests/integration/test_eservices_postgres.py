"""The e-service round trip and the PLUS-down path on PostgreSQL (the store several instances
share), with two gateways' pending sweepers racing to tell the portal: it hears once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.eservices.pending import PendingSweeper
from gateway.eservices.portal import PortalSim
from gateway.runtime import Runtime
from tests.conftest import build_settings, postgres_schema
from tests.integration.conftest import running


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.mark.postgres
def test_round_trip_and_pending_once_on_postgres(
    tmp_path: Path, keys_dir: Path, pg_url: str
) -> None:
    settings = build_settings(
        tmp_path,
        keys_dir,
        store={"url": pg_url},
        eservices={"pending_after": 1, "sweep_interval": 0.1},
    )
    with running(settings) as live:
        # A second instance on the same database, sweeping too.
        other = Runtime(settings, run_migrations=False)
        sweepers = [PendingSweeper(live.runtime, live.worker), PendingSweeper(other)]
        for s in sweepers:
            s.start()
        try:
            portal = PortalSim(settings, live.platform.institution("portal"))
            rid = portal.request("client", "my_probation_data")["request_id"]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(
                g["message_type"] == "eservice_pending" for g in portal.received(rid)
            ):
                time.sleep(0.05)
            time.sleep(1.0)  # both sweepers have had several turns
            pendings = [g for g in portal.received(rid) if g["message_type"] == "eservice_pending"]
            assert len(pendings) == 1
            response = live.http.post(
                f"{live.gateway}/v1/eservices/requests/{rid}/answer",
                json={
                    "status": "answered",
                    "content": {"case": {"status": "active"}, "internal": 1},
                    "notify_e_address": True,
                },
            )
            assert response.status_code == 202, response.text
            live.wait_for(response.json()["id"])
            live.wait_for(response.json()["notification_message_id"])
            [answer] = [g for g in portal.received(rid) if g["message_type"] == "eservice_answer"]
            assert json.loads(answer["content"]) == {"case": {"status": "active"}}
        finally:
            for s in sweepers:
                s.stop()
            other.close()
