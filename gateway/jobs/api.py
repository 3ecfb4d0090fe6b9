"""``/v1/admin/jobs``: the jobs, their runs, and an operator's run (as ``plus-gateway jobs``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from gateway.api.errors import error_response
from gateway.api.models import ErrorBody
from gateway.errors import GatewayError
from gateway.jobs.runner import JobRunner

__all__ = ["JobRunRequest", "jobs_router", "runner_of"]

jobs_router = APIRouter(prefix="/v1/admin/jobs", tags=["admin"])


class JobRunRequest(BaseModel):
    """Run a job now: this period or ``period``; ``force`` to run a period again."""

    actor: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(None, max_length=500)
    period: str | None = Field(None, max_length=32)
    force: bool = False


def runner_of(request: Request) -> JobRunner:
    """The app's job runner: the ticker's in ``serve``, else one made on first use."""
    runner: JobRunner | None = getattr(request.app.state, "jobs", None)
    if runner is None:
        runtime = request.app.state.runtime
        runner = JobRunner(
            runtime.settings, runtime.store, metrics_registry=runtime.metrics.registry
        )
        request.app.state.jobs = runner
    return runner


@jobs_router.get("", summary="Jobs: schedule, next fire time, latest run")
def list_jobs(request: Request) -> dict[str, Any]:
    """What ``plus-gateway jobs ls`` prints."""
    return {"items": runner_of(request).describe()}


@jobs_router.get(
    "/{name}/runs", summary="Runs of a job, newest first", responses={404: {"model": ErrorBody}}
)
def job_history(
    request: Request, name: str, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> Any:
    """What ``plus-gateway jobs history NAME`` prints."""
    runner = runner_of(request)
    if name not in runner.specs:
        return error_response(404, "NOT_FOUND", f"no job {name}")
    return {"items": runner.runs.history(name, limit)}


@jobs_router.post(
    "/{name}/run",
    status_code=202,
    summary="Run a job now (journaled when forced)",
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def run_job(request: Request, name: str, body: JobRunRequest) -> Any:
    """202 once the run is claimed (it goes on in the background); 409 when the period ran
    or runs now (``force`` with a reason runs it again); 422 for a bad period or no reason."""
    runner = runner_of(request)
    if name not in runner.specs:
        return error_response(404, "NOT_FOUND", f"no job {name}")
    try:
        outcome = await run_in_threadpool(
            lambda: runner.run_now(
                name,
                period=body.period,
                force=body.force,
                actor=body.actor,
                reason=body.reason,
                background=True,
            )
        )
    except GatewayError as exc:
        return error_response(422, exc.code, exc.message)
    if outcome.status == "skipped":
        return error_response(409, "JOB_PERIOD_TAKEN", f"{name} {outcome.period}: {outcome.error}")
    return {
        "job": name,
        "period": outcome.period,
        "status": outcome.status,
        "attempt": outcome.attempt,
    }
