"""``/v1/statistics/extracts``: PLUS delivers the monthly statistics extract here.

The body (CSV with a header row, or JSON Lines) streams to a temporary file under
``opendata.max_extract_bytes`` and is then validated row by row in a worker thread: memory
stays bounded whatever the size. 201 when every row is good (the extract becomes the period's),
422 ``EXTRACT_INVALID`` with up to ``opendata.max_errors`` errors naming line and field (the
last good extract stays), 413 when too large, 415 for another media type.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from gateway.api.errors import error_response
from gateway.api.models import ErrorBody
from gateway.opendata.extract import ExtractCodes, table_schema
from gateway.store.statistics import Extracts

__all__ = ["create_statistics_router"]

_FORMATS = {
    "text/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json-lines": "jsonl",
}
_SPOOL = 8 * 1024 * 1024  # in memory up to this, then on disk


def _lines(spool: IO[bytes]) -> Iterator[bytes]:
    spool.seek(0)
    yield from spool


def create_statistics_router(runtime: Any) -> APIRouter:
    """The statistics intake routes over ``runtime`` (its settings and store)."""
    router = APIRouter(prefix="/v1/statistics", tags=["statistics"])
    settings = runtime.settings
    codes = ExtractCodes.load(settings.paths.mappings)
    schema = table_schema(codes)
    extracts = Extracts(runtime.store.db, runtime.store.journal)

    @router.post(
        "/extracts",
        status_code=201,
        summary="Deliver a pseudonymised statistics extract (CSV or JSON Lines)",
        responses={413: {"model": ErrorBody}, 415: {"model": ErrorBody}},
        description=(
            "The extract of month `period` covers every case active on at least one day from "
            "1 January to the month's end. Schema: `GET /v1/statistics/extracts/schema`. "
            "Content-Type `text/csv` (header row) or `application/x-ndjson`."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def post_extract(
        request: Request,
        # Years 1900-2999: year 0000 (or 10000 past 9999-12) cannot be a date (it was a 500).
        period: Annotated[
            str, Query(pattern=r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$", description="YYYY-MM")
        ],
    ) -> JSONResponse:
        media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        fmt = _FORMATS.get(media)
        if fmt is None:
            return error_response(
                415, "EXTRACT_MEDIA_TYPE", "send text/csv or application/x-ndjson"
            )
        limit = settings.opendata.max_extract_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return error_response(413, "EXTRACT_TOO_LARGE", f"larger than {limit} bytes")
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL) as spool:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return error_response(413, "EXTRACT_TOO_LARGE", f"larger than {limit} bytes")
                spool.write(chunk)
            # Imported on first use: building and publishing (rdflib, HiGHS) are not needed
            # for the gateway to start.
            from gateway.opendata.service import receive_extract

            received = await run_in_threadpool(
                receive_extract,
                runtime.store,
                codes,
                period=period,
                fmt=fmt,
                lines=_lines(spool),
                actor=(request.headers.get("x-user-id") or "")[:64] or None,
                max_errors=settings.opendata.max_errors,
            )
        body = {
            "id": received.id,
            "period": received.period,
            "status": "accepted" if received.accepted else "rejected",
            "rows": received.rows,
            "sha256": received.sha256,
            "size": received.size,
        }
        if not received.accepted:
            message = f"{received.error_count} error(s); the last good extract of {period} stays"
            return error_response(422, "EXTRACT_INVALID", message, received.errors, extract=body)
        return JSONResponse(
            body, status_code=201, headers={"Location": f"/v1/statistics/extracts/{received.id}"}
        )

    @router.get("/extracts", summary="Extracts received (never their rows)")
    def list_extracts(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
        """Newest first: period, status, rows, size, hash, errors."""
        return {"items": extracts.recent(limit)}

    @router.get("/extracts/schema", summary="The extract's schema (Frictionless Table Schema)")
    def extract_schema() -> dict[str, Any]:
        """Fields, types, code lists; CSV header names are the field names."""
        return schema

    @router.get(
        "/extracts/{extract_id}",
        summary="One extract's status and errors",
        responses={404: {"model": ErrorBody}},
    )
    def get_extract(extract_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Any:
        """Metadata and the first errors; never the rows."""
        found = extracts.get(extract_id)
        if found is None:
            return error_response(404, "NOT_FOUND", f"no extract {extract_id}")
        return found

    return router
