"""The jobs area: one row per (job, period), so every period runs once across instances.

procrastinate's periodic jobs are the model: a period is deferred with a unique key, and the
database, not a shared scheduler, decides who runs it. Every instance's ticker (APScheduler, in
``gateway/jobs/ticker.py``) computes the same period for a fire time and tries to insert the
run; ``INSERT ... ON CONFLICT DO NOTHING`` on the unique ``(job, period)`` lets exactly one
win, on SQLite and on PostgreSQL alike.

A run holds a lease (``lease_owner``, ``lease_until``), renewed while it works. A run whose
lease ran out (its instance died) and a failed run whose retry is due are taken over by a
conditional ``UPDATE`` guarded by the state it read, so two instances cannot both take it.
Results are recorded only by the lease owner.

=============  ===============================================================================
status         meaning
=============  ===============================================================================
``running``    claimed; ``lease_until`` says until when the owner vouches for it
``succeeded``  done; ``result`` holds a JSON summary
``retry``      failed; runs again from ``next_attempt_at`` (backoff) on any instance
``failed``     gave up after ``max_attempts`` or on a permanent error; an operator may force
=============  ===============================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.db import Database
from gateway.store.journal import Journal
from gateway.store.schema import UTCDateTime, metadata, utcnow

__all__ = ["Claim", "JobRuns", "job_runs"]

#: One row per job and period (migration 0006_jobs).
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    #: The period's key: ``2026-10`` (month), ``2026`` (year), ``2026-11-23`` (day), ...
    Column("period", String(32), nullable=False),
    #: The fire time the period came from (None for a run an operator asked for).
    Column("scheduled_for", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    #: Set when an operator forced the run or asked for a past period (also journaled).
    Column("forced", Boolean, nullable=False, default=False),
    Column("actor", String(64), nullable=True),
    Column("reason", String(500), nullable=True),
    Column("last_error_code", String(64), nullable=True),
    #: Never personal data: error texts written by the gateway.
    Column("last_error", Text, nullable=True),
    Column("result", Text, nullable=True),
    UniqueConstraint("job", "period"),
    Index("ix_job_runs_status_next", "status", "next_attempt_at"),
)

_ACTIVE_STATES = ("running", "retry")


@dataclass(frozen=True)
class Claim:
    """A run this instance holds: execute it, then record the outcome."""

    id: int
    job: str
    period: str
    attempt: int
    owner: str
    forced: bool = False


def _insert_ignoring_duplicates(postgres: bool, values: dict[str, Any]) -> Any:
    # The unique key decides who runs a period; a plain INSERT would abort a PostgreSQL
    # transaction on the duplicate, so both dialects use their ON CONFLICT DO NOTHING.
    # RETURNING says whether the row was ours (rowcount is -1 on psycopg with RETURNING).
    statement: Any = (postgresql.insert(job_runs) if postgres else sqlite.insert(job_runs)).values(
        values
    )
    statement = statement.on_conflict_do_nothing()
    return statement.returning(job_runs.c.id)


class JobRuns:
    """Claims, leases, outcomes and history of job runs (the ``job_runs`` table)."""

    def __init__(self, db: Database, journal: Journal) -> None:
        self._db = db
        self._journal = journal

    # -- claiming ------------------------------------------------------------------------

    def claim(
        self,
        job: str,
        period: str,
        *,
        owner: str,
        lease: timedelta,
        scheduled_for: datetime | None = None,
    ) -> Claim | None:
        """Insert the run of ``(job, period)`` as ours; None when any instance already has it."""
        now = utcnow()
        values = {
            "job": job,
            "period": period,
            "scheduled_for": scheduled_for,
            "status": "running",
            "attempts": 1,
            "lease_owner": owner,
            "lease_until": now + lease,
            "created_at": now,
            "started_at": now,
            "forced": False,
        }
        with self._db.transaction() as conn:
            run_id = conn.execute(
                _insert_ignoring_duplicates(self._db.postgres, values)
            ).scalar_one_or_none()
        if run_id is None:
            return None
        return Claim(int(run_id), job, period, 1, owner)

    def claim_operator(
        self,
        job: str,
        period: str,
        *,
        owner: str,
        lease: timedelta,
        actor: str,
        reason: str,
        force: bool,
        journal_status: str | None,
    ) -> tuple[Claim | None, dict[str, Any] | None]:
        """An operator's run of ``(job, period)``: (the claim, None) or (None, the row in the way).

        A period that never ran is inserted; one that ran (or failed) is taken again only with
        ``force``; one running under a live lease never. ``journal_status`` (forced or past
        period runs) journals actor and reason in the claiming transaction.
        """
        now = utcnow()
        with self._db.transaction() as conn:
            inserted_id = conn.execute(
                _insert_ignoring_duplicates(
                    self._db.postgres,
                    {
                        "job": job,
                        "period": period,
                        "status": "running",
                        "attempts": 1,
                        "lease_owner": owner,
                        "lease_until": now + lease,
                        "created_at": now,
                        "started_at": now,
                        "forced": force or journal_status is not None,
                        "actor": actor,
                        "reason": reason,
                    },
                )
            ).scalar_one_or_none()
            row = self._row(conn, job, period)
            assert row is not None  # inserted now or there before
            if inserted_id is None:
                live = (
                    row["status"] == "running" and row["lease_until"] and row["lease_until"] > now
                )
                if live or not force:
                    return None, row
                taken = conn.execute(
                    update(job_runs)
                    .where(
                        job_runs.c.id == row["id"],
                        job_runs.c.status == row["status"],
                        job_runs.c.attempts == row["attempts"],
                    )
                    .values(
                        status="running",
                        attempts=job_runs.c.attempts + 1,
                        lease_owner=owner,
                        lease_until=now + lease,
                        started_at=now,
                        finished_at=None,
                        next_attempt_at=None,
                        forced=True,
                        actor=actor,
                        reason=reason,
                    )
                ).rowcount
                if taken != 1:
                    return None, row
                row = self._row(conn, job, period)
                assert row is not None
            if journal_status is not None:
                self._journal.append_in(
                    conn,
                    direction="local",
                    partner="gateway",
                    operation=f"job:{job}",
                    correlation_id=f"{job}/{period}",
                    status=journal_status,
                    actor=actor,
                    detail=f"period {period}: {reason}"[:2000],
                )
        return Claim(int(row["id"]), job, period, int(row["attempts"]), owner, True), None

    def take_due(self, *, owner: str, lease: timedelta, limit: int = 10) -> list[Claim]:
        """Take over runs whose retry is due or whose owner's lease ran out (a crash)."""
        now = utcnow()
        due = or_(
            and_(job_runs.c.status == "retry", job_runs.c.next_attempt_at <= now),
            and_(job_runs.c.status == "running", job_runs.c.lease_until < now),
        )
        with self._db.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in conn.execute(
                    select(job_runs).where(due).order_by(job_runs.c.id).limit(limit)
                )
            ]
        claims = []
        for row in rows:
            with self._db.transaction() as conn:
                # Guarded by what we read: of two instances, only one changes the row.
                taken = conn.execute(
                    update(job_runs)
                    .where(
                        job_runs.c.id == row["id"],
                        job_runs.c.status == row["status"],
                        job_runs.c.attempts == row["attempts"],
                        due,
                    )
                    .values(
                        status="running",
                        attempts=job_runs.c.attempts + 1,
                        lease_owner=owner,
                        lease_until=now + lease,
                        started_at=now,
                        next_attempt_at=None,
                    )
                ).rowcount
            if taken == 1:
                claims.append(
                    Claim(
                        int(row["id"]),
                        row["job"],
                        row["period"],
                        int(row["attempts"]) + 1,
                        owner,
                        bool(row["forced"]),
                    )
                )
        return claims

    # -- while running and after -----------------------------------------------------------

    def renew(self, claim: Claim, lease: timedelta) -> bool:
        """Extend the lease; False when the run is no longer ours (taken over after expiry)."""
        with self._db.transaction() as conn:
            return (
                conn.execute(
                    update(job_runs)
                    .where(
                        job_runs.c.id == claim.id,
                        job_runs.c.status == "running",
                        job_runs.c.lease_owner == claim.owner,
                        job_runs.c.attempts == claim.attempt,
                    )
                    .values(lease_until=utcnow() + lease)
                ).rowcount
                == 1
            )

    def succeed(self, claim: Claim, result: dict[str, Any]) -> bool:
        """Record success (only the lease owner can)."""
        return self._finish(
            claim,
            status="succeeded",
            result=json.dumps(result, default=str, ensure_ascii=False),
            last_error_code=None,
            last_error=None,
            next_attempt_at=None,
        )

    def fail(
        self, claim: Claim, *, code: str, error: str, retry_at: datetime | None, journal: bool
    ) -> bool:
        """Record a failure: retry from ``retry_at``, or ``failed`` for good when it is None.

        A run that gives up for good is journaled when ``journal`` (operators look there).
        """
        with self._db.transaction() as conn:
            done = self._finish_in(
                conn,
                claim,
                status="retry" if retry_at is not None else "failed",
                next_attempt_at=retry_at,
                last_error_code=code,
                last_error=error[:2000],
            )
            if done and retry_at is None and journal:
                self._journal.append_in(
                    conn,
                    direction="local",
                    partner="gateway",
                    operation=f"job:{claim.job}",
                    correlation_id=f"{claim.job}/{claim.period}",
                    status="job_failed",
                    error_code=code,
                    detail=f"period {claim.period}, attempt {claim.attempt}: {error}"[:2000],
                )
        return done

    def _finish(self, claim: Claim, **values: Any) -> bool:
        with self._db.transaction() as conn:
            return self._finish_in(conn, claim, **values)

    def _finish_in(self, conn: Connection, claim: Claim, **values: Any) -> bool:
        return (
            conn.execute(
                update(job_runs)
                .where(
                    job_runs.c.id == claim.id,
                    job_runs.c.status == "running",
                    job_runs.c.lease_owner == claim.owner,
                    job_runs.c.attempts == claim.attempt,
                )
                .values(finished_at=utcnow(), lease_owner=None, lease_until=None, **values)
            ).rowcount
            == 1
        )

    def release(self, owner: str) -> int:
        """Give back every run ``owner`` holds (graceful stop): due again at once, anywhere."""
        now = utcnow()
        with self._db.transaction() as conn:
            return int(
                conn.execute(
                    update(job_runs)
                    .where(job_runs.c.status == "running", job_runs.c.lease_owner == owner)
                    .values(
                        status="retry",
                        next_attempt_at=now,
                        lease_owner=None,
                        lease_until=None,
                        last_error_code="INSTANCE_STOPPED",
                        last_error="the instance running it stopped; resumed by any instance",
                    )
                ).rowcount
            )

    # -- reading -------------------------------------------------------------------------

    def _row(self, conn: Connection, job: str, period: str) -> dict[str, Any] | None:
        row = conn.execute(
            select(job_runs).where(job_runs.c.job == job, job_runs.c.period == period)
        ).first()
        return dict(row._mapping) if row else None

    def get(self, job: str, period: str) -> dict[str, Any] | None:
        """The run of ``(job, period)``, if any."""
        with self._db.connect() as conn:
            return self._row(conn, job, period)

    def exists(self, job: str, period: str) -> bool:
        """Whether ``(job, period)`` has a run in any state."""
        return self.get(job, period) is not None

    def history(self, job: str, limit: int = 50) -> list[dict[str, Any]]:
        """Runs of ``job``, newest period first."""
        query = (
            select(job_runs)
            .where(job_runs.c.job == job)
            .order_by(job_runs.c.created_at.desc(), job_runs.c.id.desc())
            .limit(limit)
        )
        with self._db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def last_scheduled(self, job: str) -> datetime | None:
        """The latest fire time a run of ``job`` was inserted for (catch-up starts there)."""
        with self._db.connect() as conn:
            value = conn.execute(
                select(func.max(job_runs.c.scheduled_for)).where(job_runs.c.job == job)
            ).scalar()
        return _as_utc(value)

    def prune(self, jobs: list[str], before: datetime, *, batch: int = 5000) -> int:
        """Delete finished runs (succeeded or failed) of ``jobs`` that ended ``before``.

        For interval jobs, whose every slot is a row (a minute's job: 1,440 a day): the
        newest run of each job stays (catch-up starts from it, ``jobs ls`` shows it), and
        nothing running or waiting to retry is touched. Failed runs were journaled when they
        failed. In batches, so no transaction holds the table long.
        """
        if not jobs:
            return 0
        removed = 0
        keep = (
            select(func.max(job_runs.c.id)).where(job_runs.c.job.in_(jobs)).group_by(job_runs.c.job)
        )
        while True:
            with self._db.transaction() as conn:
                ids = [
                    row[0]
                    for row in conn.execute(
                        select(job_runs.c.id)
                        .where(
                            job_runs.c.job.in_(jobs),
                            job_runs.c.status.in_(("succeeded", "failed")),
                            job_runs.c.finished_at < before,
                            job_runs.c.id.not_in(keep.scalar_subquery()),
                        )
                        .limit(batch)
                    )
                ]
                if ids:
                    conn.execute(delete(job_runs).where(job_runs.c.id.in_(ids)))
            removed += len(ids)
            if len(ids) < batch:
                return removed

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per job: the latest run's period and status, last success, runs waiting to retry."""
        out: dict[str, dict[str, Any]] = {}
        with self._db.connect() as conn:
            latest = (
                select(job_runs.c.job, func.max(job_runs.c.id).label("id"))
                .group_by(job_runs.c.job)
                .subquery()
            )
            for r in conn.execute(select(job_runs).join(latest, latest.c.id == job_runs.c.id)):
                out[r.job] = {
                    "period": r.period,
                    "status": r.status,
                    "attempts": r.attempts,
                    "last_error_code": r.last_error_code,
                    "finished_at": r.finished_at,
                }
            for job, at in conn.execute(
                select(job_runs.c.job, func.max(job_runs.c.finished_at))
                .where(job_runs.c.status == "succeeded")
                .group_by(job_runs.c.job)
            ):
                out.setdefault(job, {})["last_success_at"] = _as_utc(at)
            for job, status, n in conn.execute(
                select(job_runs.c.job, job_runs.c.status, func.count())
                .where(job_runs.c.status.in_((*_ACTIVE_STATES, "failed")))
                .group_by(job_runs.c.job, job_runs.c.status)
            ):
                out.setdefault(job, {})[f"{status}_runs"] = int(n)
        return out


def _as_utc(value: Any) -> datetime | None:
    """An aggregate's datetime (MAX() over SQLite text loses the column type's processing)."""
    if value is None:
        return None
    found = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)
