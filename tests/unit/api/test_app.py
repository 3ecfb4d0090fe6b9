"""The API application in-process: API key, request ids, OpenAPI content."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from gateway.api import create_app
from gateway.config import Settings
from gateway.runtime import Runtime


def test_api_key_guards_v1_only(make_settings: Callable[..., Settings]) -> None:
    runtime = Runtime(make_settings(api={"api_key": "s3cret"}))
    try:
        client = TestClient(create_app(runtime))
        denied = client.get("/v1/inbox")
        assert denied.status_code == 401
        assert denied.json()["error"]["code"] == "UNAUTHORIZED"
        assert client.get("/v1/inbox", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/v1/inbox", headers={"X-API-Key": "s3cret"}).status_code == 200
        # operations and the institutions' SOAP endpoint are not PLUS's API
        assert client.get("/health").status_code == 200
        assert client.get("/soap/ecase?wsdl").status_code == 200
    finally:
        runtime.close()


def test_request_id_is_echoed_or_made(runtime: Runtime) -> None:
    client = TestClient(create_app(runtime))
    assert (
        client.get("/health", headers={"X-Request-ID": "abc-1"}).headers["x-request-id"] == "abc-1"
    )
    made = client.get("/health").headers["x-request-id"]
    assert len(made) == 32


def test_openapi_publishes_request_schemas_without_gateway_fields(runtime: Runtime) -> None:
    spec = TestClient(create_app(runtime)).get("/openapi.json").json()
    schema = spec["components"]["schemas"]["execution_notification"]
    assert "message_id" not in schema["required"] and "sent_at" not in schema["required"]
    assert schema["properties"]["message_id"]["readOnly"] is True
    assert "person" in schema["required"]
    body = spec["paths"]["/v1/outbound/execution_notification"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("execution_notification")
    # what PLUS receives keeps every field required
    inbound = spec["components"]["schemas"]["court_ruling"]
    assert "message_id" in inbound["required"]
    # PLUS cannot send what only institutions send
    assert "/v1/outbound/court_ruling" not in spec["paths"]
