"""The unified calendar (Vienotais kalendārs): VPD's availability out, meetings agreed both ways.

========================  ========================================================================
``ical.py``               iCalendar/iTIP objects we emit (deterministic, VTIMEZONE, busy not who)
                          and read (bounded)
``timezones.py``          local times in the spring gap or autumn fold; VTIMEZONE from zoneinfo
``recurrence.py``         bounded RRULE expansion in wall-clock time
``caldav.py``             the CalDAV client (httpx; ETags; errors mapped at the boundary)
``service.py``            resources, busy blocks, bookings and answers (the business rules)
``publish.py``            one publishing run, one poll of requests, the outbox transport (the
                          runs are scheduled jobs: schedules/calendar-*.yaml)
``api.py``                the local API routes under ``/v1/calendar``
``radicale.py``           the embedded CalDAV server (Radicale) for ``make run`` and the tests
========================  ========================================================================

:class:`Calendar` puts them together once per runtime. See docs/CALENDAR.md.
"""

from __future__ import annotations

from gateway.calendar.caldav import CalDAVClient
from gateway.calendar.errors import PARTNER
from gateway.calendar.publish import CalendarSync, CalendarTransport
from gateway.calendar.service import CalendarService
from gateway.config import Settings
from gateway.store import Store

__all__ = ["PARTNER", "Calendar"]


class Calendar:
    """Service, CalDAV client, sync and outbox transport of one runtime."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings.calendar
        self.client = CalDAVClient(settings.calendar)
        # Changes are found by the calendar-poll job from the store (changed_resources), on
        # whichever instance runs it, so nothing is told here.
        self.service = CalendarService(settings.calendar, store)
        self.sync = CalendarSync(
            self.service,
            self.client,
            rejected_prefix_bytes=settings.journal.rejected_prefix_bytes,
            rejected_retention_bytes=settings.journal.rejected_retention_bytes,
        )
        self.transport = CalendarTransport(self.client, settings.calendar.retry)

    def close(self) -> None:
        """Release connections."""
        self.client.close()
