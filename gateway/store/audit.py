"""The audit area: every registry or institution query, who asked for whose data, when and why.

Rows are written before the answer is returned (no audit, no data). They hold the personal code
so that "who looked at this person" can be answered, and the SHA-256 of the answer (never the
answer itself); retention later replaces old personal codes with keyed pseudonyms
(:meth:`AuditLog.pseudonymise_in`). Nothing here logs the personal code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from gateway.store.db import Database
from gateway.store.schema import registry_queries, utcnow

__all__ = ["AuditEntry", "AuditLog"]


@dataclass(frozen=True)
class AuditEntry:
    """One query as audited."""

    registry: str
    officer_id: str
    purpose: str
    case_id: str
    personal_code: str
    query_id: str
    status: str
    response_id: str | None = None
    error_code: str | None = None
    answer_sha256: str | None = None
    cached: bool = False
    duration_ms: int | None = None
    at: datetime | None = None


class AuditLog:
    """Writes and searches the ``registry_queries`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, entries: Sequence[AuditEntry]) -> None:
        """Write ``entries`` in one transaction (a profile's four queries are one write)."""
        if not entries:
            return
        now = utcnow()
        rows = [{**asdict(e), "at": e.at or now} for e in entries]
        with self._db.transaction() as conn:
            conn.execute(insert(registry_queries), rows)

    def search(
        self,
        personal_code: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Queries about ``personal_code`` in [since, until), newest first."""
        q = select(registry_queries).where(registry_queries.c.personal_code == personal_code)
        if since is not None:
            q = q.where(registry_queries.c.at >= since)
        if until is not None:
            q = q.where(registry_queries.c.at < until)
        q = q.order_by(registry_queries.c.at.desc(), registry_queries.c.id.desc()).limit(limit)
        with self._db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def pseudonymise_in(
        self,
        conn: Connection,
        before: datetime,
        pseudonym: Callable[[str], str],
        *,
        prefix: str,
        batch: int = 1000,
    ) -> int:
        """Replace personal codes of rows older than ``before`` with ``pseudonym(code)``.

        Inside the caller's transaction; rows whose code already starts with ``prefix`` (the
        pseudonyms' mark) are left alone. Returns how many rows changed.
        """
        changed = 0
        pending = and_(
            registry_queries.c.at < before,
            ~registry_queries.c.personal_code.startswith(prefix),
        )
        while True:
            rows = conn.execute(
                select(registry_queries.c.id, registry_queries.c.personal_code)
                .where(pending)
                .order_by(registry_queries.c.id)
                .limit(batch)
            ).all()
            if not rows:
                return changed
            for row_id, code in rows:
                conn.execute(
                    update(registry_queries)
                    .where(registry_queries.c.id == row_id)
                    .values(personal_code=pseudonym(code))
                )
            changed += len(rows)
