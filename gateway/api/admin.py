"""Operator routes of the local API: dead letters, stuck messages, replay, discard, journal.

Every action names who and why; both land in the journal with the message id, which a replay
keeps (the partner drops a resend it already has by that id).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.api.errors import error_response
from gateway.api.fields import XmlText
from gateway.api.models import ErrorBody
from gateway.runtime import Runtime
from gateway.store.anchor import verify_anchored
from gateway.store.queue_stats import stats as queue_stats

__all__ = ["OperatorAction", "router"]

router = APIRouter(prefix="/v1/admin", tags=["admin"])

_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}
#: ``older_than`` beyond about 31 years would reach before year 1 on some clocks (a 500).
_MAX_AGE_SECONDS = 1e9


class OperatorAction(BaseModel):
    """Who does it and why (both journaled)."""

    actor: XmlText = Field(min_length=1, max_length=64)
    reason: XmlText = Field(min_length=1, max_length=500)


class BulkReplay(OperatorAction):
    """Replay every message matching the filters (dead ones by default)."""

    status: XmlText = Field("dead", max_length=64)
    partner: XmlText | None = Field(None, max_length=64)
    operation: XmlText | None = Field(None, max_length=200)
    code: XmlText | None = Field(None, max_length=64)


class JournalVerdict(BaseModel):
    """What ``journal verify`` found: ok, or the first entry that does not fit."""

    ok: bool
    checked: int = Field(description="Journal entries whose chain link was checked")
    head_id: int
    head_hash: str | None
    bad_id: int | None = Field(None, description="The first entry that does not fit, if one")
    problem: str | None = None
    payloads: int = Field(0, description="Payloads compared with their hash")
    anchors: int = Field(0, description="Signed anchors checked")
    anchored_id: int | None = Field(None, description="The newest entry an anchor vouches for")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _wake(request: Request) -> None:
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.wake()


def _not_found(message_id: str, why: str) -> JSONResponse:
    return error_response(404, "NOT_FOUND", f"{message_id}: {why}")


@router.get("/outbox", summary="List outbound messages (dead letters, stuck, by filter)")
def list_outbox(
    request: Request,
    status: Annotated[
        str | None, Query(description="pending|sending|delivered|dead|discarded")
    ] = None,
    partner: str | None = None,
    operation: Annotated[str | None, Query(description="operation or message type")] = None,
    code: Annotated[str | None, Query(description="last error code (dead letter reason)")] = None,
    older_than: Annotated[
        float | None,
        Query(
            ge=0,
            le=_MAX_AGE_SECONDS,
            allow_inf_nan=False,
            description="seconds since accepted (at most 10^9, about 31 years)",
        ),
    ] = None,
    stuck: Annotated[bool, Query(description="only sending rows with an expired lease")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Outbox rows without payloads, oldest first."""
    rows = _runtime(request).store.outbox.messages(
        status=status,
        partner=partner,
        operation=operation,
        code=code,
        older_than=timedelta(seconds=older_than) if older_than is not None else None,
        stuck=stuck,
        limit=limit,
    )
    for row in rows:
        row.pop("ack", None)
    return {"items": rows, "count": len(rows)}


@router.get("/outbox/stats", summary="Depth, oldest age, held messages and rates per partner")
def outbox_stats(request: Request) -> dict[str, Any]:
    """What ``plus-gateway queue stats`` prints."""
    return queue_stats(_runtime(request).store.db)


@router.post("/outbox/replay", summary="Replay every message matching the filters")
async def replay_many(request: Request, body: BulkReplay) -> dict[str, Any]:
    """Bulk replay, one journal entry per message."""
    store = _runtime(request).store
    rows = await run_in_threadpool(
        lambda: store.outbox.messages(
            status=body.status,
            partner=body.partner,
            operation=body.operation,
            code=body.code,
            limit=None,
        )
    )
    done = 0
    for row in rows:
        if await run_in_threadpool(
            store.outbox.replay, row["message_id"], actor=body.actor, reason=body.reason
        ):
            done += 1
    _wake(request)
    return {"matched": len(rows), "replayed": done}


@router.get(
    "/outbox/{message_id}", summary="One outbound message with its journal", responses=_ERRORS
)
def show_outbox(request: Request, message_id: str) -> Any:
    """The outbox row and every journal entry of the message."""
    store = _runtime(request).store
    row = store.outbox.get(message_id)
    if row is None:
        return _not_found(message_id, "no outbound message")
    return {"message": row, "journal": store.journal.for_message(message_id)}


@router.post(
    "/outbox/{message_id}/replay", summary="Queue a dead or stuck message again", responses=_ERRORS
)
def replay_one(request: Request, message_id: str, body: OperatorAction) -> Any:
    """Replay keeping the message id; 404 when unknown, delivered or in flight."""
    if not _runtime(request).store.outbox.replay(message_id, actor=body.actor, reason=body.reason):
        return _not_found(message_id, "unknown, delivered or being sent right now")
    _wake(request)
    return {"id": message_id, "status": "pending"}


@router.post(
    "/outbox/{message_id}/discard", summary="Give up on a message for good", responses=_ERRORS
)
def discard_one(request: Request, message_id: str, body: OperatorAction) -> Any:
    """Discard; releases later messages of the same case. 404 when not discardable."""
    if not _runtime(request).store.outbox.discard(message_id, actor=body.actor, reason=body.reason):
        return _not_found(message_id, "unknown, delivered, discarded or being sent right now")
    _wake(request)
    return {"id": message_id, "status": "discarded"}


@router.get(
    "/journal/verify",
    summary="Check the journal's hash chain, payload hashes and anchors",
    response_model=JournalVerdict,
    responses={409: {"model": JournalVerdict, "description": "The journal does not verify"}},
)
def verify_journal(request: Request) -> JSONResponse:
    """200 when the journal is intact, 409 naming the first entry that does not fit.

    Anchors come from the configured sink (``journal.anchor_sink``); one that cannot be
    read is a 503, since the journal cannot then be vouched for.
    """
    runtime = _runtime(request)
    verdict = verify_anchored(runtime.store, runtime.settings)
    return JSONResponse(vars(verdict), status_code=200 if verdict.ok else 409)
