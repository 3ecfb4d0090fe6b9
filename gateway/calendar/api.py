"""``/v1/calendar``: PLUS declares resources and busy times, answers and proposes bookings.

Booking requests from the calendar side reach PLUS through the inbox (``/v1/inbox``, message
types ``booking_request``, ``booking_cancelled``, ``booking_reply``, ``booking_counter``,
``booking_declinecounter``); PLUS answers here, naming the booking's ``sequence`` it saw.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gateway.calendar import Calendar
from gateway.calendar.errors import CalendarInputError, http_status
from gateway.calendar.ical import freebusy_object
from gateway.calendar.service import BusyBlock, Slot, WorkingHours
from gateway.calendar.timezones import aware, zone
from gateway.errors import GatewayError
from gateway.store.schema import utcnow

__all__ = ["create_calendar_router"]

_ID = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_ERRORS: dict[int | str, dict[str, Any]] = {}


def _plain(value: str) -> str:
    # Text that goes into iCalendar: no control characters but tab and line breaks.
    if any(
        (ord(c) < 32 and c not in "\t\r\n") or 0xD800 <= ord(c) <= 0xDFFF or c in "\ufffe\uffff"
        for c in value
    ):
        raise ValueError("contains a control character")
    return value


def _sane(value: datetime) -> datetime:
    # Far years overflow zone arithmetic; nothing here is planned that far.
    if not 2000 <= value.year <= 2100:
        raise ValueError("year must be between 2000 and 2100")
    return value


Text = Annotated[str, AfterValidator(_plain)]
When = Annotated[datetime, AfterValidator(_sane)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HoursIn(_In):
    """Opening hours on one weekday."""

    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    opens: time = Field(description="Local time, e.g. 09:00")
    closes: time = Field(description="Local time, after opens")


class ResourceIn(_In):
    """A resource PLUS declares. ``label`` and ``location`` are **published**."""

    kind: Literal["room", "mediator", "officer"]
    label: Text = Field(
        min_length=1,
        max_length=200,
        description="Public label ('Mediation room 2', 'Mediator M-014'); never a client's name",
    )
    location: Text | None = Field(None, max_length=200)
    time_zone: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+/-]{0,63}$")
    working_hours: list[HoursIn] = Field(default_factory=list, max_length=50)


class ResourceOut(BaseModel):
    """A declared resource."""

    id: str
    kind: str
    label: str
    location: str | None
    time_zone: str
    working_hours: list[list[Any]]
    active: bool
    address: str = Field(description="Its calendar user address (ATTENDEE in booking requests)")
    collection: str = Field(description="Its calendar collection on the CalDAV server")
    updated_at: datetime
    changed: bool | None = None


class BusyIn(_In):
    """A busy block; times with an offset, or local in the resource's zone."""

    id: str = Field(pattern=_ID)
    start: When
    end: When
    rrule: str | None = Field(None, max_length=500, pattern=r"^[A-Za-z0-9=;,:+-]*$")


class BusySetIn(_In):
    """Every busy block of a resource (replaces the set)."""

    blocks: list[BusyIn] = Field(max_length=5000)


class BusyCounts(BaseModel):
    """What replacing the set changed."""

    added: int
    changed: int
    removed: int
    unchanged: int


class BusyOut(BaseModel):
    """A stored busy block (UTC)."""

    busy_id: str
    start: datetime
    end: datetime
    rrule: str | None


class Reason(BaseModel):
    """Why a booking was refused."""

    code: str
    message: str


class BookingOut(BaseModel):
    """A meeting on the calendar (never the parties: those came in the inbox message)."""

    id: str
    uid: str
    origin: str = Field(description="calendar (they asked) | plus (we proposed)")
    status: str = Field(
        description="requested | confirmed | declined | countered | cancelled | refused | proposed"
    )
    sequence: int = Field(description="The iTIP SEQUENCE: name it when answering")
    start: datetime
    end: datetime
    time_zone: str
    rrule: str | None
    resources: list[str]
    organizer: str | None
    reason: Reason | None
    inbox_message_id: str | None
    created_at: datetime
    updated_at: datetime


class AnswerIn(_In):
    """An answer to a booking, at the SEQUENCE PLUS saw."""

    sequence: int = Field(ge=0, le=1_000_000)
    comment: Text | None = Field(None, max_length=500)


