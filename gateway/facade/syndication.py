"""The public list for other sites (VOL-36): an iCalendar feed and schema.org JSON-LD.

- iCalendar (RFC 5545, the ``icalendar`` library): one VEVENT per posting. A posting with a
  time spans it (a start alone is a one-hour event); one without (on demand) is an all-day
  event on its application deadline, so calendars show when to apply.
- JSON-LD: a schema.org ``ItemList`` of ``JobPosting`` with ``employmentType: VOLUNTEER`` (the
  type search engines and job boards read), ``validThrough`` the deadline,
  ``totalJobOpenings`` the volunteers needed, ``jobLocationType: TELECOMMUTE`` when digital.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from icalendar import Calendar, Event

__all__ = ["to_ical", "to_jsonld"]

_KIND_LABEL = {"regular": "Regular", "on_demand": "On demand", "one_off": "One-off"}


def _place(item: dict[str, Any]) -> str:
    place = item["place"]
    parts = [p for p in (place.get("city"), place.get("municipality")) if p]
    if place.get("digital"):
        parts.append("digital")
    return ", ".join(parts)


def to_ical(items: Iterable[dict[str, Any]], *, base_url: str, now: datetime) -> bytes:
    """The postings as a VCALENDAR (``items`` are :class:`OpportunityOut` dicts)."""
    host = urlsplit(base_url).hostname or "plus-gateway"
    cal = Calendar()
    cal.add("prodid", "-//plus-gateway//volunteer opportunities//LV")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "Brīvprātīgā darba iespējas / Volunteer opportunities")
    for item in items:
        event = Event()
        event.add("uid", f"opportunity-{item['id']}@{host}")
        event.add("dtstamp", now)
        starts = item["time"].get("starts_at")
        if starts is not None:
            event.add("dtstart", starts)
            event.add("dtend", item["time"].get("ends_at") or starts + timedelta(hours=1))
            event.add("summary", item["title"])
        else:
            day = item["deadline"].date()
            event.add("dtstart", day)
            event.add("dtend", day + timedelta(days=1))
            event.add("summary", f"{item['title']} (pieteikšanās līdz / apply by)")
        event.add("description", item["duties"])
        event.add("location", _place(item))
        event.add("url", item["url"])
        event.add("categories", [_KIND_LABEL[item["kind"]]])
        event.add("x-deadline", item["deadline"].isoformat())
        cal.add_component(event)
    return bytes(cal.to_ical())


def to_jsonld(items: Iterable[dict[str, Any]], *, list_url: str) -> dict[str, Any]:
    """The postings as a schema.org ItemList of JobPosting (employmentType VOLUNTEER)."""
    elements = []
    for position, item in enumerate(items, start=1):
        organiser = item["organiser"]
        posting: dict[str, Any] = {
            "@type": "JobPosting",
            "@id": item["url"],
            "url": item["url"],
            "title": item["title"],
            "description": item["duties"],
            "employmentType": "VOLUNTEER",
            "datePosted": item.get("created_at") or item["deadline"].isoformat(),
            "validThrough": item["deadline"].isoformat(),
            "totalJobOpenings": item["volunteers_needed"],
            "hiringOrganization": {
                "@type": "Organization",
                "name": organiser["name"],
                "identifier": organiser["id"],
                **({"email": organiser["email"]} if organiser.get("email") else {}),
                **({"telephone": organiser["phone"]} if organiser.get("phone") else {}),
                **({"sameAs": organiser["website"]} if organiser.get("website") else {}),
            },
        }
        place = item["place"]
        if place.get("city") or place.get("municipality"):
            posting["jobLocation"] = {
                "@type": "Place",
                "address": {
                    "@type": "PostalAddress",
                    "addressLocality": place.get("city") or place.get("municipality"),
                    **(
                        {"addressRegion": place["municipality"]}
                        if place.get("municipality")
                        else {}
                    ),
                    "addressCountry": "LV",
                },
            }
        if place.get("digital"):
            posting["jobLocationType"] = "TELECOMMUTE"
            posting["applicantLocationRequirements"] = {"@type": "Country", "name": "LV"}
        if item["skills"]:
            posting["skills"] = ", ".join(item["skills"])
        if item.get("desired_profile"):
            posting["qualifications"] = item["desired_profile"]
        if item.get("benefits"):
            posting["jobBenefits"] = item["benefits"]
        when = item["time"]
        if when.get("starts_at"):
            posting["jobStartDate"] = when["starts_at"].isoformat()
        if when.get("expected_hours") is not None:
            posting["workHours"] = f"{when['expected_hours']:g} h"
        elements.append({"@type": "ListItem", "position": position, "item": posting})
    return {
        "@context": "https://schema.org",
        "@type": "ItemList",
        "@id": list_url,
        "numberOfItems": len(elements),
        "itemListElement": elements,
    }
