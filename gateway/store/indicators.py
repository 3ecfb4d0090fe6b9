"""The indicators area: totals PLUS supplies, and the gateway's own electronic counts.

``indicator_totals`` (migration ``0010_usage``) holds what only PLUS knows, per year
(``2027``) or month (``2027-03``): active clients, and the rulings received and execution data
sent **including paper**, and registry requests made any way. A total is replaced when PLUS
sends it again (the last word counts), and every change is journaled.

The electronic counts are read from the journal, the record of every message in and out
(``direction``, ``message_type``, ``status``, ``at``), and from the registry audit
(``registry_queries``): read-only counts over core tables, never a write. A message counts once
however often it was journaled (distinct ``message_id``): a replayed delivery is one message.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    PrimaryKeyConstraint,
    String,
    Table,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.audit import AuditLog
from gateway.store.db import Database
from gateway.store.journal import Journal
from gateway.store.schema import UTCDateTime, metadata, utcnow

__all__ = ["MEASURES", "IndicatorStore", "indicator_totals"]

#: What PLUS supplies (totals including paper, and the active clients).
MEASURES = ("active_clients", "rulings_received", "execution_data_sent", "registry_requests")

indicator_totals = Table(
    "indicator_totals",
    metadata,
    #: ``YYYY`` (a year's total) or ``YYYY-MM`` (a month's).
    Column("period", String(7), nullable=False),
    Column("measure", String(32), nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    Column("actor", String(64), nullable=True),
    PrimaryKeyConstraint("period", "measure"),
)


class IndicatorStore:
    """PLUS's totals and the electronic counts the indicator report needs."""

    def __init__(self, db: Database, journal_area: Journal, audit_area: AuditLog) -> None:
        self._db = db
        self._journal = journal_area
        self._audit = audit_area

    def put_totals(self, period: str, values: dict[str, int], *, actor: str | None) -> None:
        """Set ``values`` (measure -> total) of ``period``, replacing earlier ones; journaled."""
        unknown = set(values) - set(MEASURES)
        if unknown:
            raise ValueError(f"unknown measure {sorted(unknown)[0]!r}")
        now = utcnow()
        with self._db.transaction() as conn:
            insert: Any = (
                postgresql.insert(indicator_totals)
                if conn.dialect.name == "postgresql"
                else sqlite.insert(indicator_totals)
            )
            for measure, value in values.items():
                statement = insert.values(
                    period=period, measure=measure, value=value, updated_at=now, actor=actor
                )
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["period", "measure"],
                        set_={"value": value, "updated_at": now, "actor": actor},
                    )
                )
            self._journal.append_in(
                conn,
                at=now,
                direction="local",
                partner="plus",
                operation="indicator_totals",
                status="totals_received",
                actor=actor,
                detail=f"{period}: " + ", ".join(f"{k}={v}" for k, v in sorted(values.items())),
            )

    def totals(self, periods: Iterable[str]) -> dict[str, dict[str, int]]:
        """period -> measure -> value for the periods given that have any."""
        wanted = list(periods)
        t = indicator_totals
        with self._db.connect() as conn:
            rows = conn.execute(
                select(t.c.period, t.c.measure, t.c.value).where(t.c.period.in_(wanted))
            )
            out: dict[str, dict[str, int]] = {}
            for period, measure, value in rows:
                out.setdefault(period, {})[measure] = int(value)
        return out

    def electronic_messages(
        self,
        *,
        direction: str,
        status: str,
        message_types: Iterable[str],
        since: datetime,
        until: datetime,
    ) -> int:
        """Distinct messages of ``message_types`` journaled with ``direction`` and ``status``
        in ``[since, until)`` (the journal area counts; its table is its own)."""
        return self._journal.count_messages(
            direction=direction,
            status=status,
            message_types=message_types,
            since=since,
            until=until,
        )

    def registry_requests(self, *, since: datetime, until: datetime) -> int:
        """Registry requests made through the gateway (electronic by definition) in the range
        (counted by the registry audit area, which owns ``registry_queries``)."""
        return self._audit.count_between(since=since, until=until)
