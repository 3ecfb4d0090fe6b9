"""Hours: the volunteer's and the organiser's record of each day, reconciled and approved.

One row per (application, day) holds both records. Its state follows from them:

==================  ==========================================================================
``volunteer_only``  only the volunteer recorded the day
``organiser_only``  only the organiser recorded it
``matched``         both recorded the same time
``disputed``        both recorded it and the times differ (the difference is flagged)
``approved``        the organiser approved a time; final, neither side may change it
==================  ==========================================================================
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.facade.errors import ConflictError, UnprocessableError
from gateway.store.db import Database
from gateway.store.facade.tables import hours
from gateway.store.schema import utcnow

__all__ = ["Hours", "state_of"]

_H = hours.c


def state_of(row: dict[str, Any]) -> str:
    """The reconciliation state of one day's row (see the module docstring)."""
    if row["approved_minutes"] is not None:
        return "approved"
    mine, theirs = row["volunteer_minutes"], row["organiser_minutes"]
    if mine is None:
        return "organiser_only"
    if theirs is None:
        return "volunteer_only"
    return "matched" if mine == theirs else "disputed"


class Hours:
    """Both records of hours and their approval over the shared :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self, app_id: int, side: str, day: date, minutes: int, note: str | None
    ) -> dict[str, Any]:
        """Set one side's (``volunteer`` or ``organiser``) record of a day; 409 if final."""
        column, note_column = f"{side}_minutes", f"{side}_note"
        now = utcnow()
        for _attempt in range(2):
            try:
                with self.db.transaction() as conn:
                    row = (
                        conn.execute(
                            select(hours).where(_H.application_id == app_id, _H.work_date == day)
                        )
                        .mappings()
                        .first()
                    )
                    if row is None:
                        conn.execute(
                            insert(hours).values(
                                application_id=app_id,
                                work_date=day,
                                **{column: minutes, note_column: note},
                                updated_at=now,
                            )
                        )
                    else:
                        done = conn.execute(
                            update(hours)
                            .where(_H.id == row["id"], _H.approved_minutes.is_(None))
                            .values(**{column: minutes, note_column: note}, updated_at=now)
                        )
                        if done.rowcount == 0:
                            raise _final()
                return self.day(app_id, day)
            except IntegrityError:
                # Both sides created the day at once: the second one updates instead.
                continue
        raise ConflictError("HOURS_CONFLICT", "the day was changed concurrently; try again")

    def day(self, app_id: int, day: date) -> dict[str, Any]:
        """One day's row with its state; 422 HOURS_NOT_LOGGED when nobody recorded it."""
        with self.db.connect() as conn:
            row = (
                conn.execute(select(hours).where(_H.application_id == app_id, _H.work_date == day))
                .mappings()
                .first()
            )
        if row is None:
            raise _not_logged()
        return {**row, "state": state_of(dict(row))}

    def of_application(self, app_id: int) -> list[dict[str, Any]]:
        """Every recorded day of one application, in date order, with its state."""
        with self.db.connect() as conn:
            rows = conn.execute(
                select(hours).where(_H.application_id == app_id).order_by(_H.work_date)
            ).mappings()
            return [{**r, "state": state_of(dict(r))} for r in rows]

    def approve(self, app_id: int, day: date, minutes: int | None, actor: str) -> dict[str, Any]:
        """The organiser approves a day: 422 if never logged, 409 if disputed without an
        explicit time or already final. Approved time is final."""
        with self.db.transaction() as conn:
            row = (
                conn.execute(select(hours).where(_H.application_id == app_id, _H.work_date == day))
                .mappings()
                .first()
            )
            if row is None or (
                row["volunteer_minutes"] is None and row["organiser_minutes"] is None
            ):
                raise _not_logged()
            state = state_of(dict(row))
            if state == "approved":
                raise _final()
            if minutes is None:
                if state == "disputed":
                    raise ConflictError(
                        "HOURS_DISPUTED",
                        "the volunteer's and the organiser's records differ: give the hours "
                        "to approve",
                        path="body.hours",
                    )
                minutes = row["organiser_minutes"] or row["volunteer_minutes"]
            done = conn.execute(
                update(hours)
                .where(_H.id == row["id"], _H.approved_minutes.is_(None))
                .values(approved_minutes=minutes, approved_at=utcnow(), approved_by=actor)
            )
            if done.rowcount == 0:
                raise _final()
        return self.day(app_id, day)

    def approved_summary(self, app_id: int) -> dict[str, Any]:
        """Approved minutes of an application and the first and last approved day."""
        with self.db.connect() as conn:
            row = conn.execute(
                select(
                    func.coalesce(func.sum(_H.approved_minutes), 0),
                    func.min(_H.work_date),
                    func.max(_H.work_date),
                ).where(_H.application_id == app_id, _H.approved_minutes.is_not(None))
            ).one()
        return {"minutes": int(row[0]), "first": row[1], "last": row[2]}


def _final() -> ConflictError:
    return ConflictError(
        "HOURS_FINAL", "the hours of this day are approved and final", path="path.work_date"
    )


def _not_logged() -> UnprocessableError:
    return UnprocessableError(
        "HOURS_NOT_LOGGED",
        "neither the volunteer nor the organiser recorded hours on this day",
        path="path.work_date",
    )