class CounterIn(AnswerIn):
    """Another slot to propose (not held until the organizer sends it again)."""

    start: When
    end: When
    rrule: str | None = Field(None, max_length=500, pattern=r"^[A-Za-z0-9=;,:+-]*$")


class ProposeIn(_In):
    """A meeting PLUS proposes: our resources, the slot, whom to invite (calendar addresses)."""

    resources: list[str] = Field(min_length=1, max_length=10)
    start: When
    end: When
    rrule: str | None = Field(None, max_length=500, pattern=r"^[A-Za-z0-9=;,:+-]*$")
    attendees: list[Annotated[str, Field(max_length=255, pattern=r"^(mailto|urn):[^\s]+$")]] = (
        Field(default_factory=list, max_length=50)
    )
    summary: Text | None = Field(None, max_length=200, description="Sent to the invitees only")
    comment: Text | None = Field(None, max_length=500)


class SyncOut(BaseModel):
    """One publishing run and one poll."""

    published: dict[str, Any]
    polled: dict[str, int]


class StatusOut(BaseModel):
    """The last runs and recent refusals."""

    enabled: bool
    url: str
    last_publish: dict[str, Any] | None
    last_poll: dict[str, Any] | None
    rejected: list[dict[str, Any]]


def _error(exc: GatewayError) -> JSONResponse:
    body = {"error": {**exc.as_dict(), "details": exc.details}}
    return JSONResponse(body, status_code=http_status(exc))


def _booking(row: dict[str, Any]) -> BookingOut:
    reason = (
        Reason(code=row["reason_code"], message=row["reason"] or "") if row["reason_code"] else None
    )
    return BookingOut(
        **{k: v for k, v in row.items() if k not in ("reason_code", "reason")}, reason=reason
    )


