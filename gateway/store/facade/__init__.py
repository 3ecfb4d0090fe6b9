"""The volunteer facade's store area (``vol_*`` tables), over the store's one transaction helper.

=================  =============================================================================
``tables.py``      the tables, mirrored by migration ``0006_facade``
``listings.py``    organisations, opportunities, the public list, imports, archiving
``people.py``      volunteers, applications (the seat rule), messages, export, erasure
``hours.py``       both records of a day's hours, reconciliation, approval
``certificates.py`` certificates from draft to sealed PDF, attachments
``statistics.py``  the rows the statistics are folded from
=================  =============================================================================
"""

from __future__ import annotations

from gateway.store.db import Database
from gateway.store.facade.certificates import Certificates
from gateway.store.facade.hours import Hours
from gateway.store.facade.listings import Listings, ListQuery
from gateway.store.facade.people import People
from gateway.store.facade.statistics import StatisticsSource

__all__ = [
    "Certificates",
    "FacadeStore",
    "Hours",
    "ListQuery",
    "Listings",
    "People",
    "StatisticsSource",
]


class FacadeStore:
    """The facade's store areas over one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.listings = Listings(db)
        self.people = People(db)
        self.hours = Hours(db)
        self.certificates = Certificates(db)
        self.statistics = StatisticsSource(db)
