"""The VRAA report's pieces: the message built from the counters, sent down the outbound route."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.errors import CanonicalInvalidError, ConfigError
from gateway.reports.vraa import idempotency_key, submit_report, usage_message
from gateway.runtime import Runtime
from gateway.store import Store, create_store_engine, migrate

CODES = {
    "my_probation_data": "VPD-EP-01",
    "probation_client_data": "VPD-EP-02",
    "information_to_vpd": "VPD-EP-03",
    "employer_information": "VPD-EP-04",
}
PROVIDER = {"registration_number": "90000076669", "name": "Valsts probācijas dienests"}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    engine = create_store_engine(f"sqlite:///{tmp_path}/store.db")
    migrate(engine)
    return Store(engine)


def test_message_is_the_months_counters(store: Store) -> None:
    def use(month: int, eservice: str, recipient: str, outcome: str, who: str | None) -> None:
        store.usage.record(
            at=datetime(2027, month, 10, tzinfo=UTC),
            eservice=eservice,
            recipient_type=recipient,
            outcome=outcome,
            client_key=who,
        )

    for who in ("a", "b", "a"):
        use(3, "my_probation_data", "client", "answered", who)
    use(3, "employer_information", "municipality", "accepted", None)
    use(4, "my_probation_data", "client", "answered", "c")
    message = usage_message(store, "2027-03", provider=PROVIDER, service_codes=CODES)
    assert message == {
        "period": "2027-03",
        "provider": PROVIDER,
        "usage": [
            {
                "eservice": "employer_information",
                "service_code": "VPD-EP-04",
                "recipient_type": "municipality",
                "outcome": "accepted",
                "uses": 1,
            },
            {
                "eservice": "my_probation_data",
                "service_code": "VPD-EP-01",
                "recipient_type": "client",
                "outcome": "answered",
                "uses": 3,
            },
        ],
        "total_uses": 4,
        "distinct_clients": 2,
    }
    empty = usage_message(store, "2027-05", provider=PROVIDER, service_codes=CODES)
    assert empty["usage"] == [] and empty["total_uses"] == 0
    key = idempotency_key(message)
    assert key.startswith("eservices-usage-vraa:2027-03:") and len(key) == 45
    assert key == idempotency_key(dict(reversed(list(message.items()))))
    assert key != idempotency_key({**message, "total_uses": 5})
    with pytest.raises(ConfigError, match="employer_information"):
        usage_message(store, "2027-03", provider=PROVIDER, service_codes={})


def test_submit_goes_down_the_outbound_route_once_per_figures(settings: Settings) -> None:
    runtime = Runtime(settings)
    try:
        row0: dict[str, Any] = {
            "eservice": "my_probation_data",
            "service_code": "VPD-EP-01",
            "recipient_type": "client",
            "outcome": "answered",
            "uses": 3,
        }
        message: dict[str, Any] = {
            "period": "2027-03",
            "provider": PROVIDER,
            "usage": [row0],
            "total_uses": 3,
            "distinct_clients": 2,
        }
        first = submit_report(runtime, message, user_id="job:test")
        assert first["institution"] == "vraa" and first["created"]
        row = runtime.store.outbox.get(first["id"])
        assert row is not None and row["message_type"] == "eservice_usage_report"
        assert row["partner"] == "vraa" and row["status"] == "pending"
        again = submit_report(runtime, dict(message), user_id="job:test")
        assert again == {**first, "created": False}
        corrected = submit_report(runtime, {**message, "total_uses": 4}, user_id="job:test")
        assert corrected["created"] and corrected["id"] != first["id"]
        # The contract refuses a bad report: permanent, with the field.
        bad = {**message, "usage": [{**row0, "uses": 0}]}
        with pytest.raises(CanonicalInvalidError) as info:
            submit_report(runtime, bad, user_id="job:test")
        assert "usage.0.uses" in json.dumps(info.value.details)
    finally:
        runtime.close()
