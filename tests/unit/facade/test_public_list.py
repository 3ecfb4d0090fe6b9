"""The public list's store side: the full-text path answers exactly what the LIKE filters
answer, the equality keys match case-insensitively like place_key did, the total is counted up
to a cap, migration 0008_facade_indexes fills existing rows (and goes back down), and every
write the list shows moves the list version the page cache watches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, insert, inspect, select, text

from gateway.store import Store, create_store_engine, migrate
from gateway.store.db import _MIGRATIONS
from gateway.store.facade import FacadeStore, ListQuery
from gateway.store.facade import listings as listings_module
from gateway.store.facade.listings import Listings, opportunity_columns
from gateway.store.facade.tables import FTS_TABLE, opportunities, organisations

ORG = "40000000001"
NOW = datetime.now(UTC)

TEXTS = [
    ("Festivāls Cēsīs", "Palīdzēt ar biļetēm; 100% brīvprātīgi", ["Pirmā palīdzība", "Vadīšana"]),
    ("Talka Rīgā", "Stādīt kokus, a_b kods", ["Dārzkopība"]),
    ("NOMETNE 1-1", 'Vadīt "citāts" nodarbības', ["Angļu valoda", "Vadīšana"]),
    ("Koncerts", "Žūrijas darbs, ŠŪT tērpus", ["Fotografēšana"]),
    ("Grāmatu svētki", "Straße und Fußweg", []),
    ("Tulkošana", "English to Latvian, digital", ["Angļu valoda"]),
]
PLACES = [
    {"city": "Cēsis", "municipality": "Cēsu novads"},
    {"city": "Rīga", "municipality": "Rīgas valstspilsēta"},
    {"digital": True},
]
QUERIES = [
    "fest",
    "FESTIVĀLS",
    "ivāl",
    "ž",
    "žū",
    "šūt",
    "100%",
    "a_b",
    "%",
    "_",
    '"citāts"',
    "nometne 1-1",
    "nometne 1-1 x",
    "rīga",
    "strasse",
    "fußweg",
    "xyz",
    "  ",
    "   ",
    " a ",
    "s   r",
    "angļu valoda",
]
SKILLS = ["Pirmā palīdzība", "pirmā", "VADĪŠANA", "angļu valoda", "nav", "|", "a|b"]


def _posting(n: int, **over: Any) -> dict[str, Any]:
    title, duties, skills = TEXTS[n % len(TEXTS)]
    starts = NOW + timedelta(days=30 + n)
    data: dict[str, Any] = {
        "external_ref": f"p-{n}",
        "title": f"{title} {n}",
        "place": PLACES[n % len(PLACES)],
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=3),
        "expected_hours": 3.0,
        "duties": duties,
        "deadline": NOW + timedelta(days=1 + n % 9, minutes=n),
        "desired_profile": None,
        "skills": skills,
        "volunteers_needed": 5,
        "benefits": None,
        "kind": ["regular", "on_demand", "one_off"][n % 3],
    }
    data.update(over)
    return data


def _profile(number: str = ORG) -> dict[str, Any]:
    return {
        "registration_number": number,
        "name": "Biedrība",
        "type": "association",
        "field": "culture",
        "contacts": {"email": "a@example.lv"},
    }


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path}/store.db")
    yield engine
    engine.dispose()


@pytest.fixture
def facade(engine: Engine) -> FacadeStore:
    migrate(engine)
    store = FacadeStore(Store(engine).db)
    store.listings.create_organisation(ORG, _profile())
    store.listings.import_many(ORG, [_posting(n) for n in range(40)])
    return store


def _ids(listings: Listings, query: ListQuery, cap: int = 0) -> tuple[list[int], int, bool]:
    rows, total, capped = listings.public_page(query, datetime.now(UTC), count_cap=cap)
    return [r["id"] for r in rows], total, capped


def _like_only(facade: FacadeStore) -> Listings:
    plain = Listings(facade.db)
    plain._fts = False  # as on a store without the full-text table
    return plain


def test_the_migration_made_the_full_text_index(facade: FacadeStore, engine: Engine) -> None:
    with engine.connect() as conn:
        assert facade.listings._has_fts(conn)
        names = {i["name"] for i in inspect(conn).get_indexes("vol_opportunities")}
    assert {
        "ix_vol_opportunities_municipality",
        "ix_vol_opportunities_city",
        "ix_vol_opportunities_kind",
        "ix_vol_opportunities_digital",
        "ix_vol_opportunities_organisation_listed",
        "ix_vol_opportunities_created",
        "ix_vol_opportunities_title",
        "ix_vol_opportunities_scan",
    } <= names


@pytest.mark.parametrize("selective", [listings_module.FTS_SELECTIVE, 3])
def test_text_and_skill_answers_are_the_like_answers(
    facade: FacadeStore, monkeypatch: pytest.MonkeyPatch, selective: int
) -> None:
    """Same ids, order and total with the full-text path as with the LIKE alone, also for
    short, wildcard-like, quoted and non-ASCII queries, with the index naming few or many."""
    monkeypatch.setattr(listings_module, "FTS_SELECTIVE", selective)
    plain = _like_only(facade)
    used = 0
    cases = [ListQuery(text=q) for q in QUERIES] + [ListQuery(skill=s) for s in SKILLS]
    cases += [
        ListQuery(text="a", skill="vadīšana", sort="title"),
        ListQuery(text="vad", skill="Vadīšana", per_page=2, page=2),
        ListQuery(text="fest", kind="regular", sort="-deadline"),
        ListQuery(skill="angļu valoda", digital=True, sort="-created"),
        ListQuery(text="koncerts", municipality="cēsu novads", sort="starts_at"),
    ]
    for query in cases:
        with facade.db.connect() as conn:
            if facade.listings._fts_candidates(conn, query) is not None:
                used += 1
        assert _ids(facade.listings, query) == _ids(plain, query), query
        assert _ids(facade.listings, query, cap=3) == _ids(plain, query, cap=3), query
    assert used >= 5  # the full-text path really answered some


def test_full_text_follows_updates_and_imports(facade: FacadeStore) -> None:
    opp = facade.listings.create_opportunity(ORG, _posting(100, title="Zvaigžņu vērošana"))
    assert _ids(facade.listings, ListQuery(text="zvaigžņu"))[0] == [opp["id"]]
    facade.listings.update_opportunity(ORG, opp["id"], _posting(100, title="Putnu vērošana"))
    assert _ids(facade.listings, ListQuery(text="zvaigžņu"))[0] == []
    assert _ids(facade.listings, ListQuery(text="putnu vēro"))[0] == [opp["id"]]
    facade.listings.import_many(ORG, [_posting(100, title="Mākoņu vērošana", skills=["Mākoņi"])])
    assert _ids(facade.listings, ListQuery(text="putnu"))[0] == []
    assert _ids(facade.listings, ListQuery(skill="MĀKOŅI"))[0] == [opp["id"]]
    with facade.db.connect() as conn:
        indexed = conn.execute(
            text(f"SELECT count(*) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :q"),
            {"q": 'search_text : "mākoņu"'},
        ).scalar_one()
    assert indexed == 1


def test_place_filters_are_case_insensitive_equality(facade: FacadeStore) -> None:
    cesis = _ids(facade.listings, ListQuery(municipality="CĒSU NOVADS"))
    assert cesis[1] == 14 and not cesis[2]
    assert _ids(facade.listings, ListQuery(city="cēsis"))[1] == 14
    assert _ids(facade.listings, ListQuery(city="Cēsu novads"))[1] == 0
    assert _ids(facade.listings, ListQuery(municipality="cēsu"))[1] == 0  # not a substring
    assert _ids(facade.listings, ListQuery(digital=True))[1] == 13
    assert _ids(facade.listings, ListQuery(digital=False))[1] == 27


def test_the_total_is_counted_up_to_the_cap(
    facade: FacadeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    listings = facade.listings
    assert _ids(listings, ListQuery(per_page=5), cap=0)[1:] == (40, False)
    assert _ids(listings, ListQuery(per_page=5), cap=10)[1:] == (10, True)
    # Beyond the cap the bound is the end of the page asked for, never less than it shows.
    assert _ids(listings, ListQuery(per_page=5, page=3), cap=10)[1:] == (15, True)
    assert _ids(listings, ListQuery(per_page=5, page=8), cap=10)[1:] == (40, False)
    assert _ids(listings, ListQuery(per_page=5, page=9), cap=10)[1:] == (40, False)
    assert _ids(listings, ListQuery(per_page=5), cap=40)[1:] == (40, False)
    assert _ids(listings, ListQuery(per_page=5), cap=39)[1:] == (39, True)
    assert _ids(listings, ListQuery(kind="regular", per_page=5), cap=10)[1:] == (10, True)
    assert _ids(listings, ListQuery(kind="regular", per_page=5), cap=20)[1:] == (14, False)

    # A page that is not full is the last one: its total needs no count.
    def no_count(*_args: Any) -> tuple[int, bool]:
        raise AssertionError("counted")

    monkeypatch.setattr(Listings, "_count", staticmethod(no_count))
    assert _ids(listings, ListQuery(per_page=30, page=2), cap=10)[1:] == (40, False)
    assert _ids(listings, ListQuery(text="xyz"), cap=10) == ([], 0, False)
    assert _ids(listings, ListQuery(kind="regular"), cap=10)[1:] == (14, False)


def test_writes_the_list_shows_move_the_list_version(facade: FacadeStore) -> None:
    version = facade.listings.version
    assert facade.people.version is version  # one counter per store, shared by the areas
    assert Listings(facade.db).version is version  # also the archiving loop's Listings

    def moves(action: Any) -> bool:
        before = version.value
        action()
        return version.value > before

    opp = facade.listings.create_opportunity(ORG, _posting(200))
    volunteer = facade.people.register("subject-1", {"mode": "anonymous", "alias": "Kāds"})
    app: dict[str, Any] = {}
    assert moves(lambda: facade.listings.update_opportunity(ORG, opp["id"], _posting(201)))
    assert moves(lambda: facade.listings.import_many(ORG, [_posting(202)]))
    assert moves(lambda: facade.listings.update_organisation(ORG, {**_profile(), "name": "B"}))
    assert moves(lambda: app.update(facade.people.apply(volunteer["id"], opp["id"], None, NOW)))
    assert moves(lambda: facade.people.decide(app["id"], ORG, True, None))
    assert moves(lambda: facade.people.withdraw(app["id"], volunteer["id"]))
    assert moves(lambda: facade.listings.archive_expired(NOW + timedelta(days=30)))
    assert not moves(lambda: facade.listings.archive_expired(NOW + timedelta(days=30)))


def _alembic(engine: Engine, action: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        getattr(command, action)(cfg, revision)
        if connection.in_transaction():
            connection.commit()


def test_migration_fills_existing_rows_and_goes_back(engine: Engine) -> None:
    migrate(engine, "0006_facade")
    rows = []
    for n in range(12):
        columns = opportunity_columns(_posting(n))
        del columns["municipality_key"], columns["city_key"]  # not in 0006_facade
        rows.append(
            {
                **columns,
                "organisation_id": ORG,
                "applied": 0,
                "approved": 0,
                "status": "published",
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
    with engine.begin() as conn:
        conn.execute(
            insert(organisations).values(
                id=ORG,
                name="B",
                type="association",
                field="culture",
                profile="{}",
                created_at=NOW,
                updated_at=NOW,
            )
        )
        # Columns with a server default only (the new keys) are left out of the INSERT.
        conn.execute(insert(opportunities), rows)
    migrate(engine)
    facade = FacadeStore(Store(engine).db)
    with engine.connect() as conn:
        keys = conn.execute(
            select(opportunities.c.municipality_key, opportunities.c.city_key).where(
                opportunities.c.external_ref == "p-1"
            )
        ).one()
    assert tuple(keys) == ("rīgas valstspilsēta", "rīga")
    assert _ids(facade.listings, ListQuery(municipality="Rīgas valstspilsēta"))[1] == 4
    assert _ids(facade.listings, ListQuery(text="talka rīgā")) == _ids(
        _like_only(facade), ListQuery(text="talka rīgā")
    )
    assert _ids(facade.listings, ListQuery(text="talka rīgā"))[1] == 2

    _alembic(engine, "downgrade", "0006_facade")
    with engine.connect() as conn:
        names = {c["name"] for c in inspect(conn).get_columns("vol_opportunities")}
        assert "municipality_key" not in names
        assert FTS_TABLE not in inspect(conn).get_table_names()
    _alembic(engine, "upgrade", "heads")
    fresh = FacadeStore(Store(engine).db)
    assert _ids(fresh.listings, ListQuery(text="talka rīgā"))[1] == 2
