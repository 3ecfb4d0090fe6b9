"""The volunteer facade over real HTTP: public list and syndication, organisations, imports,
applications (the last seat at once), hours, certificates with a PAdES seal, statistics,
erasure, and every kind of bad input with its status, code and field path.

One live gateway per module (tests only add to its store); tokens come from the development
issuer key made by ``keys init`` (the ``keys_dir`` fixture), verified like any issuer's.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import select, update

from gateway.facade.archive import archive_expired
from gateway.jobs import JobRunner, load_jobs
from gateway.store.facade.tables import certificates, hours, opportunities, volunteers
from tests.conftest import build_settings
from tests.integration.conftest import Live, running
from tests.integration.facade_support import (
    API,
    approved_application,
    bearer,
    error,
    make_org,
    make_volunteer,
    opportunity,
    post,
)

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n% attachment\n"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[Live]:
    settings = build_settings(tmp_path_factory.mktemp("facade"), keys_dir)
    with running(settings, sim=False, seed=False) as live:
        yield live


@pytest.fixture
def base(live: Live) -> str:
    return live.gateway


def _past(live: Live, opp_id: int) -> None:
    """Move a posting's deadline into the past (as if time had passed; no archiving run)."""
    with live.runtime.store.db.transaction() as conn:
        conn.execute(
            update(opportunities)
            .where(opportunities.c.id == opp_id)
            .values(deadline=datetime.now(UTC) - timedelta(minutes=1))
        )


def _seal_validates(live: Live, pdf: bytes) -> bool:
    """pyHanko's own validator, with the seal certificate as trust root."""
    status = validate_pdf_signature(
        PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures[0],
        ValidationContext(trust_roots=live.runtime.facade.seal.roots),  # type: ignore[union-attr]
    )
    return bool(status.bottom_line and status.intact and status.valid and status.trusted)


# -- public list and syndication -----------------------------------------------------------


def test_public_list_needs_no_login_and_has_every_listing_field(live: Live, base: str) -> None:
    org = make_org(live.http, base, live.settings, name="Teātris “Kāpnes”")
    posted = post(live.http, base, org, title="Gaismotājs izrādei", external_ref="light-1")
    r = live.http.get(f"{base}{API}/opportunities", params={"organisation": org.number})
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 1
    item = page["items"][0]
    assert item["id"] == posted["id"]
    for field in (
        "title",
        "place",
        "time",
        "duties",
        "deadline",
        "desired_profile",
        "volunteers_needed",
        "applied",
        "approved",
        "benefits",
        "kind",
        "organiser",
    ):
        assert item[field] is not None, field
    assert item["place"] == {"city": "Cēsis", "municipality": "Cēsu novads", "digital": False}
    assert item["time"]["expected_hours"] == 6
    assert item["organiser"]["name"] == "Teātris “Kāpnes”"
    assert item["organiser"]["email"] == "info@example.org"
    assert (item["applied"], item["approved"], item["seats_left"]) == (0, 0, 3)


def test_filters_sorting_and_pagination(live: Live, base: str) -> None:
    org = make_org(live.http, base, live.settings)
    now = datetime.now(UTC)
    post(
        live.http,
        base,
        org,
        title="Dārza darbi",
        kind="regular",
        skills=["Dārzkopība"],
        place={"city": "Valmiera", "municipality": "Valmieras novads"},
        deadline=(now + timedelta(days=3)).isoformat(),
    )
    post(
        live.http,
        base,
        org,
        title="Tulkošana tiešsaistē",
        kind="on_demand",
        place={"digital": True},
        starts_at=None,
        ends_at=None,
        skills=["Angļu valoda"],
        deadline=(now + timedelta(days=9)).isoformat(),
    )
    post(
        live.http,
        base,
        org,
        title="Ziemassvētku tirdziņš",
        kind="one_off",
        place={"city": "Valmiera", "municipality": "Valmieras novads"},
        starts_at=(now + timedelta(days=40)).isoformat(),
        ends_at=None,
        deadline=(now + timedelta(days=6)).isoformat(),
    )

    def titles(**params: Any) -> list[str]:
        r = live.http.get(
            f"{base}{API}/opportunities", params={"organisation": org.number, **params}
        )
        assert r.status_code == 200, r.text
        return [i["title"] for i in r.json()["items"]]

    assert titles() == ["Dārza darbi", "Ziemassvētku tirdziņš", "Tulkošana tiešsaistē"]
    assert titles(sort="-deadline")[0] == "Tulkošana tiešsaistē"
    assert titles(sort="title")[0] == "Dārza darbi"
    assert titles(municipality="valmieras NOVADS") == ["Dārza darbi", "Ziemassvētku tirdziņš"]
    assert titles(digital="true") == ["Tulkošana tiešsaistē"]
    assert titles(kind="regular") == ["Dārza darbi"]
    assert titles(skill="dārzkopība") == ["Dārza darbi"]
    assert titles(q="TIRDZIŅ") == ["Ziemassvētku tirdziņš"]
    day = (now + timedelta(days=40)).date().isoformat()
    assert titles(**{"from": day, "to": day}) == ["Ziemassvētku tirdziņš"]
    first = live.http.get(
        f"{base}{API}/opportunities", params={"organisation": org.number, "per_page": 2}
    ).json()
    second = live.http.get(
        f"{base}{API}/opportunities", params={"organisation": org.number, "per_page": 2, "page": 2}
    ).json()
    assert first["total"] == second["total"] == 3
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    bad = live.http.get(f"{base}{API}/opportunities", params={"per_page": 1000})
    assert error(bad)[:2] == (422, "REQUEST_INVALID")


