"""Raw material of the statistics: approved hours and postings with their dimensions.

The database groups by every dimension at once (day, volunteer, organisation, place, kind,
field); the facade folds that into one cut in Python (gateway/facade/statistics.py). That keeps
the SQL the same on SQLite and PostgreSQL (no dialect-specific month functions) and the
volumes are small: one row per volunteer, organisation and day worked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from gateway.store.db import Database
from gateway.store.facade.tables import (
    applications,
    hours,
    opportunities,
    organisations,
    volunteers,
)

__all__ = ["StatisticsSource"]

_A = applications.c
_H = hours.c
_O = opportunities.c
_G = organisations.c


class StatisticsSource:
    """Reads for the statistics over the shared :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def approved_hours(
        self, *, organisation_id: str | None = None, volunteer_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Approved minutes by day, volunteer, organisation, place, kind and field."""
        query = (
            select(
                _H.work_date,
                _A.volunteer_id,
                _O.organisation_id,
                _G.name.label("organisation_name"),
                _O.municipality,
                _O.digital,
                _O.kind,
                _G.field,
                func.sum(_H.approved_minutes).label("minutes"),
            )
            .join(applications, _A.id == _H.application_id)
            .join(opportunities, _O.id == _A.opportunity_id)
            .join(organisations, _G.id == _O.organisation_id)
            .where(_H.approved_minutes.is_not(None))
            .group_by(
                _H.work_date,
                _A.volunteer_id,
                _O.organisation_id,
                _G.name,
                _O.municipality,
                _O.digital,
                _O.kind,
                _G.field,
            )
        )
        if organisation_id is not None:
            query = query.where(_O.organisation_id == organisation_id)
        if volunteer_id is not None:
            query = query.where(_A.volunteer_id == volunteer_id)
        with self.db.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def postings(self, *, organisation_id: str | None = None) -> list[dict[str, Any]]:
        """Every posting (archived too) with its dimensions and the day it was created."""
        query = select(
            _O.id,
            _O.created_at,
            _O.organisation_id,
            _G.name.label("organisation_name"),
            _O.municipality,
            _O.digital,
            _O.kind,
            _G.field,
        ).join(organisations, _G.id == _O.organisation_id)
        if organisation_id is not None:
            query = query.where(_O.organisation_id == organisation_id)
        with self.db.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def registered_volunteers(self) -> int:
        """Volunteers registered and not erased."""
        with self.db.connect() as conn:
            count = conn.execute(
                select(func.count()).select_from(volunteers).where(volunteers.c.erased_at.is_(None))
            ).scalar_one()
        return int(count)
