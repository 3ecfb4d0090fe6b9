"""The public list over real HTTP with its page cache and capped total: a write through this
gateway is in the very next list page (JSON, iCalendar, JSON-LD), a change behind its back
waits for the page to expire, and ``total`` stops at the cap with ``total_capped``.

The gateway here keeps pages for 60 s and counts up to 3, so a page that changes at once
changed because of the write, not because it expired.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy import update

from gateway.facade.archive import archive_expired
from gateway.facade.models import OpportunityPage
from gateway.store.facade.tables import opportunities
from tests.conftest import build_settings
from tests.integration.conftest import Live, running
from tests.integration.facade_support import API, make_org, make_volunteer, opportunity, post

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[Live]:
    settings = build_settings(
        tmp_path_factory.mktemp("facade-list"),
        keys_dir,
        facade={"list_cache_seconds": 60, "list_count_cap": 3},
    )
    with running(settings, sim=False, seed=False) as live:
        yield live


def _list(live: Live, **params: Any) -> dict[str, Any]:
    r = live.http.get(f"{live.gateway}{API}/opportunities", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    OpportunityPage.model_validate(body)  # what the OpenAPI document promises
    return body


def _titles(live: Live, **params: Any) -> list[str]:
    return [i["title"] for i in _list(live, **params)["items"]]


def test_writes_here_show_at_once(live: Live) -> None:
    org = make_org(live.http, live.gateway, live.settings)
    pages = live.runtime.facade.pages  # type: ignore[union-attr]
    assert _titles(live, organisation=org.number) == []
    hits = pages.hits
    assert _titles(live, organisation=org.number) == []
    assert pages.hits == hits + 1  # the second read came from memory

    first = post(live.http, live.gateway, org, title="Pirmais", volunteers_needed=2)
    assert _titles(live, organisation=org.number) == ["Pirmais"]

    changed = live.http.put(
        f"{live.gateway}{API}/organisations/{org.number}/opportunities/{first['id']}",
        json=opportunity(title="Pirmais, labots", volunteers_needed=2),
        headers=org.headers,
    )
    assert changed.status_code == 200
    assert _titles(live, organisation=org.number) == ["Pirmais, labots"]

    volunteer = make_volunteer(live.http, live.gateway, live.settings)
    applied = live.http.post(
        f"{live.gateway}{API}/opportunities/{first['id']}/applications", headers=volunteer.headers
    )
    assert applied.status_code == 201
    item = _list(live, organisation=org.number)["items"][0]
    assert (item["applied"], item["seats_left"]) == (1, 1)

    app_id = applied.json()["id"]
    live.http.post(f"{live.gateway}{API}/applications/{app_id}/withdraw", headers=volunteer.headers)
    item = _list(live, organisation=org.number)["items"][0]
    assert (item["applied"], item["seats_left"]) == (0, 2)

    csv = "title,city,municipality,digital,duties,deadline,volunteers_needed,kind\n" + (
        f"Importēts,Cēsis,Cēsu novads,false,Darbi,"
        f"{(datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()},2,regular\n"
    )
    imported = live.http.post(
        f"{live.gateway}{API}/organisations/{org.number}/opportunities/import",
        content=csv.encode(),
        headers={**org.headers, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    assert _titles(live, organisation=org.number) == ["Importēts", "Pirmais, labots"]


def test_syndication_pages_follow_writes_too(live: Live) -> None:
    org = make_org(live.http, live.gateway, live.settings)
    url = f"{live.gateway}{API}/opportunities"
    params = {"organisation": org.number}
    post(live.http, live.gateway, org, title="Pirmais")
    assert "Pirmais" in live.http.get(f"{url}.ics", params=params).text
    assert "Pirmais" in live.http.get(f"{url}.jsonld", params=params).text
    post(live.http, live.gateway, org, title="Otrais")
    ics = live.http.get(f"{url}.ics", params=params)
    assert {str(e["summary"]) for e in Calendar.from_ical(ics.content).walk("VEVENT")} == {
        "Pirmais",
        "Otrais",
    }
    jsonld = live.http.get(f"{url}.jsonld", params=params)
    assert jsonld.headers["content-type"] == "application/ld+json"
    assert len(jsonld.json()["itemListElement"]) == 2


def test_a_change_behind_the_gateways_back_waits_for_expiry(live: Live) -> None:
    """What another instance's write looks like from here: the page stays until it expires
    (60 s in this module; 2 s by default), unless a write here voids it first."""
    org = make_org(live.http, live.gateway, live.settings)
    opp = post(live.http, live.gateway, org, title="Sākotnējais")
    assert _titles(live, organisation=org.number) == ["Sākotnējais"]
    with live.runtime.store.db.transaction() as conn:
        conn.execute(
            update(opportunities)
            .where(opportunities.c.id == opp["id"])
            .values(deadline=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert _titles(live, organisation=org.number) == ["Sākotnējais"]  # still the cached page
    # One posting is never listed past its deadline: one by id reads the store.
    one = live.http.get(f"{live.gateway}{API}/opportunities/{opp['id']}")
    assert one.status_code == 404
    assert archive_expired(live.runtime.store) >= 1  # a write here: the page goes
    assert _titles(live, organisation=org.number) == []


def test_total_counts_up_to_the_cap(live: Live) -> None:
    org = make_org(live.http, live.gateway, live.settings)
    for n in range(5):
        post(live.http, live.gateway, org, title=f"Nr. {n}")
    q = {"organisation": org.number}
    first = _list(live, **q, per_page=2)
    assert (first["total"], first["total_capped"], len(first["items"])) == (3, True, 2)
    # Past the cap, the bound is the end of the page asked for.
    second = _list(live, **q, per_page=2, page=2)
    assert (second["total"], second["total_capped"]) == (4, True)
    # The last page (not full) knows the exact total.
    last = _list(live, **q, per_page=2, page=3)
    assert (last["total"], last["total_capped"], len(last["items"])) == (5, False, 1)
    assert (_list(live, **q)["total"], _list(live, **q)["total_capped"]) == (5, False)
    few = _list(live, **q, q="nr. 1")
    assert (few["total"], few["total_capped"]) == (1, False)


def test_the_openapi_document_describes_the_capped_total(live: Live) -> None:
    doc = live.http.get(f"{live.gateway}/openapi.json").json()
    page = doc["components"]["schemas"]["OpportunityPage"]
    assert page["properties"]["total_capped"]["type"] == "boolean"
    assert "total" in page["required"] and "total_capped" not in page["required"]
    listed = doc["paths"]["/v1/volunteering/opportunities"]["get"]
    schema = listed["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/OpportunityPage")