def test_syndication_ical_and_jsonld(live: Live, base: str) -> None:
    org = make_org(live.http, base, live.settings)
    timed = post(live.http, base, org, title="Koncerta apsardze")
    undated = post(
        live.http,
        base,
        org,
        title="Zvanu centrs",
        kind="on_demand",
        starts_at=None,
        ends_at=None,
        place={"digital": True},
    )
    r = live.http.get(f"{base}{API}/opportunities.ics", params={"organisation": org.number})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    events = {str(e["summary"]): e for e in Calendar.from_ical(r.content).walk("VEVENT")}
    assert set(events) == {"Koncerta apsardze", "Zvanu centrs (pieteikšanās līdz / apply by)"}
    assert str(events["Koncerta apsardze"]["url"]).endswith(f"/opportunities/{timed['id']}")
    r = live.http.get(f"{base}{API}/opportunities.jsonld", params={"organisation": org.number})
    assert r.headers["content-type"].startswith("application/ld+json")
    doc = r.json()
    assert doc["@context"] == "https://schema.org" and doc["@type"] == "ItemList"
    postings = {e["item"]["title"]: e["item"] for e in doc["itemListElement"]}
    assert postings["Zvanu centrs"]["employmentType"] == "VOLUNTEER"
    assert postings["Zvanu centrs"]["jobLocationType"] == "TELECOMMUTE"
    assert postings["Koncerta apsardze"]["jobLocation"]["address"]["addressLocality"] == "Cēsis"
    assert postings["Koncerta apsardze"]["validThrough"]
    assert undated["id"] in {int(p["url"].rsplit("/", 1)[1]) for p in postings.values()}


def test_after_the_deadline_archived_unlisted_visible_to_organiser(live: Live, base: str) -> None:
    org = make_org(live.http, base, live.settings)
    opp = post(live.http, base, org)
    volunteer = make_volunteer(live.http, base, live.settings)
    _past(live, opp["id"])
    # Not listed even before the archiving run: the deadline is part of the query.
    listed = live.http.get(f"{base}{API}/opportunities", params={"organisation": org.number})
    assert listed.json()["total"] == 0
    late = live.http.post(
        f"{base}{API}/opportunities/{opp['id']}/applications", headers=volunteer.headers
    )
    assert error(late) == (409, "DEADLINE_PASSED", ["path.opportunity_id"])
    assert archive_expired(live.runtime.store) >= 1
    assert archive_expired(live.runtime.store) == 0  # idempotent
    public = live.http.get(f"{base}{API}/opportunities/{opp['id']}")
    assert error(public)[:2] == (404, "OPPORTUNITY_NOT_FOUND")
    own = live.http.get(f"{base}{API}/opportunities/{opp['id']}", headers=org.headers)
    assert own.status_code == 200 and own.json()["status"] == "archived"
    mine = live.http.get(
        f"{base}{API}/organisations/{org.number}/opportunities",
        params={"status": "archived"},
        headers=org.headers,
    )
    assert [o["id"] for o in mine.json()["items"]] == [opp["id"]]


def test_archive_job_archives_once_per_slot(live: Live, base: str) -> None:
    """The facade-archive job (schedules/facade-archive.yaml) archives, and two runners ticking
    the same slot run it once (the runs table), where each instance's loop used to run its own."""
    org = make_org(live.http, base, live.settings)
    opp = post(live.http, base, org)
    _past(live, opp["id"])
    specs = {"facade-archive": load_jobs(live.settings)["facade-archive"]}
    runners = [
        JobRunner(live.settings, live.runtime.store, specs=specs, owner=o, runtime=live.runtime)
        for o in ("a", "b")
    ]
    now = datetime.now(UTC)
    outcomes = [r.tick("facade-archive", now) for r in runners]
    ran = [o for o in outcomes if o is not None]
    assert len(ran) == 1 and ran[0].status == "succeeded", outcomes
    assert ran[0].result["archived"] >= 1
    status = live.runtime.facade.store.listings.opportunity(opp["id"])["status"]  # type: ignore[union-attr]
    assert status == "archived"


# -- tokens --------------------------------------------------------------------------------


