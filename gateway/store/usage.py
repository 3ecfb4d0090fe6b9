"""The e-service usage area: counts by month, e-service, recipient type and outcome (KPI-01).

Two tables (migration ``0010_usage``):

``eservice_usage``          one counter row per (month, e-service, recipient type, outcome);
                            a use is an upsert that adds one, atomic on SQLite and PostgreSQL
                            (``INSERT ... ON CONFLICT DO UPDATE SET uses = uses + 1``), so
                            concurrent requests and instances never lose a count
``eservice_usage_clients``  one row per (month, client key): the distinct clients using the
                            e-services (KPI-05), by keyed pseudonym, never a personal code
                            (``gateway/eservices/usage.py`` makes the key)

Months are calendar months in Europe/Riga (the reports are Latvian), written ``YYYY-MM``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.db import Database
from gateway.store.schema import metadata

__all__ = [
    "ESERVICES",
    "OUTCOMES",
    "RECIPIENT_TYPES",
    "SERVED",
    "UsageCounts",
    "UsageRow",
    "eservice_usage",
    "eservice_usage_clients",
    "month_of",
    "record_eservice_use",
]

#: The stable names shared with the message flows (gateway/eservices/scope.py has the same).
ESERVICES = (
    "my_probation_data",
    "probation_client_data",
    "information_to_vpd",
    "employer_information",
)
RECIPIENT_TYPES = ("client", "employer", "volunteer", "municipality")
#: answered (a request PLUS answered), accepted (a submission taken), refused (identity,
#: entitlement or scope said no), failed (the gateway or PLUS could not serve it).
OUTCOMES = ("answered", "accepted", "refused", "failed")
#: The outcomes in which the e-service served its user.
SERVED = ("answered", "accepted")

_RIGA = ZoneInfo("Europe/Riga")

eservice_usage = Table(
    "eservice_usage",
    metadata,
    Column("month", String(7), nullable=False),
    Column("eservice", String(32), nullable=False),
    Column("recipient_type", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("uses", BigInteger, nullable=False),
    PrimaryKeyConstraint("month", "eservice", "recipient_type", "outcome"),
)

eservice_usage_clients = Table(
    "eservice_usage_clients",
    metadata,
    Column("month", String(7), nullable=False),
    #: A keyed pseudonym of the client's personal code (gateway/eservices/usage.py).
    Column("client_key", String(64), nullable=False),
    PrimaryKeyConstraint("month", "client_key"),
)


@dataclass(frozen=True)
class UsageRow:
    """One counter: uses in ``month`` of ``eservice`` by ``recipient_type`` with ``outcome``."""

    month: str
    eservice: str
    recipient_type: str
    outcome: str
    uses: int


def month_of(at: datetime) -> str:
    """The ``YYYY-MM`` month of ``at`` in Riga; a naive datetime is refused."""
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the usage counts; use an aware one")
    return at.astimezone(_RIGA).strftime("%Y-%m")


def _insert(conn: Connection, table: Table) -> Any:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


def record_eservice_use(
    conn: Connection,
    *,
    at: datetime,
    eservice: str,
    recipient_type: str,
    outcome: str,
    client_key: str | None,
) -> None:
    """Count one use in the caller's transaction (ValueError for a name not in the lists).

    ``client_key``: the client's keyed pseudonym when the user is a probation client, None
    for employers, volunteers, municipalities. Only a use that served the client (answered or
    accepted) makes them one of the distinct clients using the e-services; a refused or
    failed attempt is counted as a use with its outcome, not as a client served.
    """
    if eservice not in ESERVICES:
        raise ValueError(f"unknown e-service {eservice!r}")
    if recipient_type not in RECIPIENT_TYPES:
        raise ValueError(f"unknown recipient type {recipient_type!r}")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    if client_key is not None and not (0 < len(client_key) <= 64):
        raise ValueError("a client key is 1 to 64 characters")
    month = month_of(at)
    statement = _insert(conn, eservice_usage).values(
        month=month, eservice=eservice, recipient_type=recipient_type, outcome=outcome, uses=1
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["month", "eservice", "recipient_type", "outcome"],
            set_={"uses": eservice_usage.c.uses + 1},
        )
    )
    if client_key is not None and outcome in SERVED:
        conn.execute(
            _insert(conn, eservice_usage_clients)
            .values(month=month, client_key=client_key)
            .on_conflict_do_nothing(index_elements=["month", "client_key"])
        )


class UsageCounts:
    """The usage area over the store's one transaction helper."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        *,
        at: datetime,
        eservice: str,
        recipient_type: str,
        outcome: str,
        client_key: str | None,
    ) -> None:
        """:func:`record_eservice_use` in a transaction of its own."""
        with self.db.transaction() as conn:
            record_eservice_use(
                conn,
                at=at,
                eservice=eservice,
                recipient_type=recipient_type,
                outcome=outcome,
                client_key=client_key,
            )

    def rows(self, first_month: str, last_month: str) -> list[UsageRow]:
        """Every counter of the months ``first_month`` to ``last_month`` (inclusive), sorted."""
        t = eservice_usage
        with self.db.connect() as conn:
            result = conn.execute(
                select(t.c.month, t.c.eservice, t.c.recipient_type, t.c.outcome, t.c.uses)
                .where(t.c.month >= first_month, t.c.month <= last_month)
                .order_by(t.c.month, t.c.eservice, t.c.recipient_type, t.c.outcome)
            )
            return [UsageRow(*row) for row in result]

    def distinct_clients(self, first_month: str, last_month: str) -> int:
        """How many different clients used an e-service in the months given (inclusive)."""
        t = eservice_usage_clients
        with self.db.connect() as conn:
            count = conn.execute(
                select(func.count(func.distinct(t.c.client_key))).where(
                    t.c.month >= first_month, t.c.month <= last_month
                )
            ).scalar_one()
        return int(count)

    def distinct_clients_by_month(self, first_month: str, last_month: str) -> dict[str, int]:
        """Distinct clients of each month given that has any."""
        t = eservice_usage_clients
        with self.db.connect() as conn:
            result = conn.execute(
                select(t.c.month, func.count())
                .where(t.c.month >= first_month, t.c.month <= last_month)
                .group_by(t.c.month)
                .order_by(t.c.month)
            )
            return {month: int(n) for month, n in result}
