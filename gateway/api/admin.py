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

from gateway.runtime import Runtime
from gateway.store.anchor import verify_anchored

__all__ = ["OperatorAction", "router"]

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class OperatorAction(BaseModel):
    """Who does it and why (both journaled)."""

    actor: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=500)


class BulkReplay(OperatorAction):
    """Replay every message matching the filters (dead ones by default)."""

    status: str = "dead"
    partner: str | None = None
    operation: str | None = None
    code: str | None = None


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _wake(request: Request) -> None:
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.wake()


def _not_found(message_id: str, why: str) -> JSONResponse:
    body = {"error": {"code": "NOT_FOUND", "message": f"{message_id}: {why}", "details": []}}
    return JSONResponse(body, status_code=404)


@router.get("/outbox", summary="List outbound messages (dead letters, stuck, by filter)")
def list_outbox(
    request: Request,
    status: Annotated[
        str | None, Query(description="pending|sending|delivered|dead|discarded")
    ] = None,
    partner: str | None = None,
    operation: Annotated[str | None, Query(description="operation or message type")] = None,
    code: Annotated[str | None, Query(description="last error code (dead letter reason)")] = None,
    older_than: Annotated[float | None, Query(ge=0, description="seconds since accepted")] = None,
    stuck: Annotated[bool, Query(description="only sending rows with an expired lease")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Outbox rows without payloads, oldest first."""
    rows = _runtime(request).store.list_outbound(
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
    return _runtime(request).store.outbox_stats()


@router.post("/outbox/replay", summary="Replay every message matching the filters")
async def replay_many(request: Request, body: BulkReplay) -> dict[str, Any]:
    """Bulk replay, one journal entry per message."""
    store = _runtime(request).store
    rows = await run_in_threadpool(
        lambda: store.list_outbound(
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
            store.replay, row["message_id"], actor=body.actor, reason=body.reason
        ):
            done += 1
    _wake(request)
    return {"matched": len(rows), "replayed": done}


@router.get("/outbox/{message_id}", summary="One outbound message with its journal")
def show_outbox(request: Request, message_id: str) -> Any:
    """The outbox row and every journal entry of the message."""
    store = _runtime(request).store
    row = store.get_outbound(message_id)
    if row is None:
        return _not_found(message_id, "no outbound message")
    return {"message": row, "journal": store.journal_for(message_id)}


@router.post("/outbox/{message_id}/replay", summary="Queue a dead or stuck message again")
def replay_one(request: Request, message_id: str, body: OperatorAction) -> Any:
    """Replay keeping the message id; 404 when unknown, delivered or in flight."""
    if not _runtime(request).store.replay(message_id, actor=body.actor, reason=body.reason):
        return _not_found(message_id, "unknown, delivered or being sent right now")
    _wake(request)
    return {"id": message_id, "status": "pending"}


@router.post("/outbox/{message_id}/discard", summary="Give up on a message for good")
def discard_one(request: Request, message_id: str, body: OperatorAction) -> Any:
    """Discard; releases later messages of the same case. 404 when not discardable."""
    if not _runtime(request).store.discard(message_id, actor=body.actor, reason=body.reason):
        return _not_found(message_id, "unknown, delivered, discarded or being sent right now")
    _wake(request)
    return {"id": message_id, "status": "discarded"}


@router.get("/journal/verify", summary="Check the journal's hash chain, payload hashes and anchors")
def verify_journal(request: Request) -> JSONResponse:
    """200 when the journal is intact, 409 naming the first entry that does not fit.

    Anchors come from the configured sink (``journal.anchor_sink``); one that cannot be
    read is a 503, since the journal cannot then be vouched for.
    """
    runtime = _runtime(request)
    verdict = verify_anchored(runtime.store, runtime.settings)
    return JSONResponse(vars(verdict), status_code=200 if verdict.ok else 409)
