"""Radicale on loopback, the gateway against it, and the calendar side as a CalDAV client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from icalendar import Calendar

from gateway.calendar.radicale import CALENDAR_SIDE, RadicaleServer
from gateway.config import Settings
from tests.conftest import build_settings, free_port
from tests.integration.conftest import Live, running

HOME = "/plus-gateway/"


def last_sunday(year: int, month: int) -> date:
    """The last Sunday of ``month`` (Europe's DST changes)."""
    day = date(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() - 6) % 7)


def next_last_sunday(month: int) -> date:
    """The next last Sunday of ``month`` at least two weeks ahead (tests stay in the horizon)."""
    today = datetime.now(UTC).date()
    year = today.year
    while last_sunday(year, month) < today + timedelta(days=14):
        year += 1
    return last_sunday(year, month)


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    """A real Radicale (from PyPI) on a free loopback port, for the module."""
    server = RadicaleServer(
        host="127.0.0.1",
        port=free_port(),
        storage=tmp_path_factory.mktemp("radicale"),
        username="plus-gateway",
        password="plus-gateway",
    ).start()
    yield server
    server.stop()


def calendar_settings(
    tmp: Path, keys_dir: Path, radicale: RadicaleServer, **extra: Any
) -> Settings:
    """Test settings whose calendar is ``radicale`` (a fresh home collection per call)."""
    home = f"/plus-gateway/t{uuid.uuid4().hex[:8]}-"
    return build_settings(
        tmp,
        keys_dir,
        calendar={
            "url": radicale.url,
            "home": "/plus-gateway/",
            "requests_collection": f"{home.strip('/').split('/')[-1]}requests",
            "replies_collection": f"{home.strip('/').split('/')[-1]}replies",
            "retry": {"base_delay": 0.05, "max_delay": 0.2, "max_attempts": 10_000},
            "server": {"port": radicale.port},
            **extra,
        },
    )


@dataclass
class Side:
    """The calendar side: an institution's account on the unified calendar (CalDAV)."""

    base: str
    requests: str
    replies: str
    http: httpx.Client

    def path(self, collection: str, name: str = "") -> str:
        """The path of ``name`` in ``collection`` under the gateway's home."""
        return f"{HOME}{collection}/{name}"

    def put_request(self, body: bytes, name: str | None = None) -> str:
        """Put an iTIP object into the requests collection; returns its name."""
        name = name or f"{uuid.uuid4().hex}.ics"
        response = self.http.put(
            self.base + self.path(self.requests, name),
            content=body,
            headers={"Content-Type": "text/calendar"},
        )
        assert response.status_code in (201, 204), response.text
        return name

    def objects(self, collection: str) -> list[Calendar]:
        """Every object in ``collection`` (parsed)."""
        return [Calendar.from_ical(raw) for raw in self.raw_objects(collection)]

    def raw_objects(self, collection: str) -> list[bytes]:
        """Every object in ``collection`` (bytes), via a calendar-query REPORT."""
        body = (
            '<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" '
            'xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><c:calendar-data/></d:prop>'
            '<c:filter><c:comp-filter name="VCALENDAR"/></c:filter></c:calendar-query>'
        )
        response = self.http.request(
            "REPORT",
            self.base + self.path(collection),
            content=body,
            headers={"Depth": "1", "Content-Type": "application/xml"},
        )
        if response.status_code == 404:
            return []
        assert response.status_code == 207, response.text
        from gateway.xml import XmlLimits, parse_xml

        root = parse_xml(response.content, XmlLimits(max_elements=1_000_000))
        return [
            (el.text or "").encode()
            for el in root.iter("{urn:ietf:params:xml:ns:caldav}calendar-data")
        ]

    def free_busy(self, collection: str, start: datetime, end: datetime) -> list[tuple[str, str]]:
        """Radicale's own free-busy-query: ``(FBTYPE, period)`` pairs in UTC."""
        body = (
            '<?xml version="1.0"?><c:free-busy-query xmlns:c="urn:ietf:params:xml:ns:caldav">'
            f'<c:time-range start="{start:%Y%m%dT%H%M%SZ}" end="{end:%Y%m%dT%H%M%SZ}"/>'
            "</c:free-busy-query>"
        )
        response = self.http.request(
            "REPORT", self.base + self.path(collection), content=body, headers={"Depth": "1"}
        )
        assert response.status_code == 200, response.text
        out = []
        for component in Calendar.from_ical(response.content).walk("VFREEBUSY"):
            values = component.get("freebusy") or []
            for value in values if isinstance(values, list) else [values]:
                kind = value.params.get("FBTYPE", "BUSY")
                for period in value.dt if isinstance(value.dt, list) else [value.dt]:
                    start_at, end_at = period[0], period[1]
                    if isinstance(end_at, timedelta):
                        end_at = start_at + end_at
                    out.append(
                        (
                            kind,
                            f"{start_at.astimezone(UTC):%Y%m%dT%H%M%SZ}/"
                            f"{end_at.astimezone(UTC):%Y%m%dT%H%M%SZ}",
                        )
                    )
        return sorted(out)


@dataclass
class CalLive:
    """The gateway (with its delivery worker) against Radicale, and the calendar side."""

    live: Live
    side: Side

    @property
    def http(self) -> httpx.Client:
        """The gateway's HTTP client."""
        return self.live.http

    def api(self, path: str) -> str:
        """A URL of the calendar API."""
        return f"{self.live.gateway}/v1/calendar{path}"

    def sync(self) -> dict[str, Any]:
        """One poll and one publishing run, through the API."""
        response = self.http.post(self.api("/sync"))
        assert response.status_code == 200, response.text
        return response.json()

    def inbox(self, message_type: str | None = None) -> list[dict[str, Any]]:
        """Inbox items from the calendar."""
        items = self.http.get(f"{self.live.gateway}/v1/inbox", params={"limit": 500}).json()
        return [
            i
            for i in items["items"]
            if i["institution"] == "calendar"
            and (not message_type or i["message_type"] == message_type)
        ]

    def wait_delivered(self, booking_id: str, count: int = 1) -> list[dict[str, Any]]:
        """Wait until ``count`` answers about ``booking_id`` are delivered by the worker."""
        import time

        deadline = time.monotonic() + 15
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = [
                r
                for r in self.live.runtime.store.outbox.messages(partner="calendar", limit=None)
                if r["correlation_id"] == booking_id
            ]
            if len(rows) >= count and all(r["status"] == "delivered" for r in rows):
                return rows
            time.sleep(0.05)
        raise AssertionError(f"answers of {booking_id} not delivered: {rows}")


@pytest.fixture
def cal(tmp_path: Path, keys_dir: Path, radicale: RadicaleServer) -> Iterator[CalLive]:
    """A gateway against the module's Radicale, with its own request and reply collections."""
    settings = calendar_settings(tmp_path, keys_dir, radicale)
    side_http = httpx.Client(auth=CALENDAR_SIDE, timeout=20)
    with running(settings, seed=False) as live:
        side = Side(
            base=radicale.url,
            requests=settings.calendar.requests_collection,
            replies=settings.calendar.replies_collection,
            http=side_http,
        )
        cal = CalLive(live=live, side=side)
        # The gateway's first run creates its request and reply collections.
        cal.sync()
        try:
            yield cal
        finally:
            side_http.close()