def create_calendar_router(calendar: Calendar) -> APIRouter:
    """The ``/v1/calendar`` routes over one :class:`~gateway.calendar.Calendar`."""
    from gateway.api.models import ErrorBody

    errors = {"model": ErrorBody}
    router = APIRouter(prefix="/v1/calendar", tags=["calendar"])
    service = calendar.service

    def resource_out(row: dict[str, Any], changed: bool | None = None) -> ResourceOut:
        return ResourceOut(
            **row,
            address=service.address(row["id"]),
            collection=calendar.client.url(calendar.client.collection(row["id"])),
            changed=changed,
        )

    @router.put(
        "/resources/{resource_id}",
        response_model=ResourceOut,
        responses={422: errors},
        summary="Declare or update a resource (room, mediator, officer's slots)",
    )
    def put_resource(resource_id: Annotated[str, Field(pattern=_ID)], body: ResourceIn) -> Any:
        try:
            row, changed = service.put_resource(
                resource_id,
                kind=body.kind,
                label=body.label,
                location=body.location,
                time_zone=body.time_zone,
                working_hours=[
                    WorkingHours(h.weekday, h.opens, h.closes) for h in body.working_hours
                ],
            )
        except GatewayError as exc:
            return _error(exc)
        return resource_out(row, changed)

    @router.get("/resources", response_model=list[ResourceOut], summary="Active resources")
    def list_resources() -> Any:
        return [resource_out(r) for r in service.area.resources()]

    @router.get(
        "/resources/{resource_id}",
        response_model=ResourceOut,
        responses={404: errors},
        summary="One active resource",
    )
    def get_resource(resource_id: str) -> Any:
        try:
            return resource_out(service.resource(resource_id))
        except GatewayError as exc:
            return _error(exc)

    @router.delete(
        "/resources/{resource_id}",
        response_model=ResourceOut,
        responses={404: errors},
        summary="Withdraw a resource (its calendar is emptied at the next publishing run)",
    )
    def delete_resource(resource_id: str) -> Any:
        try:
            return resource_out(service.deactivate(resource_id))
        except GatewayError as exc:
            return _error(exc)

    @router.put(
        "/resources/{resource_id}/busy",
        response_model=BusyCounts,
        responses={404: errors, 422: errors},
        summary="Replace the busy blocks of a resource",
    )
    def put_busy(resource_id: str, body: BusySetIn) -> Any:
        try:
            return service.replace_busy(
                resource_id, [BusyBlock(b.id, b.start, b.end, b.rrule) for b in body.blocks]
            )
        except GatewayError as exc:
            return _error(exc)

    @router.get(
        "/resources/{resource_id}/busy",
        response_model=list[BusyOut],
        responses={404: errors},
        summary="The busy blocks of a resource",
    )
    def get_busy(resource_id: str) -> Any:
        try:
            service.resource(resource_id)
        except GatewayError as exc:
            return _error(exc)
        return [BusyOut(**b) for b in service.area.busy(resource_id)]

    @router.get(
        "/freebusy",
        response_class=Response,
        responses={
            200: {
                "description": "text/calendar: one VFREEBUSY per resource, no personal data",
                "content": {"text/calendar": {"schema": {"type": "string"}}},
            },
            404: errors,
            422: errors,
        },
        summary="Free/busy export (RFC 5545 VFREEBUSY)",
    )
    def freebusy(
        start: Annotated[datetime | None, Query(alias="from")] = None,
        end: Annotated[datetime | None, Query(alias="to")] = None,
        resource: Annotated[list[str] | None, Query(max_length=100)] = None,
    ) -> Response:
        try:
            return Response(
                _freebusy(calendar, start, end, resource), media_type="text/calendar; charset=utf-8"
            )
        except GatewayError as exc:
            return _error(exc)

    @router.get(
        "/bookings", response_model=list[BookingOut], summary="Bookings, latest change first"
    )
    def list_bookings(
        status: Annotated[str | None, Query(max_length=16)] = None,
        resource: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> Any:
        return [
            _booking(b)
            for b in service.area.bookings(status=status, resource_id=resource, limit=limit)
        ]

    @router.get(
        "/bookings/{booking_id}",
        response_model=BookingOut,
        responses={404: errors},
        summary="One booking",
    )
    def get_booking(booking_id: str) -> Any:
        try:
            return _booking(service.booking(booking_id))
        except GatewayError as exc:
            return _error(exc)

    @router.post(
        "/bookings",
        response_model=BookingOut,
        status_code=201,
        responses={404: errors, 409: errors, 422: errors, 503: errors},
        summary="Propose a meeting (PLUS organises; REQUEST to the invitees)",
    )
    async def propose(body: ProposeIn) -> Any:
        try:
            row = await run_in_threadpool(
                service.propose,
                body.resources,
                Slot(body.start, body.end, body.rrule),
                body.attendees,
                summary=body.summary,
                comment=body.comment,
            )
        except GatewayError as exc:
            return _error(exc)
        return JSONResponse(_booking(row).model_dump(mode="json"), status_code=201)

    def answer_route(action: str, summary: str, model: type[AnswerIn]) -> None:
        async def answer(booking_id: str, body: Any) -> Any:
            try:
                if action == "counter":
                    assert isinstance(body, CounterIn)
                    row = await run_in_threadpool(
                        service.counter,
                        booking_id,
                        body.sequence,
                        Slot(body.start, body.end, body.rrule),
                        body.comment,
                    )
                else:
                    method = getattr(service, action)
                    row = await run_in_threadpool(method, booking_id, body.sequence, body.comment)
            except GatewayError as exc:
                return _error(exc)
            return _booking(row)

        answer.__annotations__["body"] = model
        router.add_api_route(
            f"/bookings/{{booking_id}}/{action}",
            answer,
            methods=["POST"],
            response_model=BookingOut,
            responses={404: errors, 409: errors, 422: errors, 503: errors},
            summary=summary,
            name=f"booking_{action}",
        )

    answer_route(
        "confirm", "Confirm a booking request (REPLY ACCEPTED); 409 SLOT_BUSY if taken", AnswerIn
    )
    answer_route(
        "decline", "Decline a request or withdraw a confirmation (REPLY DECLINED)", AnswerIn
    )
    answer_route("counter", "Propose another slot (iTIP COUNTER)", CounterIn)
    answer_route("cancel", "Cancel: CANCEL for our proposal, REPLY DECLINED for theirs", AnswerIn)

    @router.post(
        "/sync",
        response_model=SyncOut,
        responses={503: errors, 502: errors},
        summary="Publish availability and read booking requests now (one run of each)",
    )
    async def sync_now() -> Any:
        try:
            polled = await run_in_threadpool(calendar.sync.poll)
            published = await run_in_threadpool(calendar.sync.publish)
        except GatewayError as exc:
            return _error(exc)
        return SyncOut(published=published.as_dict(), polled=polled)

    @router.get("/status", response_model=StatusOut, summary="Last runs and recent refusals")
    def status() -> Any:
        return StatusOut(
            enabled=calendar.settings.enabled,
            url=calendar.client.url(calendar.client.home),
            last_publish=calendar.sync.last_publish,
            last_poll=calendar.sync.last_poll,
            rejected=[
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
                for r in service.area.intake(status="rejected", limit=20)
            ],
        )

    return router


def _freebusy(
    calendar: Calendar,
    start: datetime | None,
    end: datetime | None,
    resource_ids: list[str] | None,
) -> bytes:
    """The VFREEBUSY export of the resources (all active ones by default)."""
    service = calendar.service
    tz = service.default_tz
    now = utcnow()
    begin = aware(start, tz, path="from") if start else now
    finish = aware(end, tz, path="to") if end else begin + timedelta(days=31)
    if finish <= begin:
        raise CalendarInputError("'to' is not after 'from'", path="to")
    if finish - begin > timedelta(days=service.settings.horizon_days):
        raise CalendarInputError(f"at most {service.settings.horizon_days} days at once", path="to")
    if resource_ids:
        resources = [service.resource(r) for r in resource_ids]
    else:
        resources = service.area.resources()
    parts = []
    for resource in resources:
        rtz = zone(resource["time_zone"])
        busy = [
            (max(o["start"], begin), min(o["end"], finish))
            for o in service.area.occupancy(
                resource["id"], begin.astimezone(UTC), finish.astimezone(UTC)
            )
        ]
        parts.append(
            freebusy_object(
                uid=f"freebusy-{resource['id']}@plus-gateway",
                label=resource["label"],
                tz=rtz,
                start=begin,
                end=finish,
                stamp=now,
                busy=busy,
                unavailable=_closed(resource, rtz, begin, finish),
            )
        )
    return _join(parts)


def _closed(
    resource: dict[str, Any], tz: Any, begin: datetime, finish: datetime
) -> list[tuple[datetime, datetime]]:
    """Intervals outside working hours within [begin, finish) (none if no hours are set)."""
    from gateway.calendar.timezones import local_instant

    hours = resource["working_hours"]
    if not hours:
        return []
    opened = []
    day = begin.astimezone(tz).date() - timedelta(days=1)
    last = finish.astimezone(tz).date()
    while day <= last:
        for weekday, opens, closes in hours:
            if int(weekday) != day.weekday():
                continue
            try:
                opened.append(
                    (
                        local_instant(datetime.combine(day, time.fromisoformat(opens)), tz),
                        local_instant(datetime.combine(day, time.fromisoformat(closes)), tz),
                    )
                )
            except GatewayError:
                continue  # an hour inside the DST gap or fold: that day's opening is skipped
        day += timedelta(days=1)
    out, cursor = [], begin
    for open_at, close_at in sorted(opened):
        if open_at > cursor:
            out.append((cursor, min(open_at, finish)))
        cursor = max(cursor, close_at)
        if cursor >= finish:
            break
    if cursor < finish:
        out.append((cursor, finish))
    return [(s, e) for s, e in out if e > s]


def _join(parts: list[bytes]) -> bytes:
    """One VCALENDAR holding the components of several (VTIMEZONE once per zone)."""
    from icalendar import Calendar as ICal

    if not parts:
        from gateway.calendar.ical import PRODID

        empty = ICal()
        empty.add("prodid", PRODID)
        empty.add("version", "2.0")
        empty.add("method", "PUBLISH")
        return bytes(empty.to_ical())
    first = ICal.from_ical(parts[0])
    zones = {str(c.get("tzid")) for c in first.walk("VTIMEZONE")}
    for extra in parts[1:]:
        for component in ICal.from_ical(extra).subcomponents:
            if component.name == "VTIMEZONE":
                if str(component.get("tzid")) in zones:
                    continue
                zones.add(str(component.get("tzid")))
            first.add_component(component)
    return bytes(first.to_ical())
