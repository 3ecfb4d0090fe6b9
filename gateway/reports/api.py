"""``/v1/reports``: e-service usage (JSON or CSV), the indicator report, PLUS's totals.

=======================================  ==================================================
``GET /v1/reports/eservices``            uses by month, e-service, recipient type, outcome;
                                         ``?from=YYYY-MM&to=YYYY-MM``; JSON, or CSV when
                                         ``format=csv`` or ``Accept: text/csv``
``GET /v1/reports/indicators?year=``     the result indicators against their targets
``PUT /v1/reports/totals/{period}``      PLUS sends its totals of a year (``2027``) or a
                                         month (``2027-03``): active clients, rulings received
                                         and execution data sent including paper, registry
                                         requests made any way
``GET /v1/reports/totals?year=``         the totals PLUS has sent for a year and its months
=======================================  ==================================================

Bad parameters answer 422 ``REQUEST_INVALID`` with field paths (``query.from``,
``body.active_clients``); an Accept the report cannot meet answers 406.
"""

from __future__ import annotations

import json
import re
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from gateway.api.errors import error_response
from gateway.api.models import ErrorBody
from gateway.reports.indicators import default_indicator_specs, indicator_report
from gateway.reports.usage import MonthRangeError, parse_months, usage_csv, usage_report
from gateway.store.indicators import MEASURES

__all__ = ["create_reports_router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    406: {"model": ErrorBody},
    422: {"model": ErrorBody},
}
_PERIOD = r"^(19|2[0-9])[0-9]{2}(-(0[1-9]|1[0-2]))?$"
_MAX_TOTAL = 10**9
_MAX_BODY = 4096
_USER_ID = re.compile(r"[A-Za-z0-9_\-:.]{1,64}")


def _wants(request: Request, fmt: str | None) -> str | None:
    """``json`` or ``csv`` from ``format`` (wins) or the Accept header; None: neither."""
    if fmt is not None:
        return fmt
    accept = request.headers.get("accept", "").lower()
    if not accept.strip():
        return "json"
    kinds = [part.split(";")[0].strip() for part in accept.split(",")]
    for kind in kinds:
        if kind in ("application/json", "*/*", "application/*"):
            return "json"
        if kind in ("text/csv", "text/*"):
            return "csv"
    return None


def _invalid(message: str, details: list[dict[str, str]]) -> JSONResponse:
    return error_response(422, "REQUEST_INVALID", message, details)


def create_reports_router(runtime: Any) -> APIRouter:
    """The report routes over ``runtime.store``."""
    router = APIRouter(prefix="/v1/reports", tags=["reports"])
    store = runtime.store
    specs = default_indicator_specs(FilePath(runtime.settings.paths.mappings).resolve())

    @router.get(
        "/eservices",
        summary="E-service uses by month, e-service, recipient type and outcome (KPI-01)",
        responses={
            **_ERRORS,
            200: {"content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}},
        },
        response_model=None,
    )
    def eservices_report(
        request: Request,
        from_: Annotated[
            str | None, Query(alias="from", description="first month YYYY-MM", max_length=16)
        ] = None,
        to: Annotated[
            str | None, Query(description="last month YYYY-MM (default: from)", max_length=16)
        ] = None,
        fmt: Annotated[
            str | None, Query(alias="format", description="json or csv (wins over Accept)")
        ] = None,
    ) -> Response:
        """Counts, totals and distinct clients served; CSV has one row per counter."""
        if fmt is not None and fmt not in ("json", "csv"):
            return _invalid(
                "format must be json or csv", [{"path": "query.format", "message": "json or csv"}]
            )
        try:
            months = parse_months(from_, to)
        except MonthRangeError as exc:
            return _invalid("the month range is invalid", exc.details)
        wanted = _wants(request, fmt)
        if wanted is None:
            return error_response(
                406, "NOT_ACCEPTABLE", "the report is application/json or text/csv"
            )
        report = usage_report(store, months)
        if wanted == "csv":
            name = f"eservices-{months.first}-{months.last}.csv"
            return Response(
                usage_csv(report),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return JSONResponse(report)

    @router.get(
        "/indicators",
        summary="The result indicators of a year against their targets (KPI-02 to KPI-05)",
        responses=_ERRORS,
    )
    def indicators(
        year: Annotated[int, Query(ge=1900, le=2999, description="the year, e.g. 2027")],
    ) -> dict[str, Any]:
        """Each indicator's value, numerator, denominator, source, targets (met or not)."""
        return indicator_report(store, year, specs)

    @router.put(
        "/totals/{period}",
        summary="PLUS's totals of a year or month (including paper)",
        responses=_ERRORS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                m: {"type": "integer", "minimum": 0, "maximum": _MAX_TOTAL}
                                for m in MEASURES
                            },
                            "additionalProperties": False,
                            "minProperties": 1,
                        }
                    }
                },
            }
        },
    )
    async def put_totals(
        request: Request,
        period: Annotated[str, Path(pattern=_PERIOD, description="YYYY or YYYY-MM")],
    ) -> JSONResponse:
        """Replaces the measures given (others stay); journaled."""
        raw = await request.body()
        if len(raw) > _MAX_BODY:
            return error_response(413, "REQUEST_TOO_LARGE", f"larger than {_MAX_BODY} bytes")
        try:
            body = json.loads(raw)
        except ValueError:
            return _invalid("the body is not JSON", [{"path": "body", "message": "not valid JSON"}])
        if not isinstance(body, dict) or not body:
            return _invalid(
                "the body must be an object of totals",
                [
                    {
                        "path": "body",
                        "message": f"an object with one or more of {', '.join(MEASURES)}",
                    }
                ],
            )
        details = []
        for key, value in body.items():
            if key not in MEASURES:
                details.append(
                    {
                        "path": f"body.{key}",
                        "message": f"unknown measure (one of {', '.join(MEASURES)})",
                    }
                )
            elif (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value <= _MAX_TOTAL
            ):
                details.append({"path": f"body.{key}", "message": f"an integer 0..{_MAX_TOTAL}"})
        if details:
            return _invalid("the totals are invalid", details)
        user = request.headers.get("x-user-id")
        actor = user if user and _USER_ID.fullmatch(user) else "plus"
        await run_in_threadpool(store.indicators.put_totals, period, body, actor=actor)
        return JSONResponse(
            {"period": period, "totals": store.indicators.totals([period]).get(period, {})}
        )

    @router.get("/totals", summary="The totals PLUS has sent for a year and its months")
    def get_totals(
        year: Annotated[int, Query(ge=1900, le=2999, description="the year, e.g. 2027")],
    ) -> dict[str, Any]:
        """period -> measure -> value."""
        periods = [str(year), *(f"{year}-{m:02d}" for m in range(1, 13))]
        return {"year": year, "totals": store.indicators.totals(periods)}

    return router
