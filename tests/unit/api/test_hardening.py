"""The local API keeps its OpenAPI: one error shape, body limits, bounds, XML-safe text.

Each test pins one fix that schema-driven fuzzing (tests/integration/test_openapi_fuzz.py)
asked for, in-process and without timing assertions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.api import create_app
from gateway.api.limits import json_depth, too_deep
from gateway.config import Settings
from gateway.runtime import Runtime
from tests.conftest import build_settings, sample_json

JSON = {"Content-Type": "application/json"}
REGISTRY_BODY = {
    "personal_code": "161175-19997",
    "purpose": "Izvērtēšanas ziņojuma sagatavošana",
    "officer_id": "officer-17",
    "case_id": "VPD-2026-000123",
}


@pytest.fixture(scope="module")
def shared_runtime(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[Runtime]:
    """One runtime for the module: these tests refuse requests, they store nothing."""
    runtime = Runtime(build_settings(tmp_path_factory.mktemp("hardening"), keys_dir))
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def client(shared_runtime: Runtime) -> TestClient:
    """The app without simulators: what is tested here is refused before any partner call."""
    return TestClient(create_app(shared_runtime), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def spec(client: TestClient) -> dict[str, Any]:
    """The served OpenAPI document."""
    body: dict[str, Any] = client.get("/openapi.json").json()
    return body


def _error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body  # never FastAPI's {"detail": ...}
    error: dict[str, Any] = body["error"]
    assert {"code", "message", "details"} <= set(error)
    if code is not None:
        assert error["code"] == code, error
    return error


def _paths(error: dict[str, Any]) -> list[str]:
    return [d["path"] for d in error["details"]]


# -- one error shape -----------------------------------------------------------------------


def test_unknown_path_is_404_in_the_error_shape(client: TestClient) -> None:
    _error(client.get("/no/such/thing"), 404, "NOT_FOUND")


def test_wrong_method_is_405_in_the_error_shape_with_allow(client: TestClient) -> None:
    response = client.put("/v1/inbox")
    _error(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["allow"]


def test_invalid_parameters_are_422_naming_the_parameter(client: TestClient) -> None:
    error = _error(client.get("/v1/inbox?limit=0"), 422, "REQUEST_INVALID")
    assert _paths(error) == ["query.limit"]


def test_body_that_is_not_utf8_json_is_422_not_fastapis_400(client: TestClient) -> None:
    response = client.post("/v1/registries/profile", content=b"\xff\xfe", headers=JSON)
    error = _error(response, 422, "REQUEST_INVALID")
    assert _paths(error) == ["body"]


def test_malformed_json_is_422_naming_the_body(client: TestClient) -> None:
    response = client.post("/v1/registries/profile", content=b'{"a": ', headers=JSON)
    assert _paths(_error(response, 422, "REQUEST_INVALID")) == ["body"]


def test_an_unexpected_exception_is_a_500_in_the_error_shape(shared_runtime: Runtime) -> None:
    app = create_app(shared_runtime)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    _error(response, 500, "INTERNAL_ERROR")
    assert "a bug" not in response.text


def test_openapi_has_no_fastapi_validation_schema(spec: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for item in spec["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if status == "422":
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}


# -- body size and depth -------------------------------------------------------------------


def test_declared_body_over_the_limit_is_413(make_settings: Callable[..., Settings]) -> None:
    runtime = Runtime(make_settings(api={"max_body_bytes": 1000}))
    try:
        client = TestClient(create_app(runtime))
        body = json.dumps({**REGISTRY_BODY, "purpose": "x" * 1000}).encode()
        error = _error(client.post("/v1/registries/profile", content=body, headers=JSON), 413)
        assert error["code"] == "REQUEST_TOO_LARGE" and _paths(error) == ["body"]
        # at the limit it is read (and refused for what it says, not for its size)
        small = json.dumps({**REGISTRY_BODY, "purpose": ""}).encode()
        assert client.post("/v1/registries/profile", content=small, headers=JSON).status_code == 422
    finally:
        runtime.close()


def test_streamed_body_over_the_limit_is_413(make_settings: Callable[..., Settings]) -> None:
    runtime = Runtime(make_settings(api={"max_body_bytes": 1000}))
    try:
        client = TestClient(create_app(runtime))

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
            for _ in range(20):
                yield b" " * 100

        response = client.post("/v1/registries/profile", content=chunks(), headers=JSON)
        _error(response, 413, "REQUEST_TOO_LARGE")
    finally:
        runtime.close()


def test_the_soap_endpoint_keeps_its_own_larger_limit(
    make_settings: Callable[..., Settings],
) -> None:
    runtime = Runtime(make_settings(api={"max_body_bytes": 1000}))
    try:
        client = TestClient(create_app(runtime))
        response = client.post(
            "/soap/ecase",
            content=b"<x>" + b" " * 5000 + b"</x>",
            headers={"Content-Type": "text/xml"},
        )
        assert response.status_code == 500  # a SOAP fault about the envelope, not a 413
        assert b"REQUEST_TOO_LARGE" not in response.content
    finally:
        runtime.close()


def test_json_nested_deeper_than_the_limit_is_422(client: TestClient) -> None:
    deep = b'{"query": ' + b"[" * 40 + b"]" * 40 + b"}"
    response = client.post("/v1/queries/anything", content=deep, headers=JSON)
    assert _paths(_error(response, 422, "JSON_TOO_DEEP")) == ["body"]


def test_very_deep_json_is_refused_before_the_parser(client: TestClient) -> None:
    # Python's json module would hit the recursion limit on this (a bare 500 before).
    response = client.post("/v1/admin/outbox/replay", content=b"[" * 100_000, headers=JSON)
    _error(response, 422, "JSON_TOO_DEEP")


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"1", 0),
        (b'"[[["', 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "]]]]", "b": [["\\"[["]]}', 3),
        (b"[[[", 3),
    ],
)
def test_json_depth_ignores_brackets_in_strings(raw: bytes, depth: int) -> None:
    assert json_depth(raw) == depth
    assert too_deep(raw, max(depth, 1)) is False
    if depth > 1:
        assert too_deep(raw, depth - 1) is True


# -- bounds on query parameters ------------------------------------------------------------


def test_inbox_cursor_past_the_largest_stored_integer_is_422(client: TestClient) -> None:
    error = _error(client.get(f"/v1/inbox?after={2**63}"), 422, "REQUEST_INVALID")
    assert _paths(error) == ["query.after"]
    assert client.get(f"/v1/inbox?after={2**63 - 1}").json() == {
        "items": [],
        "next_cursor": 2**63 - 1,
    }


@pytest.mark.parametrize("value", ["1e11", "1.1e308", "nan", "inf", "-1"])
def test_older_than_out_of_range_is_422(client: TestClient, value: str) -> None:
    error = _error(client.get(f"/v1/admin/outbox?older_than={value}"), 422, "REQUEST_INVALID")
    assert _paths(error) == ["query.older_than"]


def test_audit_to_the_last_day_there_is_answers(client: TestClient) -> None:
    response = client.get("/v1/audit/queries?personal_code=161175-19997&to=9999-12-31")
    assert response.status_code == 200 and response.json() == {"items": []}


def test_audit_personal_code_has_a_pattern(client: TestClient, spec: dict[str, Any]) -> None:
    _error(client.get("/v1/audit/queries?personal_code=nobody"), 422, "REQUEST_INVALID")
    parameters = spec["paths"]["/v1/audit/queries"]["get"]["parameters"]
    code = next(p for p in parameters if p["name"] == "personal_code")
    assert code["schema"]["pattern"] == "^[0-9]{6}-[0-9]{5}$"


# -- control characters and lone surrogates ------------------------------------------------


@pytest.mark.parametrize("bad", ["\u0001", "\u001f", "\ufffe", "\ud800"])
def test_outbound_text_xml_cannot_carry_is_422_naming_the_field(
    client: TestClient, bad: str
) -> None:
    body = sample_json("monitoring_order")
    body["case"]["authority"]["name"] = f"Vidzemes{bad}tiesa"
    raw = json.dumps(body).encode()  # "\ud800" travels as the JSON escape it is
    response = client.post(
        "/v1/outbound/monitoring_order",
        content=raw,
        headers={**JSON, "Idempotency-Key": f"ctl-{ord(bad)}"},
    )
    error = _error(response, 422, "CANONICAL_INVALID")
    assert "case.authority.name" in _paths(error)
    assert "XML 1.0" in error["details"][_paths(error).index("case.authority.name")]["message"]


def test_tab_newline_and_astral_characters_are_xml_text(shared_runtime: Runtime) -> None:
    body = sample_json("monitoring_order")
    body["case"]["authority"]["name"] = "Vidzemes\trajona\ntiesa \U0001f600"
    shared_runtime.mappings.get("monitoring_order").validate_canonical(body)


def test_a_lone_surrogate_in_a_field_name_is_answered_not_a_500(client: TestClient) -> None:
    raw = b'{"\\ud800\\u0001": 1}'
    response = client.post(
        "/v1/outbound/monitoring_order", content=raw, headers={**JSON, "Idempotency-Key": "k"}
    )
    error = _error(response, 422, "CANONICAL_INVALID")
    assert "\ud800\u0001" in _paths(error)  # ASCII JSON on the wire, the name intact


@pytest.mark.parametrize("bad", ["why\u0007", "\ud83d"])
def test_registry_purpose_xml_cannot_carry_is_422(client: TestClient, bad: str) -> None:
    raw = json.dumps({**REGISTRY_BODY, "purpose": bad}).encode()
    response = client.post("/v1/registries/viis/queries", content=raw, headers=JSON)
    assert _paths(_error(response, 422, "REQUEST_INVALID")) == ["body.purpose"]


def test_operator_reason_xml_cannot_carry_is_422(client: TestClient) -> None:
    body = {"actor": "ilze", "reason": "\u0000"}
    response = client.post("/v1/admin/outbox/some-id/replay", json=body)
    assert _paths(_error(response, 422, "REQUEST_INVALID")) == ["body.reason"]


def test_free_text_fields_publish_the_xml_text_pattern(spec: dict[str, Any]) -> None:
    name = spec["components"]["schemas"]["monitoring_order"]["properties"]["case"]["properties"][
        "authority"
    ]["properties"]["name"]
    assert name["pattern"] == "^(?:[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\uFFFE\\uFFFF]*)$"
    purpose = spec["components"]["schemas"]["RegistryQuery"]["properties"]["purpose"]
    assert purpose["pattern"] == "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\uFFFE\\uFFFF]*$"


# -- what the document says ----------------------------------------------------------------


def test_idempotency_key_is_required_in_the_document(spec: dict[str, Any]) -> None:
    operation = spec["paths"]["/v1/outbound/monitoring_order"]["post"]
    key = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] is True
    assert key["schema"]["minLength"] == 1 and key["schema"]["maxLength"] == 200
    assert {"400", "413", "422"} <= set(operation["responses"])
    assert operation["responses"]["202"]["headers"]["Location"]["required"] is True


def test_personal_code_has_a_pattern(spec: dict[str, Any]) -> None:
    code = spec["components"]["schemas"]["RegistryQuery"]["properties"]["personal_code"]
    assert code["pattern"] == "^[0-9]{6}-[0-9]{5}$"


def test_registry_answers_are_told_apart_by_registry(spec: dict[str, Any]) -> None:
    ok = spec["paths"]["/v1/registries/{registry}/queries"]["post"]["responses"]["200"]
    schema = ok["content"]["application/json"]["schema"]
    assert schema["discriminator"]["propertyName"] == "registry"
    constants = set()
    for branch in schema["oneOf"]:
        name = branch["$ref"].rsplit("/", 1)[1]
        properties = spec["components"]["schemas"][name]["properties"]
        constants.add(properties["registry"]["const"])
        data_ref = properties["data"]["allOf"][0]["$ref"]
        assert data_ref.rsplit("/", 1)[1] in spec["components"]["schemas"]
    assert constants == {"viis", "iis", "vid", "rd"}  # disjoint: one branch per answer


def test_non_json_answers_are_documented_with_their_content_type(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert "text/xml" in paths["/soap/{endpoint}"]["get"]["responses"]["200"]["content"]
    soap = paths["/soap/{endpoint}"]["post"]["responses"]
    assert "text/xml" in soap["500"]["content"] and "404" in soap
    assert "503" in paths["/ready"]["get"]["responses"]
    assert "404" in paths["/xsd/{path}"]["get"]["responses"]
    assert "409" in paths["/v1/admin/journal/verify"]["get"]["responses"]


def test_the_api_key_is_documented_when_configured(make_settings: Callable[..., Settings]) -> None:
    runtime = Runtime(make_settings(api={"api_key": "s3cret"}))
    try:
        spec = TestClient(create_app(runtime)).get("/openapi.json").json()
        assert spec["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
        inbox = spec["paths"]["/v1/inbox"]["get"]
        assert "401" in inbox["responses"] and inbox["security"] == [{"ApiKey": []}]
        assert "security" not in spec["paths"]["/health"]["get"]
    finally:
        runtime.close()
