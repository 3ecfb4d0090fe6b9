"""What every operation of the local API can answer, added to the generated OpenAPI document.

Routes declare what is theirs (404 for an unknown id, 409 for a conflict, ...). The answers
that come from cross-cutting code are added here, to every operation they can reach:

- 401 on ``/v1`` when an API key is configured (gateway.api.app, ``_RequestContext``);
- 413 and 422 on every ``/v1`` operation with a body (gateway.api.limits);
- 503 on every ``/v1`` operation (the store is locked or unreachable);
- FastAPI's own 422 schema (``HTTPValidationError``) becomes the one error shape.

tests/integration/test_openapi_fuzz.py holds the document to this with schemathesis.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ERROR_REF", "complete_responses", "error_response_doc", "require_header"]

ERROR_REF = "#/components/schemas/ErrorBody"
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def error_response_doc(description: str) -> dict[str, Any]:
    """An OpenAPI response in the one error shape."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


def require_header(operation: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    """Mark the header parameter ``name`` of ``operation`` required, with ``schema``."""
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "header" and parameter.get("name") == name:
            parameter["required"] = True
            parameter["schema"] = {
                **schema,
                "title": parameter.get("schema", {}).get("title", name),
            }


def complete_responses(
    schema: dict[str, Any], *, api_key: bool, max_body_bytes: int, max_json_depth: int
) -> dict[str, Any]:
    """Add the cross-cutting answers to every operation of ``schema`` (changed in place)."""
    components = schema.setdefault("components", {})
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            for response in responses.values():
                content = response.get("content", {}).get("application/json", {})
                if content.get("schema", {}).get("$ref") == _FASTAPI_422:
                    content["schema"] = {"$ref": ERROR_REF}
            if not path.startswith("/v1/"):
                continue
            if "requestBody" in operation:
                responses.setdefault(
                    "413",
                    error_response_doc(f"The body is larger than {max_body_bytes} bytes"),
                )
                responses.setdefault(
                    "422",
                    error_response_doc(
                        f"The body is not valid JSON, nests deeper than {max_json_depth} "
                        "levels, or does not satisfy its schema"
                    ),
                )
            responses.setdefault("503", error_response_doc("The store is locked or unreachable"))
            if api_key and "security" not in operation:  # a route with its own scheme keeps it
                responses.setdefault("401", error_response_doc("Missing or wrong X-API-Key"))
                operation["security"] = [{"ApiKey": []}]
    # FastAPI's validation error bodies are never sent: every 422 is the one error shape.
    schemas = components.get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if api_key:
        components.setdefault("securitySchemes", {})["ApiKey"] = {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
        }
    return schema
