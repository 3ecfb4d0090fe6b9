"""No audit, no data: a registry answer is given out only after its audit row is committed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

import gateway.api  # noqa: F401  (imports the API before its registry routes, as the app does)
from gateway.errors import GatewayError
from gateway.registries.api import ANSWER_MODELS, ProfileResponse, _answer, _entry
from gateway.registries.breaker import CircuitBreaker
from gateway.registries.cache import TTLCache
from gateway.registries.client import Answer, QueryContext
from gateway.registries.contract import REGISTRIES
from gateway.registries.service import Outcome, RegistryService
from gateway.store import Store, create_store_engine, migrate
from gateway.store.schema import registry_queries

CODE = "161175-19997"
CTX = QueryContext("officer-1", "test", "VPD-1")


class _Registry:
    """Stands in for the network side of a registry (not what these tests are about)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def query(self, personal_code: str, ctx: QueryContext, query_id: str) -> Answer:
        data = {"request_id": query_id, "personal_code": personal_code, "result": "FOUND"}
        return Answer(self.name, "ok", query_id, f"{self.name}-1", "2026-11-23", data, "0" * 64)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    engine = create_store_engine(f"sqlite:///{tmp_path}/store.db")
    migrate(engine)
    return Store(engine)


def _service(store: Store) -> RegistryService:
    return RegistryService(
        {n: _Registry(n) for n in REGISTRIES},  # type: ignore[misc]
        audit=store.audit,
        breakers={n: CircuitBreaker(n, failure_threshold=3, reset_timeout=10) for n in REGISTRIES},
        cache=TTLCache(0, 10),
    )


def _rows(store: Store) -> int:
    with store.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(registry_queries)).scalar_one())


def test_answers_come_with_their_audit_rows_committed(store: Store) -> None:
    service = _service(store)
    try:
        assert service.query("viis", CODE, CTX).status == "ok"
        assert _rows(store) == 1
        assert {o.status for o in service.profile(CODE, CTX).values()} == {"ok"}
        assert _rows(store) == 5
    finally:
        service.close()


def test_no_answer_when_the_audit_cannot_be_written(store: Store) -> None:
    service = _service(store)
    with store.db.engine.begin() as conn:
        conn.execute(text("DROP TABLE registry_queries"))
    try:
        with pytest.raises((GatewayError, SQLAlchemyError)):
            service.query("viis", CODE, CTX)
        with pytest.raises((GatewayError, SQLAlchemyError)):
            service.profile(CODE, CTX)
    finally:
        service.close()


@pytest.mark.parametrize("registry", list(REGISTRIES))
def test_answer_json_is_the_documented_models_json(registry: str) -> None:
    # The API renders answers without FastAPI's response-model pass: the JSON must still be
    # exactly what the documented models give, in the same field order.
    answer = _Registry(registry).query(CODE, CTX, "PLUS-1")
    body = _answer(answer)
    model = ANSWER_MODELS[registry].model_validate(body)
    assert json.dumps(model.model_dump(mode="json")) == json.dumps(body)
    outcomes: dict[str, Any] = {
        registry: Outcome(registry, answer=answer),
        "rd" if registry != "rd" else "vid": Outcome(
            "rd", error=GatewayError("down", partner="rd")
        ),
    }
    profile = {"registries": {n: _entry(o) for n, o in outcomes.items()}}
    dumped = ProfileResponse.model_validate(profile).model_dump(mode="json")
    assert json.dumps(dumped) == json.dumps(profile)
