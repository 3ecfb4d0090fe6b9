"""Helpers for the volunteer facade's integration tests: tokens, an organisation, postings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from gateway.config import Settings
from gateway.facade.auth import mint_token

API = "/v1/volunteering"


def org_number() -> str:
    """A fresh 11-digit registration number."""
    return f"4{uuid.uuid4().int % 10**10:010d}"


def bearer(
    settings: Settings,
    role: str,
    subject: str | None = None,
    organisation: str | None = None,
    **kwargs: Any,
) -> dict[str, str]:
    """An Authorization header with a token of the development issuer (or ``key_path``)."""
    token = mint_token(
        settings.facade.auth,
        subject=subject or f"{role}-{uuid.uuid4().hex[:8]}",
        roles=[role],
        organisation=organisation,
        key_path=kwargs.pop("key_path", Path(settings.paths.keys) / "facade-issuer-key.pem"),
        **kwargs,
    )
    return {"Authorization": f"Bearer {token}"}


def iso(when: datetime) -> str:
    """ISO 8601 with the zone, to the second."""
    return when.replace(microsecond=0).isoformat()


def opportunity(**over: Any) -> dict[str, Any]:
    """A valid posting body (deadline in two weeks), with overrides."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "title": "Fotogrāfs teātra festivālam",
        "place": {"city": "Cēsis", "municipality": "Cēsu novads"},
        "starts_at": iso(now + timedelta(days=30)),
        "ends_at": iso(now + timedelta(days=30, hours=6)),
        "expected_hours": 6,
        "duties": "Fotografēt izrādes un aizkulises",
        "deadline": iso(now + timedelta(days=14)),
        "desired_profile": "Pieredze ar fotokameru",
        "skills": ["Fotografēšana", "Attēlu apstrāde"],
        "volunteers_needed": 3,
        "benefits": "Bezmaksas ieeja, pusdienas",
        "kind": "one_off",
    }
    body.update(over)
    return body


@dataclass
class Org:
    """An organisation registered through the API, with its user's headers."""

    number: str
    headers: dict[str, str]


@dataclass
class Volunteer:
    """A volunteer registered through the API."""

    id: int
    headers: dict[str, str]


def make_org(http: httpx.Client, base: str, settings: Settings, **profile: Any) -> Org:
    """Register an organisation (its user's token names it)."""
    number = org_number()
    headers = bearer(settings, "organisation_user", organisation=number)
    body = {
        "registration_number": number,
        "name": profile.pop("name", f"Biedrība {number}"),
        "type": "association",
        "field": profile.pop("field", "culture"),
        "contacts": {"email": "info@example.org", "phone": "+371 29999999"},
        "website": "https://example.org",
        **profile,
    }
    r = http.post(f"{base}{API}/organisations", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return Org(number, headers)


def post(http: httpx.Client, base: str, org: Org, **over: Any) -> dict[str, Any]:
    """Publish a posting for ``org``."""
    r = http.post(
        f"{base}{API}/organisations/{org.number}/opportunities",
        json=opportunity(**over),
        headers=org.headers,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def make_volunteer(http: httpx.Client, base: str, settings: Settings, **body: Any) -> Volunteer:
    """Register a volunteer (anonymous unless ``body`` says otherwise)."""
    headers = bearer(settings, "volunteer")
    r = http.post(
        f"{base}{API}/volunteers",
        json=body or {"mode": "anonymous", "alias": "Kāds"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return Volunteer(r.json()["id"], headers)


def approved_application(
    http: httpx.Client, base: str, org: Org, opp_id: int, volunteer: Volunteer
) -> int:
    """Apply and have the organisation approve; returns the application id."""
    r = http.post(f"{base}{API}/opportunities/{opp_id}/applications", headers=volunteer.headers)
    assert r.status_code == 201, r.text
    app_id = int(r.json()["id"])
    r = http.post(f"{base}{API}/applications/{app_id}/approve", headers=org.headers)
    assert r.status_code == 200, r.text
    return app_id


def error(response: httpx.Response) -> tuple[int, str, list[str]]:
    """(status, code, detail paths) of an error answer."""
    body = response.json()["error"]
    return response.status_code, body["code"], [d["path"] for d in body["details"]]
