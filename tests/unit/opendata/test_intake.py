"""POST /v1/statistics/extracts: streamed, validated row by row, the last good extract kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.opendata.extract import ExtractCodes, ExtractValidator
from gateway.opendata.service import load_extract_rows
from gateway.opendata.synthetic import SyntheticYear, extract_csv, extract_jsonl
from gateway.store.schema import journal
from gateway.store.statistics import Extracts
from tests.conftest import build_settings


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[Any]:
    """One runtime for the module (building one costs seconds); tests use their own periods."""
    from gateway.runtime import Runtime

    rt = Runtime(build_settings(tmp_path_factory.mktemp("intake"), keys_dir))
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def client(runtime: Any) -> TestClient:
    from gateway.api.app import create_app

    return TestClient(create_app(runtime))


def csv_body(clients: int = 300, month: int = 10) -> bytes:
    return "".join(extract_csv(SyntheticYear(2026, clients).extract(month))).encode()


def post(client: TestClient, body: bytes, media: str = "text/csv", period: str = "2026-10") -> Any:
    return client.post(
        f"/v1/statistics/extracts?period={period}",
        content=body,
        headers={"Content-Type": media, "X-User-Id": "plus-export"},
    )


def test_a_good_csv_extract_is_stored_and_journaled(client: TestClient, runtime: Any) -> None:
    body = csv_body()
    answer = post(client, body)
    assert answer.status_code == 201, answer.text
    data = answer.json()
    assert data["status"] == "accepted" and data["rows"] == body.count(b"\n") - 1
    assert answer.headers["location"] == f"/v1/statistics/extracts/{data['id']}"
    rows = load_extract_rows(runtime.store, "2026-10")
    assert len(rows) == data["rows"]
    with runtime.store.db.connect() as conn:
        entry = conn.execute(
            select(journal).where(
                journal.c.operation == "statistics_extract", journal.c.correlation_id == "2026-10"
            )
        ).one()
    # The journal proves what came (size, hash), and holds none of it.
    assert entry.status == "extract_accepted" and entry.payload is None
    assert entry.received_size == len(body) and entry.actor == "plus-export"


def test_json_lines_are_accepted_too(client: TestClient) -> None:
    body = "".join(extract_jsonl(SyntheticYear(2026, 200).extract(3))).encode()
    answer = post(client, body, "application/x-ndjson", "2026-03")
    assert answer.status_code == 201, answer.text


def test_errors_name_line_and_field_and_the_last_good_extract_stays(
    client: TestClient, runtime: Any
) -> None:
    good = csv_body(200, month=9)
    first = post(client, good, period="2026-09")
    assert first.status_code == 201
    lines = good.decode().splitlines()
    header = lines[0].split(",")
    broken = lines[1].split(",")
    broken[header.index("function_subtype")] = "juggling"
    person = lines[2].split(",")
    person[header.index("person_id")] = "010190-12345"  # a personal code, not a pseudonym
    late = lines[3].split(",")
    late[header.index("start_date")] = "2026-10-05"
    body = "\n".join(
        [lines[0], ",".join(broken), ",".join(person), ",".join(late), *lines[4:]]
    ).encode()
    answer = post(client, body, period="2026-09")
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "EXTRACT_INVALID"
    details = {(d["line"], d["field"]): d["message"] for d in error["details"]}
    assert details[(2, "function_subtype")] == "unknown function sub-type code"
    assert "personal code" in details[(3, "person_id")]
    assert "after the extract's period" in details[(4, "start_date")]
    # No value from the extract is echoed back.
    assert "juggling" not in answer.text and "010190" not in answer.text
    assert len(load_extract_rows(runtime.store, "2026-09")) == first.json()["rows"]
    listed = [
        i for i in client.get("/v1/statistics/extracts").json()["items"] if i["period"] == "2026-09"
    ]
    assert [i["status"] for i in listed] == ["rejected", "accepted"]
    shown = client.get(f"/v1/statistics/extracts/{listed[0]['id']}").json()
    assert shown["error_count"] == 3 and "content" not in shown


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"person_id,case_id\n", "column missing"),
        (b"not,a,header\n1,2,3\n", "unknown column"),
    ],
)
def test_malformed_extracts(client: TestClient, body: bytes, message: str) -> None:
    answer = post(client, body)
    assert answer.status_code == 422
    assert message in json.dumps(answer.json())


def test_media_type_size_and_period_are_checked(client: TestClient, runtime: Any) -> None:
    assert post(client, b"x", media="application/json").status_code == 415
    assert post(client, csv_body(50), period="2026-13").status_code == 422
    from gateway.api.app import create_app

    limits = runtime.settings.opendata.model_copy(update={"max_extract_bytes": 100})
    original = runtime.settings
    runtime.settings = original.model_copy(update={"opendata": limits})
    try:
        answer = post(TestClient(create_app(runtime)), csv_body(50))
    finally:
        runtime.settings = original
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "EXTRACT_TOO_LARGE"


def test_the_schema_is_published(client: TestClient) -> None:
    schema = client.get("/v1/statistics/extracts/schema").json()
    names = [f["name"] for f in schema["fields"]]
    assert names[:3] == ["person_id", "case_id", "function_subtype"]
    subtype = schema["fields"][2]["constraints"]["enum"]
    assert len(subtype) == 13


def test_every_row_rule(codes: ExtractCodes) -> None:
    header = (
        "person_id,case_id,function_subtype,start_date,end_date,closing_date,sex,"
        "birth_year,violent_offence,sexual_offence,economic_activity_start,"
        "economic_activity_end,programme_participation,mediation_outcome,hours_worked,"
        "reoffended"
    )
    rows = [
        "p1,c1,forced_labour,2026-01-05,,,M,1990,false,false,employed,,false,,,",  # hours
        "p2,c2,mediation,2026-01-05,,2026-02-01,F,1990,false,false,employed,,false,,,",  # outcome
        "p3,c3,conditional_sentence_supervision,2026-01-05,,,X,1990,maybe,false,idle,,false,,,",
        "p4,c4,public_work,2026-01-05,,,M,1990,false,false,employed,,false,settled,-3,",
        "p5,c5,mediation,2026-03-01,,2026-02-01,F,1990,false,false,employed,,false,settled,,",
        "p6,c6,mediation,2025-03-01,,2025-06-01,F,1990,false,false,employed,,false,settled,,",
        "p7,c7,mediation,2026-03-01,,,F,1990,false,false,employed,,false,,,",  # good
        "p8,c7,mediation,2026-03-01,,,F,1990,false,false,employed,,false,,,",  # same case
    ]
    validator = ExtractValidator(codes, "2026-10")
    good = list(validator.csv_rows([header + "\n", *(r + "\n" for r in rows)]))
    assert [r.case_id for r in good] == ["c7"]
    found = {(e.line, e.field) for e in validator.errors}
    assert (2, "hours_worked") in found
    assert (3, "mediation_outcome") in found
    assert {
        (4, "end_date"),
        (4, "sex"),
        (4, "violent_offence"),
        (4, "economic_activity_start"),
    } <= found
    assert {(5, "mediation_outcome"), (5, "hours_worked")} <= found
    assert (6, "closing_date") in found  # before the start
    assert (7, "closing_date") in found  # closed before the year
    assert (9, "case_id") in found
    assert not validator.ok


def test_extracts_lists_without_rows(runtime: Any, client: TestClient) -> None:
    post(client, csv_body(100, month=2), period="2026-02")
    items = [
        i
        for i in Extracts(runtime.store.db, runtime.store.journal).recent()
        if i["period"] == "2026-02"
    ]
    assert len(items) == 1 and "content" not in items[0] and items[0]["rows"] > 0