def test_bad_tokens_get_401_with_stable_codes(live: Live, base: str, keys_dir: Path) -> None:
    url = f"{base}{API}/volunteers/me"
    cases = {
        "TOKEN_MISSING": {},
        "TOKEN_MALFORMED": {"Authorization": "Bearer not.a.jwt"},
        "TOKEN_EXPIRED": bearer(
            live.settings, "volunteer", now=datetime.now(UTC).timestamp() - 7200, lifetime=600
        ),
        "TOKEN_AUDIENCE": bearer(live.settings, "volunteer", audience="someone-else"),
        "TOKEN_ISSUER": bearer(live.settings, "volunteer", issuer="https://evil.example"),
        # Forged: signed by another key but naming the issuer's kid.
        "TOKEN_SIGNATURE": _forged(live, keys_dir),
        "TOKEN_ALGORITHM": _hmac_confusion(live, keys_dir),
    }
    for code, headers in cases.items():
        r = live.http.get(url, headers=headers)
        assert error(r) == (401, code, ["header.Authorization"]), (code, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
    analyst = bearer(live.settings, "policy_analyst")
    assert error(live.http.get(url, headers=analyst))[:2] == (403, "ROLE_REQUIRED")


def _forged(live: Live, keys_dir: Path) -> dict[str, str]:
    import jwt

    from gateway.facade.auth import jwk_of
    from gateway.signing.keys import load_certificates, load_private_key

    kid = jwk_of(load_certificates(keys_dir / "facade-issuer-cert.pem")[0].public_key())["kid"]
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": live.settings.facade.auth.issuer,
        "aud": live.settings.facade.auth.audience,
        "sub": "mallory",
        "roles": ["volunteer"],
        "iat": now,
        "exp": now + 600,
    }
    token = jwt.encode(
        claims, load_private_key(keys_dir / "intruder-key.pem"), "RS256", headers={"kid": kid}
    )
    return {"Authorization": f"Bearer {token}"}


def _hmac_confusion(live: Live, keys_dir: Path) -> dict[str, str]:
    """HS256 with the issuer's public certificate as the 'secret' (algorithm confusion)."""
    import hashlib as h
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(datetime.now(UTC).timestamp())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(
        json.dumps(
            {
                "iss": live.settings.facade.auth.issuer,
                "sub": "x",
                "aud": live.settings.facade.auth.audience,
                "roles": ["volunteer"],
                "iat": now,
                "exp": now + 60,
            }
        ).encode()
    )
    secret = (keys_dir / "facade-issuer-cert.pem").read_bytes()
    sig = b64(hmac.new(secret, f"{header}.{claims}".encode(), h.sha256).digest())
    return {"Authorization": f"Bearer {header}.{claims}.{sig}"}


# -- organisations -------------------------------------------------------------------------


def test_organisation_profile_and_another_organisations_opportunity(live: Live, base: str) -> None:
    mine = make_org(
        live.http,
        base,
        live.settings,
        goals="Kultūra visiem",
        contact_persons=[{"name": "Anna Ozola", "position": "Koordinatore"}],
        support={"training": True, "transport_compensation": True, "insurance": False},
        motivation={
            "benefits": ["Jaunas prasmes"],
            "testimonials": [{"author": "J.", "text": "Lieliski"}],
        },
        partners=[{"name": "Cēsu novada pašvaldība", "kind": "municipal"}],
        safety_policy="Instruktāža pirms katra pasākuma",
    )
    theirs = make_org(live.http, base, live.settings)
    profile = live.http.get(f"{base}{API}/organisations/{mine.number}").json()
    assert profile["support"]["transport_compensation"] is True
    assert profile["partners"][0]["kind"] == "municipal"
    opp = post(live.http, base, mine)
    body = opportunity(title="Pārņemts")
    # Another organisation in the path: 403; its posting under one's own number: 404.
    r = live.http.put(
        f"{base}{API}/organisations/{mine.number}/opportunities/{opp['id']}",
        json=body,
        headers=theirs.headers,
    )
    assert error(r) == (403, "ORGANISATION_FORBIDDEN", ["path.organisation_id"])
    r = live.http.put(
        f"{base}{API}/organisations/{theirs.number}/opportunities/{opp['id']}",
        json=body,
        headers=theirs.headers,
    )
    assert error(r) == (404, "OPPORTUNITY_NOT_FOUND", ["path.opportunity_id"])
    r = live.http.post(
        f"{base}{API}/organisations",
        headers=theirs.headers,
        json={**profile, "registration_number": "40000000000"},
    )
    assert error(r)[:2] == (422, "REQUEST_INVALID")  # profile echo carries id/created_at
    assert live.http.get(f"{base}{API}/opportunities/{opp['id']}").json()["title"] != "Pārņemts"


