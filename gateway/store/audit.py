"""The audit area: every registry or institution query, who asked for whose data, when and why.

Rows are written before the answer is returned (no audit, no data). They hold the personal code
so that "who looked at this person" can be answered, and the SHA-256 of the answer (never the
answer itself); retention later replaces old personal codes with keyed pseudonyms
(:meth:`AuditLog.pseudonymise_in`). Nothing here logs the personal code.

Writes are grouped: officers querying at the same time share one transaction (one fsync on
SQLite) instead of taking turns at the write lock, each waiting for a commit of its own. The
first caller to arrive commits every row queued so far while later callers wait; those arriving
during that commit go together in the next one. :meth:`AuditLog.record` returns only once the
caller's own rows are committed and raises if their commit failed, so an answer is never given
out before its audit row is durable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

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


_FIELDS = tuple(f.name for f in fields(AuditEntry))
# Built once: the audit insert runs on every query.
_INSERT = insert(registry_queries)


@dataclass
class _Pending:
    """Rows one caller waits for, and how their commit went."""

    rows: list[dict[str, Any]]
    done: bool = False
    error: BaseException | None = None


class AuditLog:
    """Writes (group-committed) and searches the ``registry_queries`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._committing = False
        #: Transactions and rows written (for the benchmark's figures).
        self.commits = 0
        self.rows = 0

    def record(self, entries: Sequence[AuditEntry]) -> None:
        """Write ``entries`` durably; return only once they are committed (no audit, no data).

        A profile's four queries are one call. Calls made while another commit is running are
        committed together, in one transaction, when it ends (group commit); a failed commit
        raises in every caller whose rows it held, and none of them may answer.
        """
        if not entries:
            return
        now = utcnow()
        rows = [{name: getattr(e, name) for name in _FIELDS} for e in entries]
        for row in rows:
            row["at"] = row["at"] or now
        mine = _Pending(rows)
        batch: list[_Pending] = []
        with self._cond:
            self._queue.append(mine)
            while self._committing and not mine.done:
                self._cond.wait()
            if not mine.done:
                # Nobody is committing: lead, taking every caller's rows queued so far.
                self._committing = True
                batch, self._queue = self._queue, []
        if batch:
            self._commit(batch)
        if mine.error is not None:
            raise mine.error

    def _commit(self, batch: list[_Pending]) -> None:
        error: BaseException | None = None
        try:
            with self._db.transaction() as conn:
                conn.execute(_INSERT, [row for pending in batch for row in pending.rows])
        except BaseException as exc:  # handed to every waiting caller, raised in each
            error = exc
        with self._cond:
            for pending in batch:
                pending.error = error
                pending.done = True
            self.commits += 1
            self.rows += sum(len(p.rows) for p in batch)
            self._committing = False
            self._cond.notify_all()

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

    def count_between(self, *, since: datetime, until: datetime) -> int:
        """Registry requests audited in ``[since, until)``."""
        query = select(func.count()).where(
            registry_queries.c.at >= since, registry_queries.c.at < until
        )
        with self._db.connect() as conn:
            return int(conn.execute(query).scalar_one())
