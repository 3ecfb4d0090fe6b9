"""Organisations and their opportunities: profiles, postings, the public list, imports and
archiving after the deadline.

The public list is read by everyone and often, so its query is built to stop early: each
equality filter (municipality, city, kind, digital, organisation) has an index in deadline
order, so the default page is an index range read of 20 entries; the text and skill filters
ask the SQLite full-text index (FTS5, trigram: substrings, like the LIKE it stands in for)
which postings can match when those are few, and keep the LIKE as the exact test; and the
total is counted only up to a cap (:meth:`Listings.public_page`). Migration
``0008_facade_indexes`` made the indexes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from gateway.facade.errors import ConflictError, NotFoundError
from gateway.store.db import Database
from gateway.store.facade.changes import list_version
from gateway.store.facade.tables import FTS_TABLE, opportunities, organisations
from gateway.store.schema import utcnow

__all__ = ["ListPage", "ListQuery", "Listings", "opportunity_columns"]

_O = opportunities.c

#: What a page reads: everything the view shows, not the derived filter keys and texts.
_PAGE_COLUMNS = [
    c
    for c in opportunities.c
    if c.name not in ("search_text", "skills_key", "place_key", "municipality_key", "city_key")
]

#: A text or skill filter whose full-text lookup names at most this many postings (of any
#: status) is answered from those ids; more, and the LIKE scan in page order stops sooner.
FTS_SELECTIVE = 1000

_FTS_PROBE = text(
    "SELECT rowid FROM vol_opportunities_fts WHERE vol_opportunities_fts MATCH :q LIMIT :n"
)
assert FTS_TABLE in str(_FTS_PROBE)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def opportunity_columns(data: dict[str, Any]) -> dict[str, Any]:
    """Row values of a validated opportunity (``OpportunityIn.model_dump()``)."""
    place = data["place"]
    skills = [s.strip() for s in data.get("skills") or [] if s.strip()]
    city, municipality = place.get("city"), place.get("municipality")
    search = " ".join(
        str(v)
        for v in (
            data["title"],
            data["duties"],
            data.get("desired_profile") or "",
            data.get("benefits") or "",
            city or "",
            municipality or "",
            " ".join(skills),
        )
    )
    return {
        "external_ref": data.get("external_ref"),
        "title": data["title"],
        "duties": data["duties"],
        "city": city,
        "municipality": municipality,
        "digital": bool(place.get("digital")),
        "starts_at": data.get("starts_at"),
        "ends_at": data.get("ends_at"),
        "expected_hours": data.get("expected_hours"),
        "deadline": data["deadline"],
        "desired_profile": data.get("desired_profile"),
        "skills": json.dumps(skills, ensure_ascii=False),
        # casefold(), not SQL lower(): SQLite's lower() leaves ā, š, ž ... as they are.
        "skills_key": "|" + "|".join(s.casefold() for s in skills) + "|",
        "volunteers_needed": data["volunteers_needed"],
        "benefits": data.get("benefits"),
        "kind": data["kind"],
        "search_text": search.casefold(),
        "place_key": f"|city:{(city or '').casefold()}|municipality:"
        f"{(municipality or '').casefold()}|",
        # The same keys as columns of their own, for the indexed equality filters.
        "municipality_key": (municipality or "").casefold(),
        "city_key": (city or "").casefold(),
    }


@dataclass(frozen=True)
class ListQuery:
    """Filters, order and page of the public list (all optional but the page)."""

    municipality: str | None = None
    city: str | None = None
    digital: bool | None = None
    kind: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    skill: str | None = None
    text: str | None = None
    organisation: str | None = None
    sort: str = "deadline"
    page: int = 1
    per_page: int = 20


_SORTS = {
    "deadline": (_O.deadline.asc(), _O.id.asc()),
    "-deadline": (_O.deadline.desc(), _O.id.desc()),
    # Postings without a start (on demand) go last either way.
    "starts_at": (_O.starts_at.is_(None), _O.starts_at.asc(), _O.id.asc()),
    "-created": (_O.created_at.desc(), _O.id.desc()),
    "title": (_O.title.asc(), _O.id.asc()),
}

#: Orders the public list offers.
SORTS = tuple(_SORTS)


class ListPage(NamedTuple):
    """A page of the public list: its rows, the total, and whether counting stopped at a cap
    (then at least ``total`` postings match)."""

    rows: list[dict[str, Any]]
    total: int
    capped: bool


def _fts_phrase(column: str, value: str) -> str:
    """An FTS5 column filter matching ``value`` as one literal phrase (quotes doubled)."""
    return f'{column} : "{value.replace(chr(34), chr(34) * 2)}"'


class Listings:
    """Organisations and opportunities over the shared :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: Bumped after every committed write the public list shows (caches watch it).
        self.version = list_version(db)
        self._fts: bool | None = None

    # -- organisations ----------------------------------------------------------------------

    def create_organisation(self, org_id: str, profile: dict[str, Any]) -> dict[str, Any]:
        """Register an organisation; 409 ORGANISATION_EXISTS if its number is taken."""
        now = utcnow()
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    insert(organisations).values(
                        id=org_id, **self._org_columns(profile), created_at=now, updated_at=now
                    )
                )
        except IntegrityError as exc:
            raise ConflictError(
                "ORGANISATION_EXISTS",
                "an organisation with this registration number exists",
                path="body.registration_number",
            ) from exc
        return self.organisation(org_id)

    def update_organisation(self, org_id: str, profile: dict[str, Any]) -> dict[str, Any]:
        """Replace an organisation's profile."""
        with self.db.transaction() as conn:
            done = conn.execute(
                update(organisations)
                .where(organisations.c.id == org_id)
                .values(**self._org_columns(profile), updated_at=utcnow())
            )
        self.version.bump()  # the organiser's name and contacts are on every listed posting
        if done.rowcount == 0:
            raise _org_not_found()
        return self.organisation(org_id)

    @staticmethod
    def _org_columns(profile: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": profile["name"],
            "type": profile["type"],
            "field": profile["field"],
            "municipality": profile.get("municipality"),
            "profile": json.dumps(profile, ensure_ascii=False, default=str),
        }

    def organisation(self, org_id: str) -> dict[str, Any]:
        """An organisation's row with its profile parsed; 404 when unknown."""
        with self.db.connect() as conn:
            row = (
                conn.execute(select(organisations).where(organisations.c.id == org_id))
                .mappings()
                .first()
            )
        if row is None:
            raise _org_not_found()
        return _org(row)

    def organisations_by_id(self, ids: Iterable[str], conn: Connection) -> dict[str, Any]:
        """Organisations keyed by id (for the list: one query per page)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = conn.execute(select(organisations).where(organisations.c.id.in_(wanted)))
        return {r["id"]: _org(r) for r in rows.mappings()}

    # -- opportunities ----------------------------------------------------------------------

    def create_opportunity(self, org_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Publish an opportunity of ``org_id``."""
        now = utcnow()
        try:
            with self.db.transaction() as conn:
                new_id = conn.execute(
                    insert(opportunities).values(
                        organisation_id=org_id,
                        **opportunity_columns(data),
                        applied=0,
                        approved=0,
                        status=_status_for(data["deadline"], now),
                        created_at=now,
                        updated_at=now,
                        archived_at=now if data["deadline"] <= now else None,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
        except IntegrityError as exc:
            raise ConflictError(
                "EXTERNAL_REF_EXISTS",
                "another opportunity of this organisation has this external_ref",
                path="body.external_ref",
            ) from exc
        self.version.bump()
        return self.opportunity(int(new_id))

    def update_opportunity(self, org_id: str, opp_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Replace an opportunity's content; the counters stay. A new deadline in the future
        publishes an archived posting again."""
        now = utcnow()
        with self.db.transaction() as conn:
            current = self._own(conn, org_id, opp_id)
            if data["volunteers_needed"] < current["applied"]:
                raise ConflictError(
                    "BELOW_APPLIED",
                    "volunteers_needed cannot be lower than the applications holding a seat",
                    path="body.volunteers_needed",
                )
            status = _status_for(data["deadline"], now)
            conn.execute(
                update(opportunities)
                .where(_O.id == opp_id)
                .values(
                    **opportunity_columns(data),
                    status=status,
                    archived_at=now if status == "archived" else None,
                    updated_at=now,
                )
            )
        self.version.bump()
        return self.opportunity(opp_id)

    @staticmethod
    def _own(conn: Connection, org_id: str, opp_id: int) -> dict[str, Any]:
        row = conn.execute(select(opportunities).where(_O.id == opp_id)).mappings().first()
        # Another organisation's posting is not revealed: the same 404 as a missing one.
        if row is None or row["organisation_id"] != org_id:
            raise opportunity_not_found()
        return dict(row)

    def opportunity(self, opp_id: int) -> dict[str, Any]:
        """One opportunity with its organisation; 404 when unknown."""
        with self.db.connect() as conn:
            row = conn.execute(select(opportunities).where(_O.id == opp_id)).mappings().first()
            if row is None:
                raise opportunity_not_found()
            orgs = self.organisations_by_id([row["organisation_id"]], conn)
        return {**row, "organisation": orgs[row["organisation_id"]]}

    def public_page(self, query: ListQuery, now: datetime, *, count_cap: int = 0) -> ListPage:
        """A page of the current opportunities and the number of all that match.

        Past their deadline postings are never listed, even before the archiving run has
        marked them: the deadline is part of the query, archiving makes it permanent.

        ``count_cap`` > 0: the total is counted up to ``count_cap`` matches or to the end of
        this page, whichever is further; beyond that the page says ``capped`` and the total
        is that bound ("1000+"). A page that is not full needs no count at all.
        """
        with self.db.connect() as conn:
            candidates = self._fts_candidates(conn, query)
            if candidates is not None and not candidates:
                return ListPage([], 0, False)
            conds = self._conditions(query, now, candidates)
            offset = (query.page - 1) * query.per_page
            rows = [
                dict(r)
                for r in conn.execute(
                    select(*_PAGE_COLUMNS)
                    .where(*conds)
                    .order_by(*_SORTS[query.sort])
                    .limit(query.per_page)
                    .offset(offset)
                ).mappings()
            ]
            if 0 < len(rows) < query.per_page or (not rows and offset == 0):
                # The last page: everything that matches is before it or on it.
                total, capped = offset + len(rows), False
            else:
                total, capped = self._count(conn, conds, query, count_cap)
            orgs = self.organisations_by_id((r["organisation_id"] for r in rows), conn)
        for r in rows:
            r["organisation"] = orgs[r["organisation_id"]]
        return ListPage(rows, total, capped)

    @staticmethod
    def _count(conn: Connection, conds: list[Any], query: ListQuery, cap: int) -> tuple[int, bool]:
        if cap <= 0:
            exact = conn.execute(select(func.count()).select_from(opportunities).where(*conds))
            return int(exact.scalar_one()), False
        bound = max(cap, query.page * query.per_page)
        # Counting stops at bound + 1 matches: enough to know there are more than the bound.
        found = select(_O.id).where(*conds).limit(bound + 1).subquery()
        n = int(conn.execute(select(func.count()).select_from(found)).scalar_one())
        return (bound, True) if n > bound else (n, False)

    def _has_fts(self, conn: Connection) -> bool:
        """Whether the full-text index exists (SQLite, made by 0008_facade_indexes)."""
        if self._fts is None:
            self._fts = conn.dialect.name == "sqlite" and (
                conn.execute(
                    text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
                    {"name": FTS_TABLE},
                ).first()
                is not None
            )
        return self._fts

    def _fts_candidates(self, conn: Connection, query: ListQuery) -> list[int] | None:
        """Ids of every posting that can match the text and skill filters, when the
        full-text index names at most :data:`FTS_SELECTIVE`; None: the LIKE filters alone.

        The trigram index matches substrings of three characters or more, as LIKE does, on
        the same case-folded columns: its answer is the LIKE's answer (or more, never less),
        and the LIKE conditions stay in the query as the exact test. PostgreSQL's planner can
        answer the LIKE itself from its trigram indexes (pg_trgm): this is SQLite's path only.
        """
        phrases = []
        if query.text and len(query.text.casefold()) >= 3:
            phrases.append(_fts_phrase("search_text", query.text.casefold()))
        if query.skill:
            phrases.append(_fts_phrase("skills_key", f"|{query.skill.casefold()}|"))
        if not phrases or not self._has_fts(conn):
            return None
        ids = [
            int(r[0])
            for r in conn.execute(
                _FTS_PROBE,
                {"q": " AND ".join(phrases), "n": FTS_SELECTIVE + 1},
            )
        ]
        return ids if len(ids) <= FTS_SELECTIVE else None

    @staticmethod
    def _conditions(query: ListQuery, now: datetime, ids: list[int] | None = None) -> list[Any]:
        """The WHERE of the public list; ``ids``: only these can match (the few that the
        full-text index named), looked up by primary key."""
        if ids is None:
            conds: list[Any] = [_O.status == "published"]
        else:
            # likely(status) is status; wrapped, it keeps SQLite from walking a status-led
            # index past thousands of other postings to find these few.
            conds = [func.likely(_O.status, type_=_O.status.type) == "published", _O.id.in_(ids)]
        conds.append(_O.deadline > now)
        if query.municipality:
            conds.append(_O.municipality_key == query.municipality.casefold())
        if query.city:
            conds.append(_O.city_key == query.city.casefold())
        if query.digital is not None:
            conds.append(_O.digital == query.digital)
        if query.kind:
            conds.append(_O.kind == query.kind)
        if query.date_from is not None:
            # The posting's time overlaps [from, to]; undated postings (on demand) do not.
            conds.append(
                or_(
                    _O.ends_at >= query.date_from,
                    and_(_O.ends_at.is_(None), _O.starts_at >= query.date_from),
                )
            )
        if query.date_to is not None:
            conds.append(_O.starts_at <= query.date_to)
        if query.skill:
            key = _like_escape(query.skill.casefold())
            conds.append(_O.skills_key.like(f"%|{key}|%", escape="\\"))
        if query.text:
            conds.append(
                _O.search_text.like(f"%{_like_escape(query.text.casefold())}%", escape="\\")
            )
        if query.organisation:
            conds.append(_O.organisation_id == query.organisation)
        return conds

    def of_organisation(self, org_id: str, status: str | None) -> list[dict[str, Any]]:
        """Every opportunity of one organisation (archived ones too), newest first."""
        conds = [_O.organisation_id == org_id]
        if status:
            conds.append(_O.status == status)
        with self.db.connect() as conn:
            rows = [
                dict(r)
                for r in conn.execute(
                    select(opportunities).where(*conds).order_by(_O.id.desc())
                ).mappings()
            ]
            orgs = self.organisations_by_id([org_id], conn)
        for r in rows:
            r["organisation"] = orgs.get(org_id)
        return rows

    def import_many(self, org_id: str, items: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Create or update (by ``external_ref``) many opportunities in one transaction."""
        now = utcnow()
        created = updated = 0
        with self.db.transaction() as conn:
            for data in items:
                columns = opportunity_columns(data)
                status = _status_for(data["deadline"], now)
                existing = None
                if data.get("external_ref"):
                    existing = (
                        conn.execute(
                            select(_O.id, _O.applied).where(
                                _O.organisation_id == org_id,
                                _O.external_ref == data["external_ref"],
                            )
                        )
                        .mappings()
                        .first()
                    )
                archived_at = now if status == "archived" else None
                if existing is None:
                    conn.execute(
                        insert(opportunities).values(
                            organisation_id=org_id,
                            **columns,
                            applied=0,
                            approved=0,
                            status=status,
                            archived_at=archived_at,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    created += 1
                else:
                    if data["volunteers_needed"] < existing["applied"]:
                        raise ConflictError(
                            "BELOW_APPLIED",
                            "volunteers_needed cannot be lower than the applications holding "
                            "a seat",
                            path="body",
                        )
                    conn.execute(
                        update(opportunities)
                        .where(_O.id == existing["id"])
                        .values(**columns, status=status, archived_at=archived_at, updated_at=now)
                    )
                    updated += 1
        self.version.bump()
        return {"created": created, "updated": updated}

    def archive_expired(self, now: datetime | None = None) -> int:
        """Archive every published posting whose deadline has passed; returns how many.

        Idempotent (a second run finds nothing), safe on several instances at once (one
        UPDATE), and cheap when there is nothing to do (the status/deadline index): the body
        of a scheduled job once the jobs area exists, run by a loop in ``serve`` until then.
        """
        at = now or utcnow()
        with self.db.transaction() as conn:
            done = conn.execute(
                update(opportunities)
                .where(_O.status == "published", _O.deadline <= at)
                .values(status="archived", archived_at=at, updated_at=at)
            )
        if done.rowcount:
            self.version.bump()
        return int(done.rowcount or 0)


def _status_for(deadline: datetime, now: datetime) -> str:
    return "published" if deadline > now else "archived"


def _org(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["profile"] = json.loads(out["profile"])
    return out


def _org_not_found() -> NotFoundError:
    return NotFoundError(
        "ORGANISATION_NOT_FOUND", "no such organisation", path="path.organisation_id"
    )


def opportunity_not_found() -> NotFoundError:
    """The 404 of an unknown opportunity (or one the caller may not see)."""
    return NotFoundError("OPPORTUNITY_NOT_FOUND", "no such opportunity", path="path.opportunity_id")
