"""The statistics area: pseudonymised extracts from PLUS, the input of the open data sets.

An extract is stored whole (gzip of its rows as normalised JSON Lines) once every row has
passed validation; a refused one keeps only its size, SHA-256 and the first errors, so the last
good extract of a period stays the one the data sets are built from. Extracts are never
published; retention purges their content (``retention.extracts_days``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from gateway.store.db import Database
from gateway.store.journal import Journal
from gateway.store.schema import UTCDateTime, metadata, utcnow

__all__ = ["Extracts", "statistics_extracts"]

#: Extracts received (migration 0006_jobs).
statistics_extracts = Table(
    "statistics_extracts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: The month the extract runs up to (YYYY-MM); it covers that year up to the month's end.
    Column("period", String(7), nullable=False),
    Column("received_at", UTCDateTime, nullable=False, default=utcnow),
    Column("status", String(16), nullable=False),  # accepted | rejected
    Column("format", String(8), nullable=False),  # csv | jsonl
    Column("rows", Integer, nullable=False, default=0),
    Column("size", BigInteger, nullable=False, default=0),
    Column("sha256", String(64), nullable=False),
    #: gzip of the validated rows as JSON Lines; NULL when refused or purged by retention.
    Column("content", LargeBinary, nullable=True),
    Column("error_count", Integer, nullable=False, default=0),
    #: The first errors (line, field, message); never a value from the extract.
    Column("errors", Text, nullable=True),
    Column("actor", String(64), nullable=True),
    Column("purged_at", UTCDateTime, nullable=True),
    Index("ix_statistics_extracts_period_status", "period", "status", "id"),
)

_COLUMNS = [c for c in statistics_extracts.c if c.name != "content"]


class Extracts:
    """Stores, finds and lists statistics extracts."""

    def __init__(self, db: Database, journal: Journal) -> None:
        self._db = db
        self._journal = journal

    def record(
        self,
        *,
        period: str,
        fmt: str,
        rows: int,
        size: int,
        sha256: str,
        content: bytes | None,
        errors: list[dict[str, Any]],
        error_count: int,
        actor: str | None,
    ) -> int:
        """Store one extract (accepted when ``content`` is given) and journal it; its id."""
        status = "accepted" if content is not None else "rejected"
        now = utcnow()
        with self._db.transaction() as conn:
            extract_id = int(
                conn.execute(
                    insert(statistics_extracts)
                    .values(
                        period=period,
                        received_at=now,
                        status=status,
                        format=fmt,
                        rows=rows,
                        size=size,
                        sha256=sha256,
                        content=content,
                        error_count=error_count,
                        errors=json.dumps(errors, ensure_ascii=False) if errors else None,
                        actor=actor,
                    )
                    .returning(statistics_extracts.c.id)
                ).scalar_one()
            )
            # The journal proves what was received (size and hash), never its rows.
            self._journal.append_in(
                conn,
                at=now,
                direction="in",
                partner="plus",
                operation="statistics_extract",
                message_type="statistics_extract",
                message_id=f"extract-{extract_id}",
                correlation_id=period,
                status=f"extract_{status}",
                error_code=None if content is not None else "EXTRACT_INVALID",
                actor=actor,
                detail=f"{rows} rows, {error_count} errors",
                received_size=size,
                received_sha256=sha256,
            )
        return extract_id

    def latest(self, period: str) -> dict[str, Any] | None:
        """The last accepted extract of ``period`` with its content (None if none is kept)."""
        query = (
            select(statistics_extracts)
            .where(
                statistics_extracts.c.period == period,
                statistics_extracts.c.status == "accepted",
                statistics_extracts.c.content.is_not(None),
            )
            .order_by(statistics_extracts.c.id.desc())
            .limit(1)
        )
        with self._db.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    def get(self, extract_id: int) -> dict[str, Any] | None:
        """One extract's metadata and errors (never its content)."""
        with self._db.connect() as conn:
            row = conn.execute(
                select(*_COLUMNS).where(statistics_extracts.c.id == extract_id)
            ).first()
        return _decoded(dict(row._mapping)) if row else None

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """Extracts without content, newest first."""
        query = select(*_COLUMNS).order_by(statistics_extracts.c.id.desc()).limit(limit)
        with self._db.connect() as conn:
            return [_decoded(dict(r._mapping)) for r in conn.execute(query)]

    def purge_before(self, cutoff: datetime, *, keep_latest: bool = True) -> list[int]:
        """Retention: drop the content of extracts received before ``cutoff``; their ids.

        With ``keep_latest`` the newest accepted extract of each period is kept whatever its
        age, until a newer period's arrives: a yearly run needs December's.
        """
        with self._db.connect() as conn:
            rows = conn.execute(
                select(
                    statistics_extracts.c.id,
                    statistics_extracts.c.period,
                    statistics_extracts.c.status,
                )
                .where(
                    statistics_extracts.c.received_at < cutoff,
                    statistics_extracts.c.purged_at.is_(None),
                )
                .order_by(statistics_extracts.c.id)
            ).all()
            newest = conn.execute(
                select(statistics_extracts.c.id)
                .where(
                    statistics_extracts.c.status == "accepted",
                    statistics_extracts.c.content.is_not(None),
                )
                .order_by(statistics_extracts.c.id.desc())
                .limit(1)
            ).scalar()
        ids = [int(r.id) for r in rows if not (keep_latest and r.id == newest)]
        return ids

    def purge_in(self, conn: Any, ids: list[int]) -> int:
        """Null the content of extracts ``ids`` inside the caller's transaction; how many."""
        if not ids:
            return 0
        return int(
            conn.execute(
                update(statistics_extracts)
                .where(statistics_extracts.c.id.in_(ids))
                .values(content=None, purged_at=utcnow())
            ).rowcount
        )


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    if row.get("errors"):
        row["errors"] = json.loads(row["errors"])
    return row
