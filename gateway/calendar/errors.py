"""Errors of the calendar, each with a stable code and the HTTP status PLUS sees.

They extend the gateway's hierarchy (:mod:`gateway.errors`), so delivery still decides by type::

    BadInputError
    └── CalendarInputError            CALENDAR_INVALID        422  bad data (PLUS or calendar)
        ├── ICalendarMalformedError   ICAL_MALFORMED          422  not parseable iCalendar
        ├── RecurrenceError           RRULE_UNSUPPORTED       422  a rule part we do not expand
        │   └── RecurrenceUnboundedError RRULE_UNBOUNDED     422  no end, or too many occurrences
        ├── LocalTimeError            LOCAL_TIME_NONEXISTENT / LOCAL_TIME_AMBIGUOUS  422
        └── UnknownResourceError      RESOURCE_UNKNOWN        404
    PermanentError
    └── BookingError                  (409 unless said otherwise)
        ├── UnknownBookingError       BOOKING_UNKNOWN         404
        ├── SlotBusyError             SLOT_BUSY               409  the slot is no longer free
        ├── BookingChangedError       BOOKING_CHANGED         409  answered an old SEQUENCE
        └── BookingStateError         BOOKING_STATE           409  not possible in this state
    PartnerUnavailableError
    └── CalendarUnavailableError      CALENDAR_UNAVAILABLE    503  down, 5xx, timeout
    RetryableError
    └── CalendarConflictError         CALDAV_PRECONDITION_FAILED   412 on If-Match/If-None-Match
    PartnerRejectedError
    └── CalendarRejectedError         CALENDAR_REJECTED       502  4xx from the CalDAV server

Messages never carry personal data: they name resources, bookings and rule parts, never
summaries, attendees or descriptions.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import (
    BadInputError,
    GatewayError,
    PartnerRejectedError,
    PartnerUnavailableError,
    PermanentError,
    RetryableError,
)

__all__ = [
    "PARTNER",
    "BookingChangedError",
    "BookingError",
    "BookingStateError",
    "CalendarConflictError",
    "CalendarInputError",
    "CalendarRejectedError",
    "CalendarUnavailableError",
    "ICalendarMalformedError",
    "LocalTimeError",
    "RecurrenceError",
    "RecurrenceUnboundedError",
    "SlotBusyError",
    "UnknownBookingError",
    "UnknownResourceError",
    "http_status",
]

#: The partner name of the calendar in the journal, inbox and outbox.
PARTNER = "calendar"


class CalendarInputError(BadInputError):
    """Calendar data (from PLUS or from the calendar side) that cannot be used as it is."""

    code = "CALENDAR_INVALID"
    status = 422

    def __init__(self, message: str, *, path: str = "", **kwargs: Any) -> None:
        details = kwargs.pop("details", None) or ([{"path": path, "message": message}])
        super().__init__(message, details=details, **kwargs)


class ICalendarMalformedError(CalendarInputError):
    """The bytes are not an iCalendar object we can read (RFC 5545 syntax or structure)."""

    code = "ICAL_MALFORMED"


class RecurrenceError(CalendarInputError):
    """A recurrence rule with parts the gateway does not expand (SECONDLY, BYSETPOS, ...)."""

    code = "RRULE_UNSUPPORTED"


class RecurrenceUnboundedError(RecurrenceError):
    """A recurrence that would expand without bound, or past the configured limits."""

    code = "RRULE_UNBOUNDED"


class LocalTimeError(CalendarInputError):
    """A local time that does not exist (spring gap) or exists twice (autumn fold)."""

    code = "LOCAL_TIME_NONEXISTENT"

    def __init__(self, message: str, *, ambiguous: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        if ambiguous:
            self.code = "LOCAL_TIME_AMBIGUOUS"


class UnknownResourceError(CalendarInputError):
    """No active resource with this id was declared by PLUS."""

    code = "RESOURCE_UNKNOWN"
    status = 404


class BookingError(PermanentError):
    """A booking answer that cannot be carried out as asked."""

    code = "BOOKING_ERROR"
    status = 409


class UnknownBookingError(BookingError):
    """No booking with this id."""

    code = "BOOKING_UNKNOWN"
    status = 404


class SlotBusyError(BookingError):
    """The slot overlaps a busy block or another booking of the same resource."""

    code = "SLOT_BUSY"


class BookingChangedError(BookingError):
    """The answer names a SEQUENCE the booking has moved past (the other side changed it)."""

    code = "BOOKING_CHANGED"


class BookingStateError(BookingError):
    """The booking's state does not allow this answer (e.g. confirming a cancelled one)."""

    code = "BOOKING_STATE"


class CalendarUnavailableError(PartnerUnavailableError):
    """The CalDAV server cannot be reached, timed out or answered 5xx."""

    code = "CALENDAR_UNAVAILABLE"
    status = 503


class CalendarConflictError(RetryableError):
    """412 Precondition Failed: the object changed on the server since we read its ETag."""

    code = "CALDAV_PRECONDITION_FAILED"
    status = 409


class CalendarRejectedError(PartnerRejectedError):
    """The CalDAV server refused the request (4xx other than 404 and 412)."""

    code = "CALENDAR_REJECTED"
    status = 502


def http_status(error: GatewayError) -> int:
    """The HTTP status of ``error`` on the calendar routes of the local API."""
    status = getattr(error, "status", None)
    if isinstance(status, int):
        return status
    if isinstance(error, BadInputError):
        return 422
    if error.retryable:
        return 503
    return 500
