"""``/v1/reports`` over real HTTP: usage as JSON and CSV, bad parameters, PLUS's totals."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.api import create_app
from gateway.config import Settings
from gateway.runtime import Runtime
from gateway.store.schema import journal
from tests.integration.conftest import serve_in_thread


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[Runtime, httpx.Client]]:
    """The gateway's API on a free loopback port over a fresh store."""
    runtime = Runtime(settings)
    server = serve_in_thread(create_app(runtime), settings.api.port)
    client = httpx.Client(base_url=f"http://127.0.0.1:{settings.api.port}", timeout=30)
    try:
        yield runtime, client
    finally:
        client.close()
        server.should_exit = True
        runtime.close()


def _use(
    runtime: Runtime,
    month: int,
    eservice: str,
    recipient: str,
    outcome: str,
    n: int = 1,
    client: str | None = None,
) -> None:
    for _ in range(n):
        runtime.store.usage.record(
            at=datetime(2027, month, 15, 12, tzinfo=UTC),
            eservice=eservice,
            recipient_type=recipient,
            outcome=outcome,
            client_key=client,
        )


def test_usage_as_json_and_csv(served: tuple[Runtime, httpx.Client]) -> None:
    runtime, http = served
    _use(runtime, 1, "my_probation_data", "client", "answered", 3, client="a")
    _use(runtime, 1, "my_probation_data", "client", "refused", 1, client="b")
    _use(runtime, 2, "probation_client_data", "employer", "answered", 2)
    _use(runtime, 4, "information_to_vpd", "client", "accepted", 1, client="a")
    answer = http.get("/v1/reports/eservices", params={"from": "2027-01", "to": "2027-03"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["from"] == "2027-01" and body["to"] == "2027-03"
    assert body["rows"] == [
        {
            "month": "2027-01",
            "eservice": "my_probation_data",
            "recipient_type": "client",
            "outcome": "answered",
            "uses": 3,
        },
        {
            "month": "2027-01",
            "eservice": "my_probation_data",
            "recipient_type": "client",
            "outcome": "refused",
            "uses": 1,
        },
        {
            "month": "2027-02",
            "eservice": "probation_client_data",
            "recipient_type": "employer",
            "outcome": "answered",
            "uses": 2,
        },
    ]
    totals = body["totals"]
    assert totals["uses"] == 6 and totals["served"] == 5
    assert totals["by_month"] == {"2027-01": 4, "2027-02": 2, "2027-03": 0}
    assert totals["by_recipient_type"]["employer"] == 2
    assert totals["by_eservice"]["employer_information"] == 0
    assert body["distinct_clients"] == 1  # b was refused

    for request in (
        {"params": {"from": "2027-01", "to": "2027-12", "format": "csv"}},
        {"params": {"from": "2027-01", "to": "2027-12"}, "headers": {"Accept": "text/csv"}},
    ):
        answer = http.get("/v1/reports/eservices", **request)  # type: ignore[arg-type]
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/csv")
        assert "eservices-2027-01-2027-12.csv" in answer.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert len(rows) == 4
        assert rows[-1] == {
            "month": "2027-04",
            "eservice": "information_to_vpd",
            "recipient_type": "client",
            "outcome": "accepted",
            "uses": "1",
        }
    # format= wins over Accept; one month when `to` is left out.
    answer = http.get(
        "/v1/reports/eservices",
        params={"from": "2027-02", "format": "json"},
        headers={"Accept": "text/csv"},
    )
    assert answer.json()["totals"]["uses"] == 2


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({}, "query.from"),
        ({"from": "2027-13"}, "query.from"),
        ({"from": "2027-1"}, "query.from"),
        ({"from": "27-01"}, "query.from"),
        ({"from": "2027-01", "to": "2026-12"}, "query.to"),
        ({"from": "2027-01", "to": "december"}, "query.to"),
        ({"from": "2000-01", "to": "2027-12"}, "query.to"),
        ({"from": "2027-01", "format": "xml"}, "query.format"),
        ({"from": "2027-01" * 5}, "query.from"),
    ],
)
def test_bad_parameters_are_422_with_the_field(
    served: tuple[Runtime, httpx.Client], params: dict[str, str], path: str
) -> None:
    _runtime, http = served
    answer = http.get("/v1/reports/eservices", params=params)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "REQUEST_INVALID"
    assert path in [d["path"] for d in error["details"]]