def test_bulk_import_csv_and_json_with_line_numbers(live: Live, base: str) -> None:
    org = make_org(live.http, base, live.settings)
    url = f"{base}{API}/organisations/{org.number}/opportunities/import"
    deadline = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0).isoformat()
    good = (
        "external_ref,title,city,municipality,digital,duties,deadline,skills,"
        "volunteers_needed,kind\n"
        "a-1,Sporta spēles,Ogre,Ogres novads,false,Tiesnesis,"
        f"{deadline},Sports;Tiesāšana,4,one_off\n"
        f'a-2,"Lasīšana, bērniem",,,true,"Lasīt\npriekšā",{deadline},,2,regular\n'
    )
    r = live.http.post(
        url, content=good.encode(), headers={**org.headers, "Content-Type": "text/csv"}
    )
    assert r.json() == {"created": 2, "updated": 0}, r.text
    again = live.http.post(
        url,
        content=good.replace("Tiesnesis", "Galvenais tiesnesis").encode(),
        headers={**org.headers, "Content-Type": "text/csv"},
    )
    assert again.json() == {"created": 0, "updated": 2}
    bad = (
        "title,duties,deadline,volunteers_needed,kind,city\n"
        f"Labs,Darbs,{deadline},1,one_off,Rīga\n"
        f"Bez vietas,Darbs,{deadline},1,one_off,\n"  # line 3: no place
        f'"Divas\nrindas",Darbs,nav-datums,0,sometimes,Rīga\n'  # lines 4-5: three bad fields
    )
    r = live.http.post(
        url, content=bad.encode(), headers={**org.headers, "Content-Type": "text/csv"}
    )
    status, code, paths = error(r)
    assert (status, code) == (422, "IMPORT_INVALID")
    assert "body.line[3].place" in paths
    assert {"body.line[4].deadline", "body.line[4].volunteers_needed", "body.line[4].kind"} <= set(
        paths
    )
    assert all(d["line"] in (3, 4) for d in r.json()["error"]["details"])
    items = [opportunity(external_ref="j-1"), opportunity(title="", external_ref="j-2")]
    text = json.dumps(items, indent=2, ensure_ascii=False)
    second_line = [n for n, line in enumerate(text.splitlines(), 1) if line == "  {"][1]
    r = live.http.post(
        url, content=text.encode(), headers={**org.headers, "Content-Type": "application/json"}
    )
    assert error(r)[:2] == (422, "IMPORT_INVALID")
    assert error(r)[2] == [f"body.line[{second_line}].title"]
    r = live.http.post(
        url, content=b"<xml/>", headers={**org.headers, "Content-Type": "application/xml"}
    )
    assert error(r) == (415, "IMPORT_MEDIA_TYPE", ["header.Content-Type"])
    r = live.http.post(
        url, content=b'[{"title": ', headers={**org.headers, "Content-Type": "application/json"}
    )
    assert error(r)[:2] == (422, "IMPORT_INVALID")
    exported = live.http.get(
        f"{base}{API}/organisations/{org.number}/opportunities.csv", headers=org.headers
    )
    assert exported.headers["content-type"].startswith("text/csv")
    assert "Galvenais tiesnesis" in exported.text
    # An export imports back unchanged (the formats are one).
    r = live.http.post(
        url, content=exported.content, headers={**org.headers, "Content-Type": "text/csv"}
    )
    assert r.json() == {"created": 0, "updated": 2}


# -- volunteers and applications -----------------------------------------------------------


def test_registration_both_ways_and_personal_code_validation(live: Live, base: str) -> None:
    anon = bearer(live.settings, "volunteer")
    r = live.http.post(
        f"{base}{API}/volunteers",
        headers=anon,
        json={"mode": "anonymous", "alias": "Pūce", "email": "a@b.lv"},
    )
    assert error(r)[:2] == (422, "REQUEST_INVALID")
    r = live.http.post(
        f"{base}{API}/volunteers", headers=anon, json={"mode": "anonymous", "alias": "Pūce"}
    )
    assert r.status_code == 201 and r.json()["first_name"] is None
    r = live.http.post(
        f"{base}{API}/volunteers", headers=anon, json={"mode": "anonymous", "alias": "Pūce"}
    )
    assert error(r)[:2] == (409, "ALREADY_REGISTERED")
    named = bearer(live.settings, "volunteer")
    person = {
        "mode": "identified",
        "alias": "Ilze",
        "first_name": "Ilze",
        "last_name": "Kalna",
        "email": "ilze@example.lv",
        "personal_code": "161175-19998",
    }
    r = live.http.post(f"{base}{API}/volunteers", headers=named, json=person)
    status, code, paths = error(r)
    assert (status, code, paths) == (422, "REQUEST_INVALID", ["body.personal_code"])
    assert "161175" not in r.text  # the refused code is not echoed
    r = live.http.post(
        f"{base}{API}/volunteers", headers=named, json={**person, "personal_code": "161175-19997"}
    )
    assert r.status_code == 201 and r.json()["personal_code"] == "161175-19997"


