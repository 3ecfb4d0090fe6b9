"""``make run``: a synthetic extract for the periods the publishing jobs will catch up.

With simulators, ``serve`` stores the synthetic extracts of last month and of last December
(when none is stored), so the open data jobs publish them to the CKAN simulator at start.
"""

from __future__ import annotations

from datetime import date

import structlog

from gateway.config import Settings
from gateway.opendata.extract import ExtractCodes
from gateway.opendata.service import receive_extract
from gateway.opendata.synthetic import SyntheticYear, extract_csv
from gateway.store import Store
from gateway.store.statistics import Extracts

__all__ = ["seed_synthetic_extracts"]

log = structlog.get_logger(__name__)


def seed_synthetic_extracts(
    settings: Settings, store: Store, today: date | None = None
) -> list[str]:
    """Store synthetic extracts for last month and last December if missing; their periods."""
    today = today or date.today()
    last_month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    wanted = sorted({last_month, (today.year - 1, 12)})
    extracts = Extracts(store.db, store.journal)
    codes = ExtractCodes.load(settings.paths.mappings)
    seeded = []
    for year, month in wanted:
        period = f"{year:04d}-{month:02d}"
        if extracts.latest(period) is not None:
            continue
        rows = SyntheticYear(year, clients=settings.opendata.demo_clients).extract(month)
        received = receive_extract(
            store,
            codes,
            period=period,
            fmt="csv",
            lines=(chunk.encode("utf-8") for chunk in extract_csv(rows)),
            actor="simulator",
        )
        log.info("synthetic extract stored", period=period, rows=received.rows)
        seeded.append(period)
    return seeded