def test_unacceptable_accept_is_406(served: tuple[Runtime, httpx.Client]) -> None:
    _runtime, http = served
    answer = http.get(
        "/v1/reports/eservices", params={"from": "2027-01"}, headers={"Accept": "application/xml"}
    )
    assert answer.status_code == 406
    assert answer.json()["error"]["code"] == "NOT_ACCEPTABLE"


def test_plus_totals_are_stored_replaced_and_checked(served: tuple[Runtime, httpx.Client]) -> None:
    runtime, http = served
    answer = http.put(
        "/v1/reports/totals/2027", json={"active_clients": 17500, "rulings_received": 9000}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "period": "2027",
        "totals": {"active_clients": 17500, "rulings_received": 9000},
    }
    http.put("/v1/reports/totals/2027", json={"rulings_received": 9100})
    http.put("/v1/reports/totals/2027-03", json={"execution_data_sent": 700})
    got = http.get("/v1/reports/totals", params={"year": 2027}).json()
    assert got["totals"] == {
        "2027": {"active_clients": 17500, "rulings_received": 9100},
        "2027-03": {"execution_data_sent": 700},
    }
    # Each change is journaled (which measures, by whom; a total is no personal data).
    with runtime.store.db.connect() as conn:
        journaled = (
            conn.execute(select(journal.c.detail).where(journal.c.status == "totals_received"))
            .scalars()
            .all()
        )
    assert journaled == [
        "2027: active_clients=17500, rulings_received=9000",
        "2027: rulings_received=9100",
        "2027-03: execution_data_sent=700",
    ]
    bad: list[tuple[str, Any, str]] = [
        ("2027", {"active_clients": -1}, "body.active_clients"),
        ("2027", {"active_clients": 1.5}, "body.active_clients"),
        ("2027", {"active_clients": True}, "body.active_clients"),
        ("2027", {"paper": 1}, "body.paper"),
        ("2027", {}, "body"),
        ("2027", [1], "body"),
    ]
    for period, body, path in bad:
        answer = http.put(f"/v1/reports/totals/{period}", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert path in [d["path"] for d in answer.json()["error"]["details"]]
    answer = http.put("/v1/reports/totals/2027", content=b"{not json")
    assert answer.status_code == 422
    answer = http.put("/v1/reports/totals/2027-13", json={"active_clients": 1})
    assert answer.status_code == 422
    assert "path.period" in [d["path"] for d in answer.json()["error"]["details"]]
    answer = http.put("/v1/reports/totals/2027", content=b" " * 5000)
    assert answer.status_code == 413
    # Nothing bad was stored.
    assert http.get("/v1/reports/totals", params={"year": 2027}).json() == got


def test_indicators_over_http(served: tuple[Runtime, httpx.Client]) -> None:
    runtime, http = served
    _use(runtime, 5, "my_probation_data", "client", "answered", 4, client="a")
    _use(runtime, 6, "information_to_vpd", "client", "accepted", 2, client="b")
    _use(runtime, 6, "information_to_vpd", "client", "failed", 1, client="c")
    http.put("/v1/reports/totals/2027", json={"active_clients": 8})
    answer = http.get("/v1/reports/indicators", params={"year": 2027})
    assert answer.status_code == 200, answer.text
    got = {i["id"]: i for i in answer.json()["indicators"]}
    assert got["eservice_uses"]["value"] == 6
    assert (
        got["clients_using_eservices"]["numerator"],
        got["clients_using_eservices"]["value"],
    ) == (
        2,
        25.0,
    )
    assert got["rulings_received_electronically"]["value"] is None
    for year in ("1800", "3000", "twenty", ""):
        answer = http.get("/v1/reports/indicators", params={"year": year})
        assert answer.status_code == 422, year
        assert "query.year" in [d["path"] for d in answer.json()["error"]["details"]]
