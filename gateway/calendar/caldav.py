"""A small CalDAV client (RFC 4791 over WebDAV, RFC 4918) on httpx, with ETags.

Why not the ``caldav`` package: it brings ``niquests`` and ``urllib3-future``, which installs
itself as ``urllib3`` under requests and zeep, the HTTP stack of every other channel. What the
gateway needs is a handful of requests with exact control over ``If-Match`` and
``If-None-Match``: PROPFIND (ETags of a collection), MKCALENDAR, GET, PUT, DELETE and the
free-busy-query REPORT. WebDAV answers are parsed by the gateway's hardened XML parser.

Errors are mapped here, at the boundary: connection errors, timeouts and 5xx are
:class:`CalendarUnavailableError` (retryable), 412 is :class:`CalendarConflictError`, any
other 4xx :class:`CalendarRejectedError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urljoin, urlsplit

import httpx

from gateway.calendar.errors import (
    CalendarConflictError,
    CalendarRejectedError,
    CalendarUnavailableError,
)
from gateway.config import CalendarSettings
from gateway.errors import GatewayError
from gateway.xml import XmlLimits, parse_xml

__all__ = ["CalDAVClient", "Remote"]

_DAV = "{DAV:}"
_PROPFIND_ETAGS = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><d:resourcetype/></d:prop></d:propfind>'
)
_MKCALENDAR = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>'
    "<d:displayname>{name}</d:displayname>"
    '<c:supported-calendar-component-set><c:comp name="VEVENT"/>'
    "</c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>"
)
_FREEBUSY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<c:free-busy-query xmlns:c="urn:ietf:params:xml:ns:caldav">'
    '<c:time-range start="{start}" end="{end}"/></c:free-busy-query>'
)
#: WebDAV multistatus answers are small; a huge one is refused by the parser's limits.
_LIMITS = XmlLimits(max_bytes=32 * 1024 * 1024, max_elements=2_000_000)


@dataclass(frozen=True)
class Remote:
    """One object on the server: its href (path) and ETag."""

    href: str
    etag: str


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class CalDAVClient:
    """CalDAV requests against ``settings.url``; collections are paths under ``settings.home``."""

    def __init__(self, settings: CalendarSettings, *, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        self.base = settings.url.rstrip("/")
        self.home = "/" + settings.home.strip("/") + "/"
        self._http = httpx.Client(
            auth=(settings.username, settings.password.get_secret_value()),
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            transport=transport,
            # Keep-alive: a publishing run makes one request per changed object.
            limits=httpx.Limits(max_keepalive_connections=8, max_connections=16),
        )

    def close(self) -> None:
        """Release connections."""
        self._http.close()

    # -- paths -----------------------------------------------------------------------------

    def collection(self, name: str) -> str:
        """The path of collection ``name`` under our home (``/plus-gateway/room-1/``)."""
        return f"{self.home}{quote(name, safe='')}/"

    def object_href(self, collection: str, name: str) -> str:
        """The path of object ``name`` in ``collection``."""
        return f"{self.collection(collection)}{quote(name, safe='')}"

    # -- requests --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204, 207),
    ) -> httpx.Response:
        url = self.base + path
        try:
            response = self._http.request(method, url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise CalendarUnavailableError(
                f"calendar timed out on {method}", partner="calendar", operation=method
            ) from exc
        except httpx.HTTPError as exc:
            raise CalendarUnavailableError(
                f"calendar unreachable on {method}: {type(exc).__name__}",
                partner="calendar",
                operation=method,
            ) from exc
        status = response.status_code
        if status in ok:
            return response
        if status == 412:
            raise CalendarConflictError(
                f"{method} {path}: the object changed on the server (412)",
                partner="calendar",
                operation=method,
            )
        if status >= 500:
            raise CalendarUnavailableError(
                f"{method} {path}: HTTP {status}", partner="calendar", operation=method
            )
        raise CalendarRejectedError(
            f"{method} {path}: HTTP {status}", partner="calendar", operation=method
        )

    def ensure_collection(self, name: str, display: str | None = None) -> bool:
        """Create calendar collection ``name`` if it does not exist; True when created."""
        path = self.collection(name)
        response = self._request(
            "PROPFIND", path, body=_PROPFIND_ETAGS, headers={"Depth": "0"}, ok=(207, 404)
        )
        if response.status_code == 207:
            return False
        body = _MKCALENDAR.format(name=_escape(display or name)).encode()
        created = self._request("MKCALENDAR", path, body=body, ok=(201, 405, 409))
        if created.status_code == 409:
            # The home collection itself is missing (a fresh server, or a nested home).
            self._request("MKCOL", self.home, ok=(201, 405))
            created = self._request("MKCALENDAR", path, body=body, ok=(201, 405))
        return created.status_code == 201

    def list(self, name: str) -> dict[str, Remote] | None:
        """Objects of collection ``name`` by object name (the last path segment); None when
        the collection does not exist."""
        path = self.collection(name)
        response = self._request(
            "PROPFIND", path, body=_PROPFIND_ETAGS, headers={"Depth": "1"}, ok=(207, 404)
        )
        if response.status_code == 404:
            return None
        out: dict[str, Remote] = {}
        root = parse_xml(response.content, _LIMITS)
        for item in root.iter(f"{_DAV}response"):
            href = unquote(urlsplit((item.findtext(f"{_DAV}href") or "").strip()).path)
            if href.rstrip("/") == path.rstrip("/") or href.endswith("/"):
                continue  # the collection itself, or a sub-collection
            etag = item.findtext(f".//{_DAV}getetag") or ""
            out[href.rsplit("/", 1)[-1]] = Remote(href=href, etag=etag.strip())
        return out

    def get(self, href: str) -> tuple[bytes, str]:
        """The body and ETag of one object (CalendarRejectedError if it is gone)."""
        response = self._request("GET", quote(href, safe="/"), ok=(200,))
        return response.content, response.headers.get("etag", "")

    def put(self, href: str, body: bytes, *, etag: str | None = None, create: bool = False) -> str:
        """Write one object; returns its new ETag.

        ``etag``: only if the object is still that version (If-Match). ``create``: only if it
        does not exist yet (If-None-Match: *). Either way a 412 raises CalendarConflictError.
        """
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if etag:
            headers["If-Match"] = etag
        elif create:
            headers["If-None-Match"] = "*"
        response = self._request("PUT", quote(href, safe="/"), body=body, headers=headers)
        new = response.headers.get("etag")
        if new:
            return new
        # Servers may omit the ETag when they changed the body; ask for it.
        return self.etag(href) or ""

    def etag(self, href: str) -> str | None:
        """The current ETag of one object, or None if it does not exist."""
        response = self._request(
            "PROPFIND",
            quote(href, safe="/"),
            body=_PROPFIND_ETAGS,
            headers={"Depth": "0"},
            ok=(207, 404),
        )
        if response.status_code == 404:
            return None
        root = parse_xml(response.content, _LIMITS)
        value = root.findtext(f".//{_DAV}getetag")
        return value.strip() if value else None

    def delete(self, href: str, *, etag: str | None = None) -> bool:
        """Delete one object; False if it was already gone. A stale ``etag`` raises 412."""
        headers = {"If-Match": etag} if etag else {}
        response = self._request(
            "DELETE", quote(href, safe="/"), headers=headers, ok=(200, 204, 404)
        )
        return response.status_code != 404

    def free_busy(self, name: str, start: datetime, end: datetime) -> bytes:
        """The server's own VFREEBUSY of collection ``name`` (CalDAV free-busy-query REPORT)."""
        body = _FREEBUSY.format(start=_utc(start), end=_utc(end)).encode()
        response = self._request(
            "REPORT", self.collection(name), body=body, headers={"Depth": "1"}, ok=(200,)
        )
        return response.content

    def reachable(self) -> bool:
        """True when the server answers at our home collection."""
        try:
            self._request("PROPFIND", self.home, body=_PROPFIND_ETAGS, headers={"Depth": "0"})
        except GatewayError:
            return False
        return True

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on the server."""
        return urljoin(self.base + "/", path.lstrip("/"))


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
