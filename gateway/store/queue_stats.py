"""Queue statistics that stay fast after ten years: ``queue stats`` and ``/v1/admin/outbox/stats``.

Part of the outbox area, beside gateway/store/outbox.py (as verify.py is beside journal.py):
a read model over the ``outbox`` table with one table of its own, ``outbox_totals``.

:meth:`Outbox.stats <gateway.store.outbox.Outbox.stats>` counts every row by partner and status
each time: about 0.2-0.4 s over ten years of history (560,000 outbox rows; docs/PERFORMANCE.md,
"Ten years of growth"). This read model answers the same figures from what is small:

- rows that are not delivered (pending, sending, dead, discarded), through ``(status, partner)``;
- the rows per partner, as a checkpoint (``outbox_totals``: how many rows each partner had up
  to row ``upto_id``) plus the rows added after it. Rows are never deleted and never change
  partner, so that count never changes; delivered = rows - not delivered, whatever happened to
  any row's status since the checkpoint;
- the rates, through ranges of ``delivered_at``, ``created_at`` and the few dead rows.

:func:`checkpoint_in` moves the checkpoint up to the rows older than an hour; the nightly
retention run calls it, and :func:`stats` works without one too (it then counts every row
once, as before). Statements group in Python, not in SQL: SQLite's planner answers a
``GROUP BY partner`` by walking every row in partner order, whatever index would serve the
``WHERE``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    String,
    Table,
    delete,
    exists,
    func,
    insert,
    select,
)

from gateway.store.db import Database
from gateway.store.schema import metadata, outbox, utcnow

__all__ = ["NOT_DELIVERED", "checkpoint_in", "outbox_totals", "stats"]

#: Every status but ``delivered`` (the one that grows without bound). A status added to the
#: outbox must be added here: the tests compare these figures with ``Outbox.stats``.
NOT_DELIVERED = ("pending", "sending", "dead", "discarded")
_LIVE = ("pending", "sending")

_Id = BigInteger().with_variant(Integer(), "sqlite")

#: Rows per partner up to ``upto_id`` (the same for every row of the table).
outbox_totals = Table(
    "outbox_totals",
    metadata,
    Column("partner", String(32), primary_key=True),
    Column("upto_id", _Id, nullable=False),
    Column("total", BigInteger, nullable=False),
)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _totals(conn: Connection) -> tuple[int, Counter[str]]:
    """(upto_id, rows per partner up to it) of the checkpoint; (0, empty) without one."""
    upto, totals = 0, Counter[str]()
    for partner, upto_id, total in conn.execute(
        select(outbox_totals.c.partner, outbox_totals.c.upto_id, outbox_totals.c.total)
    ):
        upto, totals[partner] = int(upto_id), int(total)
    return upto, totals


def _partners_after(conn: Connection, after: int, upto: int | None = None) -> Counter[str]:
    # Counted by the database: the rows after the checkpoint are a day's, or every row of a
    # store no retention run has checkpointed yet.
    query = select(outbox.c.partner, func.count()).where(outbox.c.id > after)
    if upto is not None:
        query = query.where(outbox.c.id <= upto)
    return Counter(
        {partner: int(n) for partner, n in conn.execute(query.group_by(outbox.c.partner))}
    )


def checkpoint_in(conn: Connection, *, settled: timedelta = timedelta(hours=1)) -> int:
    """Move the checkpoint up to the newest row created more than ``settled`` ago.

    Inside the caller's transaction (the nightly retention run's); the new ``upto_id``. Reads
    only the rows added since the last checkpoint. Rows younger than ``settled`` stay after
    it: on PostgreSQL a transaction still in flight may yet commit a row with a lower id than
    rows already visible, and the checkpoint must never be past a row it did not count.
    """
    cutoff = utcnow() - settled
    newest = conn.execute(
        select(outbox.c.id)
        .where(outbox.c.created_at < cutoff)
        .order_by(outbox.c.created_at.desc(), outbox.c.id.desc())
        .limit(1)
    ).scalar()
    upto, totals = _totals(conn)
    target = int(newest or 0)
    if target <= upto:
        return upto
    totals.update(_partners_after(conn, upto, target))
    conn.execute(delete(outbox_totals))
    conn.execute(
        insert(outbox_totals),
        [{"partner": p, "upto_id": target, "total": n} for p, n in sorted(totals.items())],
    )
    return target


def stats(db: Database, *, window: timedelta = timedelta(minutes=5)) -> dict[str, dict[str, Any]]:
    """Per partner: counts by status, depth, oldest waiting age, held messages, rates.

    The same figures as ``Outbox.stats`` (``held_by_dead``: pending messages behind a dead one
    of the same case; rates per minute over ``window``), read from the small parts only.
    """
    now = utcnow()
    since = now - window
    minutes = window.total_seconds() / 60
    out: dict[str, dict[str, Any]] = {}

    def entry(partner: str) -> dict[str, Any]:
        return out.setdefault(
            partner,
            {
                "counts": {},
                "depth": 0,
                "oldest_age_seconds": None,
                "held_by_dead": 0,
                "delivered_per_minute": 0.0,
                "dead_per_minute": 0.0,
                "accepted_per_minute": 0.0,
            },
        )

    earlier = outbox.alias("earlier")
    held = exists().where(
        earlier.c.partner == outbox.c.partner,
        earlier.c.ordering_key == outbox.c.ordering_key,
        earlier.c.id < outbox.c.id,
        earlier.c.status == "dead",
    )
    conn = db.connect()
    if db.postgres:
        # One snapshot: the checkpoint, the rows after it and the statuses must agree.
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    with conn:
        upto, rows = _totals(conn)
        rows.update(_partners_after(conn, upto))
        # Aggregated by the database: a backlog of many thousands of rows (an outage) must
        # not be read row by row into Python on every operator's poll.
        not_delivered: Counter[tuple[str, str]] = Counter()
        oldest: dict[str, datetime] = {}
        for status in NOT_DELIVERED:
            for partner, n, first in conn.execute(
                select(outbox.c.partner, func.count(), func.min(outbox.c.created_at))
                .where(outbox.c.status == status)
                .group_by(outbox.c.partner)
            ):
                not_delivered[(partner, status)] += n
                if status in _LIVE and first is not None:
                    created = _aware(first)
                    if partner not in oldest or created < oldest[partner]:
                        oldest[partner] = created
        dead_recent: Counter[str] = Counter(
            {
                partner: n
                for partner, n in conn.execute(
                    select(outbox.c.partner, func.count())
                    .where(outbox.c.status == "dead", outbox.c.updated_at >= since)
                    .group_by(outbox.c.partner)
                )
            }
        )
        for partner, total in sorted(rows.items()):
            e = entry(partner)
            others = 0
            for status in NOT_DELIVERED:
                n = not_delivered[(partner, status)]
                if n:
                    e["counts"][status] = n
                    others += n
            if total - others:
                e["counts"]["delivered"] = total - others
            e["depth"] = sum(e["counts"].get(s, 0) for s in _LIVE)
            if partner in oldest:
                e["oldest_age_seconds"] = (now - oldest[partner]).total_seconds()
        # Only a partner with a dead letter can hold messages behind one: the usual case (no
        # dead letters) then costs no probe per waiting row.
        with_dead = sorted(p for (p, status), n in not_delivered.items() if status == "dead" and n)
        if with_dead:
            held_rows = conn.execute(
                select(outbox.c.partner, func.count())
                .where(
                    outbox.c.partner.in_(with_dead),
                    outbox.c.status == "pending",
                    outbox.c.ordering_key.is_not(None),
                    held,
                )
                .group_by(outbox.c.partner)
            )
            for partner, n in held_rows:
                entry(partner)["held_by_dead"] = n
        for column, key in (
            (outbox.c.delivered_at, "delivered_per_minute"),
            (outbox.c.created_at, "accepted_per_minute"),
        ):
            recent = conn.execute(
                select(outbox.c.partner, func.count())
                .where(column >= since)
                .group_by(outbox.c.partner)
            )
            for partner, n in recent:
                entry(partner)[key] = round(n / minutes, 2)
        for partner, n in dead_recent.items():
            entry(partner)["dead_per_minute"] = round(n / minutes, 2)
    # Outbox.stats lists partners in the order its first statement returns them; callers
    # sort, so the order here is by partner.
    return dict(sorted(out.items()))
