"""Durable store (SQLite WAL or PostgreSQL), one module per area over one transaction helper.

=================  =============================================================================
``db.py``          engine, migrations, :class:`Database` (the one transaction helper: SQLite
                   writer queue, outages mapped to StoreUnavailableError)
``schema.py``      the shared metadata and the core tables (SQLAlchemy Core), mirrored by the
                   Alembic migrations; an area's other tables live in its own module
``journal.py``     append to the hash chain, entries of a message, purge, verify, chain head;
                   with ``chain.py`` (the hash), ``verify.py``, ``anchor.py`` (signed
                   checkpoints outside the database) and ``rejections.py`` (refused requests)
``idempotency.py`` Idempotency-Key -> the message it accepted
``outbox.py``      accept (outbox + key + journal, one transaction), claim with a lease,
                   delivered/retry/dead, replay, discard, statistics
``inbox.py``       accept with the duplicate check, page, ack, reply-routing lookup, push
``audit.py``       who asked a registry or institution about whom (personal codes, later
                   pseudonymised)
``leases.py``      give back every lease of a stopping worker (outbox and push)
``health.py``      readiness: can the store answer, and still write
``calendar.py``    VPD resources, busy blocks, bookings, published objects, intake
``jobs.py``        one run per (job, period) across instances, with leases
``statistics.py``  pseudonymised extracts from PLUS (the open data input)
``usage.py``       e-service usage counters and distinct clients (KPI-01, KPI-05)
``eservices.py``   e-service requests waiting for PLUS, parties PLUS registers, assignments
``indicators.py``  totals PLUS supplies (with paper) and the electronic counts (KPI-02..05)
``facade/``        the volunteer facade's tables and statements
``retention.py``   retention per class of data, through each area's ``*_in`` purges
=================  =============================================================================

An area owns its tables and statements; another area reaches them only through its methods. A
method whose name ends in ``_in`` takes the caller's connection and joins its transaction, so
a write across areas (an accept) commits or rolls back as one. :class:`Store` composes the
areas: ``store.outbox.claim_due(...)``, ``store.inbox.page(...)``, ``store.journal.append(...)``.
A new area adds a module and one attribute here.
"""

from __future__ import annotations

from sqlalchemy import Engine

from gateway.store.audit import AuditLog
from gateway.store.calendar import CalendarStore
from gateway.store.chain import sha256_hex
from gateway.store.db import Database, create_store_engine, is_sqlite, migrate
from gateway.store.eservices import EServiceStore
from gateway.store.idempotency import IdempotencyConflictError, IdempotencyKeys
from gateway.store.inbox import InboundRecord, Inbox
from gateway.store.indicators import IndicatorStore
from gateway.store.journal import Journal
from gateway.store.outbox import OutboundRecord, Outbox
from gateway.store.usage import UsageCounts

__all__ = [
    "Database",
    "IdempotencyConflictError",
    "InboundRecord",
    "OutboundRecord",
    "Store",
    "create_store_engine",
    "is_sqlite",
    "migrate",
    "sha256_hex",
]


class Store:
    """The store's areas over one engine, sharing one :class:`Database`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: The one transaction helper (``store.db.transaction()``) for every area.
        self.db = Database(engine)
        self.journal = Journal(self.db)
        self.idempotency = IdempotencyKeys(self.db)
        self.outbox = Outbox(self.db, self.journal, self.idempotency)
        self.inbox = Inbox(self.db, self.journal)
        self.calendar = CalendarStore(self.db)
        self.audit = AuditLog(self.db)
        self.usage = UsageCounts(self.db)
        self.eservices = EServiceStore(self.db)
        self.indicators = IndicatorStore(self.db, self.journal, self.audit)