def test_two_last_seat_applications_at_once_exactly_one_wins(live: Live, base: str) -> None:
    org = make_org(live.http, base, live.settings)
    for _round in range(8):
        opp = post(live.http, base, org, volunteers_needed=2)
        first = make_volunteer(live.http, base, live.settings)
        r = live.http.post(
            f"{base}{API}/opportunities/{opp['id']}/applications", headers=first.headers
        )
        assert r.status_code == 201
        racers = [make_volunteer(live.http, base, live.settings) for _ in range(2)]
        barrier = threading.Barrier(2)
        results: list[tuple[int, str]] = []

        def apply(
            v: Any,
            opp_id: int = opp["id"],
            barrier: threading.Barrier = barrier,
            results: list[tuple[int, str]] = results,
        ) -> None:
            barrier.wait()
            resp = live.http.post(
                f"{base}{API}/opportunities/{opp_id}/applications", headers=v.headers
            )
            results.append((resp.status_code, resp.json().get("error", {}).get("code", "")))

        threads = [threading.Thread(target=apply, args=(v,)) for v in racers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [(201, ""), (409, "OPPORTUNITY_FULL")], results
        listed = live.http.get(f"{base}{API}/opportunities/{opp['id']}").json()
        assert (listed["applied"], listed["seats_left"]) == (2, 0)


def test_declined_or_withdrawn_frees_the_seat_and_messages_reach_anonymous(
    live: Live, base: str
) -> None:
    org = make_org(live.http, base, live.settings)
    opp = post(live.http, base, org, volunteers_needed=1)
    a, b = (make_volunteer(live.http, base, live.settings) for _ in range(2))
    r = live.http.post(f"{base}{API}/opportunities/{opp['id']}/applications", headers=a.headers)
    app_id = r.json()["id"]
    full = live.http.post(f"{base}{API}/opportunities/{opp['id']}/applications", headers=b.headers)
    assert error(full) == (409, "OPPORTUNITY_FULL", ["path.opportunity_id"])
    again = live.http.post(f"{base}{API}/opportunities/{opp['id']}/applications", headers=a.headers)
    assert error(again)[:2] == (409, "ALREADY_APPLIED")
    seen = live.http.get(
        f"{base}{API}/organisations/{org.number}/applications", headers=org.headers
    ).json()["items"][0]
    assert seen["volunteer"] == {
        "alias": "Kāds",
        "mode": "anonymous",
        "first_name": None,
        "last_name": None,
        "email": None,
        "phone": None,
    }
    sent = live.http.post(
        f"{base}{API}/applications/{app_id}/messages",
        headers=org.headers,
        json={"body": "Sveiki! Tiekamies pie ieejas 9:00."},
    )
    assert sent.status_code == 201 and sent.json()["sender"] == "organisation"
    thread = live.http.get(f"{base}{API}/applications/{app_id}/messages", headers=a.headers)
    assert [m["body"] for m in thread.json()["items"]] == ["Sveiki! Tiekamies pie ieejas 9:00."]
    other = live.http.get(f"{base}{API}/applications/{app_id}/messages", headers=b.headers)
    assert error(other)[:2] == (404, "APPLICATION_NOT_FOUND")
    declined = live.http.post(
        f"{base}{API}/applications/{app_id}/decline",
        headers=org.headers,
        json={"reason": "Pilns sastāvs"},
    )
    assert declined.json()["status"] == "declined"
    now_b = live.http.post(f"{base}{API}/opportunities/{opp['id']}/applications", headers=b.headers)
    assert now_b.status_code == 201


# -- hours ---------------------------------------------------------------------------------


def test_hours_reconciled_flagged_approved_final(live: Live, base: str) -> None:
    org = make_org(live.http, base, live.settings)
    opp = post(live.http, base, org)
    volunteer = make_volunteer(live.http, base, live.settings)
    app_id = approved_application(live.http, base, org, opp["id"], volunteer)
    day1, day2, day3 = (
        (datetime.now(UTC) - timedelta(days=n)).date().isoformat() for n in (3, 2, 1)
    )
    url = f"{base}{API}/applications/{app_id}/hours"
    never = live.http.post(f"{url}/{day3}/approve", headers=org.headers)
    assert error(never) == (422, "HOURS_NOT_LOGGED", ["path.work_date"])
    assert (
        live.http.put(f"{url}/{day1}", json={"hours": 4}, headers=volunteer.headers).json()["state"]
        == "volunteer_only"
    )
    assert (
        live.http.put(f"{url}/{day1}", json={"hours": 4}, headers=org.headers).json()["state"]
        == "matched"
    )
    live.http.put(f"{url}/{day2}", json={"hours": 5.5}, headers=volunteer.headers)
    disputed = live.http.put(f"{url}/{day2}", json={"hours": 5}, headers=org.headers).json()
    assert (disputed["state"], disputed["difference"]) == ("disputed", 0.5)
    r = live.http.post(f"{url}/{day2}/approve", headers=org.headers)
    assert error(r) == (409, "HOURS_DISPUTED", ["body.hours"])
    by_volunteer = live.http.post(f"{url}/{day1}/approve", headers=volunteer.headers)
    assert error(by_volunteer)[:2] == (403, "ROLE_REQUIRED")
    assert (
        live.http.post(f"{url}/{day1}/approve", headers=org.headers).json()["approved_hours"] == 4
    )
    settled = live.http.post(f"{url}/{day2}/approve", headers=org.headers, json={"hours": 5.25})
    assert settled.json()["approved_hours"] == 5.25
    final = live.http.put(f"{url}/{day1}", json={"hours": 8}, headers=volunteer.headers)
    assert error(final) == (409, "HOURS_FINAL", ["path.work_date"])
    twice = live.http.post(f"{url}/{day1}/approve", headers=org.headers)
    assert error(twice)[:2] == (409, "HOURS_FINAL")
    listed = live.http.get(url, headers=volunteer.headers).json()
    assert listed["approved_hours"] == 9.25
    future = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    r = live.http.put(f"{url}/{future}", json={"hours": 1}, headers=volunteer.headers)
    assert error(r) == (422, "HOURS_IN_FUTURE", ["path.work_date"])
    r = live.http.put(f"{url}/{day3}", json={"hours": 25}, headers=volunteer.headers)
    assert error(r) == (422, "REQUEST_INVALID", ["body.hours"])


# -- certificates --------------------------------------------------------------------------


def _worked(
    live: Live, base: str, field: str = "culture", **volunteer: Any
) -> tuple[Any, Any, int]:
    org = make_org(live.http, base, live.settings, field=field)
    opp = post(live.http, base, org)
    person = make_volunteer(live.http, base, live.settings, **volunteer)
    app_id = approved_application(live.http, base, org, opp["id"], person)
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    live.http.put(
        f"{base}{API}/applications/{app_id}/hours/{day}", json={"hours": 3}, headers=person.headers
    )
    live.http.post(f"{base}{API}/applications/{app_id}/hours/{day}/approve", headers=org.headers)
    return org, person, app_id


def test_certificate_sealed_validates_with_pyhanko_and_one_byte_fails(
    live: Live, base: str
) -> None:
    org, person, app_id = _worked(live, base)
    draft = live.http.post(
        f"{base}{API}/organisations/{org.number}/certificates",
        headers=org.headers,
        json={"application_id": app_id, "competences": ["Fotografēšana"]},
    )
    assert draft.status_code == 201 and draft.json()["status"] == "draft"
    cert_id = draft.json()["id"]
    attached = live.http.post(
        f"{base}{API}/certificates/{cert_id}/attachments",
        headers=person.headers,
        json={
            "filename": "foto.png",
            "media_type": "image/png",
            "content_base64": base64.b64encode(PNG).decode(),
        },
    )
    assert attached.status_code == 201, attached.text
    issued = live.http.post(f"{base}{API}/certificates/{cert_id}/approve", headers=org.headers)
    assert issued.status_code == 200, issued.text
    cert = issued.json()
    assert cert["status"] == "issued" and cert["hours"] == 3
    assert cert["verification_url"].endswith(f"/certificates/{cert['number']}/verify")
    pdf = live.http.get(f"{base}{API}/certificates/{cert_id}/pdf", headers=person.headers).content
    assert pdf.startswith(b"%PDF") and hashlib.sha256(pdf).hexdigest() == cert["pdf_sha256"]
    assert _seal_validates(live, pdf)
    for position in (len(pdf) // 4, len(pdf) // 2, len(pdf) - 200):
        altered = bytearray(pdf)
        altered[position] ^= 0x01
        assert not _seal_validates_or_false(live, bytes(altered)), position
    ok = live.http.get(
        f"{base}{API}/certificates/{cert['number']}/verify", params={"sha256": cert["pdf_sha256"]}
    ).json()
    assert ok["authentic"] is True and ok["unchanged"] is True and "personal" not in str(ok)
    other = live.http.get(
        f"{base}{API}/certificates/{cert['number']}/verify", params={"sha256": "0" * 64}
    ).json()
    assert other["unchanged"] is False
    copy = live.http.post(
        f"{base}{API}/certificates/verify", json={"pdf_base64": base64.b64encode(pdf).decode()}
    )
    assert copy.json()["number"] == cert["number"] and copy.json()["unchanged"] is True
    altered = bytearray(pdf)
    altered[len(pdf) // 2] ^= 0x01
    refused = live.http.post(
        f"{base}{API}/certificates/verify",
        json={"pdf_base64": base64.b64encode(bytes(altered)).decode()},
    )
    assert error(refused) == (422, "SEAL_INVALID", ["body.pdf_base64"])
    twice = live.http.post(f"{base}{API}/certificates/{cert_id}/approve", headers=org.headers)
    assert error(twice)[:2] == (409, "CERTIFICATE_STATE")
    late = live.http.post(
        f"{base}{API}/certificates/{cert_id}/attachments",
        headers=org.headers,
        json={
            "filename": "x.pdf",
            "media_type": "application/pdf",
            "content_base64": base64.b64encode(PDF).decode(),
        },
    )
    assert error(late)[:2] == (409, "CERTIFICATE_STATE")
    unknown = live.http.get(f"{base}{API}/certificates/BD-2026-999999/verify")
    assert error(unknown)[:2] == (404, "CERTIFICATE_NOT_FOUND")


def _seal_validates_or_false(live: Live, pdf: bytes) -> bool:
    try:
        return _seal_validates(live, pdf)
    except Exception:
        return False


def test_volunteer_drafts_organiser_returns_then_approves(live: Live, base: str) -> None:
    org, person, app_id = _worked(live, base)
    r = live.http.post(
        f"{base}{API}/volunteers/me/certificates",
        headers=person.headers,
        json={"application_id": app_id, "competences": ["Komunikācija"]},
    )
    assert r.status_code == 201 and r.json()["status"] == "submitted"
    cert_id = r.json()["id"]
    back = live.http.post(
        f"{base}{API}/certificates/{cert_id}/return",
        headers=org.headers,
        json={"reason": "Lūdzu, precizējiet kompetences"},
    )
    assert back.json()["status"] == "returned"
    assert back.json()["return_reason"] == "Lūdzu, precizējiet kompetences"
    not_yet = live.http.post(f"{base}{API}/certificates/{cert_id}/approve", headers=org.headers)
    assert error(not_yet)[:2] == (409, "CERTIFICATE_STATE")
    fixed = live.http.put(
        f"{base}{API}/certificates/{cert_id}",
        headers=person.headers,
        json={"competences": ["Komunikācija", "Pasākumu organizēšana"]},
    )
    assert fixed.json()["status"] == "submitted"
    by_self = live.http.post(f"{base}{API}/certificates/{cert_id}/approve", headers=person.headers)
    assert error(by_self)[:2] == (403, "ROLE_REQUIRED")
    issued = live.http.post(f"{base}{API}/certificates/{cert_id}/approve", headers=org.headers)
    assert issued.json()["status"] == "issued"
    stranger = make_org(live.http, base, live.settings)
    hidden = live.http.get(f"{base}{API}/certificates/{cert_id}", headers=stranger.headers)
    assert error(hidden)[:2] == (404, "CERTIFICATE_NOT_FOUND")


def test_attachment_limits(live: Live, base: str) -> None:
    org, _person, app_id = _worked(live, base)
    cert_id = live.http.post(
        f"{base}{API}/organisations/{org.number}/certificates",
        headers=org.headers,
        json={"application_id": app_id, "competences": ["X"]},
    ).json()["id"]
    url = f"{base}{API}/certificates/{cert_id}/attachments"
    limit = live.settings.facade.attachment_max_bytes
    big = base64.b64encode(PDF + b"0" * limit).decode()
    r = live.http.post(
        url,
        headers=org.headers,
        json={"filename": "big.pdf", "media_type": "application/pdf", "content_base64": big},
    )
    assert error(r) == (413, "ATTACHMENT_TOO_LARGE", ["body.content_base64"])
    r = live.http.post(
        url,
        headers=org.headers,
        json={
            "filename": "a.txt",
            "media_type": "text/plain",
            "content_base64": base64.b64encode(b"hello").decode(),
        },
    )
    assert error(r) == (415, "ATTACHMENT_TYPE", ["body.media_type"])
    r = live.http.post(
        url,
        headers=org.headers,
        json={
            "filename": "fake.pdf",
            "media_type": "application/pdf",
            "content_base64": base64.b64encode(PNG).decode(),
        },
    )
    assert error(r) == (415, "ATTACHMENT_TYPE", ["body.content_base64"])
    r = live.http.post(
        url,
        headers=org.headers,
        json={
            "filename": "../etc/passwd",
            "media_type": "application/pdf",
            "content_base64": base64.b64encode(PDF).decode(),
        },
    )
    assert error(r) == (422, "REQUEST_INVALID", ["body.filename"])


def test_certificate_needs_approved_hours_and_application(live: Live, base: str) -> None:
    org = make_org(live.http, base, live.settings)
    opp = post(live.http, base, org)
    person = make_volunteer(live.http, base, live.settings)
    app_id = approved_application(live.http, base, org, opp["id"], person)
    cert_id = live.http.post(
        f"{base}{API}/organisations/{org.number}/certificates",
        headers=org.headers,
        json={"application_id": app_id, "competences": ["X"]},
    ).json()["id"]
    r = live.http.post(f"{base}{API}/certificates/{cert_id}/approve", headers=org.headers)
    assert error(r)[:2] == (422, "NO_APPROVED_HOURS")


# -- statistics ----------------------------------------------------------------------------


def test_statistics_cuts_and_suppression(live: Live, base: str) -> None:
    # The only organisation in its field: one volunteer there, a cell to suppress.
    org, person, _app = _worked(live, base, field="animal_welfare", mode="anonymous", alias="Stat")
    analyst = bearer(live.settings, "policy_analyst")
    r = live.http.get(f"{base}{API}/statistics", params={"by": "field"}, headers=analyst)
    assert r.status_code == 200
    cut = r.json()
    assert cut["cut"] == "policy" and cut["min_cell"] == 5
    cells = {c["key"]: c for c in cut["cells"]}
    small = cells["animal_welfare"]
    assert small["suppressed"] and small["volunteers"] is None and small["approved_hours"] is None
    assert small["opportunities"] >= 1  # about organisations, not people: published
    csv_text = live.http.get(
        f"{base}{API}/statistics.csv", params={"by": "kind"}, headers=analyst
    ).text
    assert csv_text.splitlines()[0] == (
        "kind,volunteers,organisations,opportunities,approved_hours,suppressed"
    )
    forbidden = live.http.get(f"{base}{API}/statistics", headers=org.headers)
    assert error(forbidden)[:2] == (403, "ROLE_REQUIRED")
    own = live.http.get(
        f"{base}{API}/organisations/{org.number}/statistics",
        params={"by": "month"},
        headers=org.headers,
    ).json()
    assert own["min_cell"] is None and own["total"]["approved_hours"] == 3
    assert own["total"]["volunteers"] == 1  # its own figures: not suppressed
    mine = live.http.get(f"{base}{API}/volunteers/me/statistics", headers=person.headers).json()
    assert mine["total"]["approved_hours"] == 3


# -- export, erasure and logs --------------------------------------------------------------


def test_export_and_erasure_keep_anonymised_hours_and_certificates(live: Live, base: str) -> None:
    person_data = {
        "mode": "identified",
        "alias": "Mārtiņš",
        "first_name": "Mārtiņš",
        "last_name": "Bērziņš",
        "email": "martins@example.lv",
        "phone": "+371 21234567",
        "personal_code": "161175-19997",
    }
    org, person, app_id = _worked(live, base, **person_data)
    live.http.post(
        f"{base}{API}/applications/{app_id}/messages",
        headers=person.headers,
        json={"body": "Mans tālrunis ir 21234567"},
    )
    cert_id = live.http.post(
        f"{base}{API}/organisations/{org.number}/certificates",
        headers=org.headers,
        json={"application_id": app_id, "competences": ["Darbs komandā"]},
    ).json()["id"]
    cert = live.http.post(f"{base}{API}/certificates/{cert_id}/approve", headers=org.headers).json()
    exported = live.http.get(f"{base}{API}/volunteers/me/export", headers=person.headers)
    assert exported.status_code == 200
    data = exported.json()
    assert data["volunteer"]["last_name"] == "Bērziņš" and len(data["hours"]) == 1
    assert data["messages"][0]["body"] == "Mans tālrunis ir 21234567"
    analyst = bearer(live.settings, "policy_analyst")
    before = live.http.get(f"{base}{API}/statistics", headers=analyst).json()["total"]

    erased = live.http.delete(f"{base}{API}/volunteers/me", headers=person.headers)
    assert erased.json() == {"erased": True, "kept_hours": 1, "kept_certificates": 1}
    gone = live.http.get(f"{base}{API}/volunteers/me", headers=person.headers)
    assert error(gone)[:2] == (404, "VOLUNTEER_NOT_REGISTERED")
    with live.runtime.store.db.connect() as conn:
        row = conn.execute(select(volunteers).where(volunteers.c.id == person.id)).mappings().one()
        kept_hours = conn.execute(select(hours.c.approved_minutes, hours.c.volunteer_note)).all()
        pdf = conn.execute(
            select(certificates.c.pdf).where(certificates.c.id == cert_id)
        ).scalar_one()
    assert row["mode"] == "erased" and row["subject"] is None
    assert all(
        row[k] is None for k in ("first_name", "last_name", "email", "phone", "personal_code")
    )
    assert (180, None) in [tuple(h) for h in kept_hours]
    assert pdf is None
    after = live.http.get(f"{base}{API}/statistics", headers=analyst).json()["total"]
    assert after["opportunities"] == before["opportunities"]
    if before["approved_hours"] is not None:
        assert after["approved_hours"] == before["approved_hours"]
    check = live.http.get(
        f"{base}{API}/certificates/{cert['number']}/verify", params={"sha256": cert["pdf_sha256"]}
    ).json()
    assert check["status"] == "holder_erased" and check["unchanged"] is True
    thread = live.http.get(f"{base}{API}/applications/{app_id}/messages", headers=org.headers)
    assert thread.json()["items"] == []


def test_personal_data_never_reaches_the_logs(
    live: Live, base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.logging import configure_logging

    configure_logging("production", "DEBUG")
    secrets = {
        "first_name": "Žanete",
        "last_name": "Ķirsone",
        "email": "zanete@example.lv",
        "phone": "+371 26543210",
        "personal_code": "161175-19997",
    }
    org, person, app_id = _worked(live, base, mode="identified", alias="Žž", **secrets)
    live.http.post(
        f"{base}{API}/applications/{app_id}/messages",
        headers=org.headers,
        json={"body": "Slepena ziņa Žanetei"},
    )
    cert_id = live.http.post(
        f"{base}{API}/organisations/{org.number}/certificates",
        headers=org.headers,
        json={"application_id": app_id, "competences": ["Empātija"]},
    ).json()["id"]
    live.http.post(f"{base}{API}/certificates/{cert_id}/approve", headers=org.headers)
    # Refusals too: a bad code, a bad token.
    live.http.post(
        f"{base}{API}/volunteers",
        headers=bearer(live.settings, "volunteer"),
        json={**secrets, "mode": "identified", "alias": "x", "personal_code": "161175-19998"},
    )
    live.http.get(f"{base}{API}/volunteers/me/export", headers=person.headers)
    live.http.delete(f"{base}{API}/volunteers/me", headers=person.headers)
    out = capsys.readouterr()
    logs = out.out + out.err
    assert "certificate issued" in logs  # the log was captured
    for value in [*secrets.values(), "161175-19998", "Slepena ziņa"]:
        assert value not in logs, value
