"""Response bodies of the local API (request bodies are the mappings' JSON Schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "Accepted",
    "ErrorBody",
    "ErrorInfo",
    "InboxItem",
    "InboxPage",
    "MessageStatus",
    "Readiness",
]


class Accepted(BaseModel):
    """The message is signed and durably stored; delivery follows."""

    id: str = Field(description="Gateway message id; the same on every delivery attempt")
    status: str = Field(description="pending | sending | delivered | dead | discarded")
    message_type: str
    institution: str = Field(description="The addressee, given or resolved by reply routing")


class ErrorInfo(BaseModel):
    """A stable code, a message without personal data, and field-level details."""

    code: str
    message: str
    details: list[dict[str, Any]] = Field(
        [], description="Field-level problems: `path` (dotted, e.g. body.person.name) and `message`"
    )
    message_id: str | None = None
    partner: str | None = Field(None, description="The institution concerned, when known")
    operation: str | None = Field(None, description="The operation concerned, when known")
    registry: str | None = Field(None, description="The registry that failed (registry queries)")


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the API."""

    error: ErrorInfo


class MessageStatus(BaseModel):
    """Where an outbound message stands."""

    id: str
    message_type: str
    institution: str = Field(
        description="The addressee: an institution's name in the configuration"
    )
    operation: str
    status: str = Field(description="pending | sending | delivered | dead | discarded")
    attempts: int
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_error: ErrorInfo | None = None
    acknowledgement: dict[str, Any] | None = Field(
        None, description="The partner's Acknowledgement, once delivered"
    )


class InboxItem(BaseModel):
    """A message received from a partner, in canonical JSON."""

    id: str
    cursor: int
    institution: str = Field(description="The sender: an institution's name in the configuration")
    operation: str
    message_type: str
    partner_message_id: str = Field(description="The sender's MessageId (replies name it)")
    received_at: datetime
    acked_at: datetime | None = None
    message: dict[str, Any] = Field(description="Canonical JSON; schema per message_type")


class InboxPage(BaseModel):
    """A page of the inbox; pass ``next_cursor`` as ``after`` to continue."""

    items: list[InboxItem]
    next_cursor: int


class Readiness(BaseModel):
    """``/ready``: 200 when the store accepts writes and delivery runs, 503 otherwise."""

    status: str = Field(description="ready | not ready")
    checks: dict[str, Any]
