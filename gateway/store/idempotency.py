"""The idempotency area: which request each ``Idempotency-Key`` was first used for.

A key is written in the same transaction as the message it accepted (see
:meth:`gateway.store.outbox.Outbox.accept`), so a repeat of the request gets the first message
id back and a key reused for another request is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from gateway.errors import BadInputError
from gateway.store.db import Database
from gateway.store.schema import idempotency_keys

__all__ = ["IdempotencyConflictError", "IdempotencyKeys"]

_INSERT = insert(idempotency_keys)  # built once: it runs in every accept


class IdempotencyConflictError(BadInputError):
    """The Idempotency-Key was used before for a different request body."""

    code = "IDEMPOTENCY_CONFLICT"


class IdempotencyKeys:
    """Reads and writes the ``idempotency_keys`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def insert_in(
        self,
        conn: Connection,
        *,
        key: str,
        message_type: str,
        request_sha256: str,
        message_id: str,
        at: datetime,
    ) -> None:
        """Record ``key`` inside the caller's transaction; IntegrityError if it was used."""
        conn.execute(
            _INSERT,
            dict(
                key=key,
                message_type=message_type,
                request_sha256=request_sha256,
                message_id=message_id,
                created_at=at,
            ),
        )

    def find(self, key: str) -> dict[str, Any] | None:
        """The stored row for ``key``, if the key was seen."""
        with self._db.connect() as conn:
            row = conn.execute(select(idempotency_keys).where(idempotency_keys.c.key == key))
            found = row.first()
            return dict(found._mapping) if found else None

    def resolve(self, key: str, request_sha256: str) -> str | None:
        """Message id stored for ``key`` if the same request was accepted before.

        None when the key is new; IdempotencyConflictError when it was used for a request
        with another body.
        """
        existing = self.find(key)
        if existing is None:
            return None
        if existing["request_sha256"] != request_sha256:
            raise IdempotencyConflictError(
                "Idempotency-Key was already used for a different request",
                message_id=existing["message_id"],
            )
        return str(existing["message_id"])
