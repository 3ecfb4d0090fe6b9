"""A synthetic, deterministic population for the VISS simulator (no real person in it).

Every person has a valid personal code (old format with a correct check digit, or a new 32...
code), education documents, and, for some, disability decisions, employment and income, and a
social status. Some persons are unknown to some registries, so NOT_FOUND paths get exercised.
The same seed always gives the same population, so tests and benchmarks can pick persons.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from gateway.registries.personal_code import check_digit

__all__ = ["DEFAULT_SEED", "DEFAULT_SIZE", "Person", "Population"]

DEFAULT_SEED = 20260401
DEFAULT_SIZE = 1200
#: Dates are generated relative to this day, not today, so the population never drifts.
REFERENCE_DATE = dt.date(2026, 1, 1)

_SCHOOLS = (
    "Rīgas 1. vidusskola",
    "Daugavpils Valsts ģimnāzija",
    "Liepājas 5. vidusskola",
    "Jelgavas Spīdolas ģimnāzija",
    "Valmieras pamatskola",
    "Ventspils 4. vidusskola",
)
_VOCATIONAL = (
    ("Rīgas Valsts tehnikums", "Automehāniķis"),
    ("Rīgas Tūrisma un radošās industrijas tehnikums", "Pavārs"),
    ("Daugavpils Būvniecības tehnikums", "Būvdarbu vadītājs"),
    ("Liepājas Valsts tehnikums", "Elektriķis"),
    ("Jelgavas Tehnikums", "Datorsistēmu tehniķis"),
)
_HIGHER = (
    ("Latvijas Universitāte", "Bakalaura grāds", "Sociālo zinātņu bakalaurs tiesību zinātnē"),
    ("Rīgas Tehniskā universitāte", "Bakalaura grāds", "Inženierzinātņu bakalaurs"),
    ("Rīgas Stradiņa universitāte", "Maģistra grāds", "Sociālā darba maģistrs"),
    ("Daugavpils Universitāte", "Bakalaura grāds", "Skolotājs"),
)
_EMPLOYERS = (
    ("40003000001", "SIA Baltijas Būve"),
    ("40003000002", "AS Rīgas Satiksme"),
    ("40003000003", "SIA Zaļā Loģistika"),
    ("40003000004", "SIA Kurzemes Maiznīca"),
    ("90000000005", "Rīgas valstspilsētas pašvaldība"),
    ("40003000006", "SIA Latgales Mežs"),
)
_BENEFITS = (
    "Garantētā minimālā ienākuma pabalsts",
    "Mājokļa pabalsts",
    "Pabalsts krīzes situācijā",
    "Pabalsts ēdināšanai",
)
_SERVICES = (
    "Sociālā darbinieka konsultācijas",
    "Aprūpe mājās",
    "Dienas centrs",
    "Psihologa konsultācijas",
)
_IMPAIRMENTS = ("VISION", "HEARING", "MOBILITY", "MENTAL", "INTELLECTUAL", "INTERNAL_ORGANS")
_INCOME_FOR_IDLE = ("PENSION", "STATE_BENEFIT", "RENTAL", "CAPITAL", "OTHER")


@dataclass(frozen=True)
class Person:
    """One synthetic person and what each registry holds about them (None = unknown)."""

    personal_code: str
    birth_date: dt.date
    viis: list[dict[str, Any]] | None
    iis: list[dict[str, Any]] | None
    vid: dict[str, Any] | None
    rd: dict[str, Any] | None
    tags: frozenset[str] = field(default_factory=frozenset)

    def record(self, registry: str) -> dict[str, Any] | None:
        """The registry's fields for this person (mapping field names), or None if unknown."""
        value = getattr(self, registry)
        if value is None:
            return None
        if registry == "viis":
            return {"education": value}
        if registry == "iis":
            return {"disabilities": value}
        return dict(value)


def _iso(d: dt.date) -> str:
    return d.isoformat()


class Population:
    """``size`` persons generated from ``seed``; lookup by personal code."""

    def __init__(self, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self.persons: dict[str, Person] = {}
        while len(self.persons) < size:
            person = self._person()
            self.persons.setdefault(person.personal_code, person)
        self.codes = sorted(self.persons)

    def get(self, personal_code: str) -> Person | None:
        """The person with ``personal_code``, if any."""
        return self.persons.get(personal_code)

    def find(self, *tags: str) -> list[Person]:
        """Persons carrying every one of ``tags`` (e.g. "disability", "no_vid"), in code order."""
        wanted = set(tags)
        return [self.persons[c] for c in self.codes if wanted <= self.persons[c].tags]

    # -- generation ----------------------------------------------------------------------

    def _code(self, birth: dt.date) -> str:
        r = self._rng
        if r.random() < 0.08:
            return f"32{r.randrange(10_000):04d}-{r.randrange(100_000):05d}"
        century = {18: "0", 19: "1", 20: "2"}[birth.year // 100]
        while True:
            serial = f"{r.randrange(1000):03d}"
            first = f"{birth:%d%m}{birth.year % 100:02d}{century}{serial}"
            total = sum(
                w * int(d) for w, d in zip((1, 6, 3, 7, 9, 10, 5, 8, 4, 2), first, strict=True)
            )
            if (1101 - total) % 11 != 10:  # such codes are never issued
                return f"{first[:6]}-{first[6:]}{check_digit(first)}"

    def _date(self, start: dt.date, end: dt.date) -> dt.date:
        span = max((end - start).days, 1)
        return start + dt.timedelta(days=self._rng.randrange(span))

    def _person(self) -> Person:
        r = self._rng
        birth = self._date(dt.date(1950, 1, 1), dt.date(2007, 12, 31))
        code = self._code(birth)
        tags: set[str] = {"new_code"} if code.startswith("32") else set()
        education = self._education(birth)
        if r.random() < 0.05 or not education:
            education_out = None
            tags.add("no_viis")
        else:
            education_out = education
            tags.add("education")
            if len(education) >= 3:
                tags.add("several_documents")
            if any(e["level"] == "HIGHER" for e in education):
                tags.add("higher")
            if any(e["level"] == "VOCATIONAL" for e in education):
                tags.add("vocational")
        disability = self._disability(birth) if r.random() < 0.15 else None
        tags.add("disability" if disability else "no_iis")
        vid = None if r.random() < 0.08 else self._vid(birth)
        if vid is None:
            tags.add("no_vid")
        else:
            tags.add("employed" if vid["employed"] else "not_employed")
        rd = self._rd() if r.random() < 0.3 else None
        tags.add("social" if rd else "no_rd")
        return Person(code, birth, education_out, disability, vid, rd, frozenset(tags))

    def _education(self, birth: dt.date) -> list[dict[str, Any]]:
        r = self._rng
        out: list[dict[str, Any]] = []
        age = (REFERENCE_DATE - birth).days // 365

        def doc(year: int, **fields: Any) -> dict[str, Any]:
            issued = dt.date(min(year, REFERENCE_DATE.year - 1), 6, r.randint(10, 28))
            series = fields.pop("series", None)
            record = {**fields}
            record["document_number"] = f"{r.randrange(10**6):06d}"
            record["issue_date"] = _iso(issued)
            if series:
                record["document_series"] = series
            return record

        def ordered(record: dict[str, Any]) -> dict[str, Any]:
            keys = (
                "level",
                "education_type",
                "document_type",
                "issuing_institution",
                "document_series",
                "document_number",
                "issue_date",
                "programme_code",
                "qualification",
            )
            return {k: record[k] for k in keys if k in record}

        if age >= 16:
            out.append(
                doc(
                    birth.year + 16,
                    level="GENERAL",
                    education_type="Pamatizglītība",
                    document_type="Apliecība par pamatizglītību",
                    issuing_institution=r.choice(_SCHOOLS),
                    series="PA",
                    programme_code="21011111",
                )
            )
        if age >= 19 and r.random() < 0.7:
            out.append(
                doc(
                    birth.year + 19,
                    level="GENERAL",
                    education_type="Vispārējā vidējā izglītība",
                    document_type="Atestāts par vispārējo vidējo izglītību",
                    issuing_institution=r.choice(_SCHOOLS),
                    series="AA",
                    programme_code="31011011",
                )
            )
        if age >= 20 and r.random() < 0.4:
            school, qualification = r.choice(_VOCATIONAL)
            record = doc(
                birth.year + 20,
                level="VOCATIONAL",
                education_type="Profesionālā vidējā izglītība",
                document_type="Diploms par profesionālo vidējo izglītību",
                issuing_institution=school,
                series="PV",
                programme_code=f"3348{r.randrange(1000, 9999)}",
            )
            if r.random() < 0.9:  # "where recorded"
                record["qualification"] = qualification
            out.append(record)
        if age >= 23 and r.random() < 0.35:
            school, degree, qualification = r.choice(_HIGHER)
            out.append(
                doc(
                    birth.year + 23,
                    level="HIGHER",
                    education_type=degree,
                    document_type=f"{degree.split()[0]} diploms",
                    issuing_institution=school,
                    series="BD" if r.random() < 0.5 else None,
                    programme_code=f"4{r.randrange(3000000, 9999999)}",
                    qualification=qualification,
                )
            )
        return [ordered(e) for e in out]

    def _disability(self, birth: dt.date) -> list[dict[str, Any]]:
        r = self._rng
        out = []
        for _ in range(r.choice((1, 1, 2))):
            decided = self._date(
                max(birth + dt.timedelta(days=365), dt.date(2010, 1, 1)), REFERENCE_DATE
            )
            term: dict[str, Any] = {"valid_from": _iso(decided)}
            if r.random() < 0.7:
                term["valid_to"] = _iso(decided + dt.timedelta(days=365 * r.choice((1, 2, 5))))
            group = "CHILD" if (decided - birth).days < 18 * 365 else r.choice(("I", "II", "III"))
            out.append(
                {
                    "group": group,
                    "decision_date": _iso(decided),
                    "term": term,
                    "functional_impairments": sorted(r.sample(_IMPAIRMENTS, r.choice((1, 1, 2)))),
                }
            )
        return out

    def _vid(self, birth: dt.date) -> dict[str, Any]:
        r = self._rng
        employed = r.random() < 0.6
        out: dict[str, Any] = {"employed": employed}
        if employed:
            employers = []
            for reg, name in r.sample(_EMPLOYERS, r.choice((1, 1, 2))):
                employers.append(
                    {
                        "registration_number": reg,
                        "name": name,
                        "employed_from": _iso(self._date(dt.date(2015, 1, 1), REFERENCE_DATE)),
                    }
                )
            if r.random() < 0.3:
                ended = self._date(dt.date(2012, 1, 1), dt.date(2015, 1, 1))
                reg, name = r.choice(
                    [
                        e
                        for e in _EMPLOYERS
                        if e[0] not in {x["registration_number"] for x in employers}
                    ]
                )
                employers.insert(
                    0,
                    {
                        "registration_number": reg,
                        "name": name,
                        "employed_from": _iso(ended - dt.timedelta(days=400)),
                        "employed_to": _iso(ended),
                    },
                )
            out["employers"] = employers
            kinds = {"SALARY"} | ({r.choice(_INCOME_FOR_IDLE)} if r.random() < 0.2 else set())
        else:
            kinds = set(r.sample(_INCOME_FOR_IDLE, r.choice((0, 1, 1, 2))))
        out["legal_income"] = bool(kinds)
        if kinds:
            out["income_types"] = sorted(kinds)
        return out

    def _rd(self) -> dict[str, Any]:
        r = self._rng
        out: dict[str, Any] = {}
        start = self._date(dt.date(2024, 1, 1), REFERENCE_DATE)
        out["statuses"] = [
            {
                "kind": r.choice(("NEEDY", "LOW_INCOME")),
                "valid_from": _iso(start),
                "valid_to": _iso(start + dt.timedelta(days=r.choice((90, 180, 365)))),
            }
        ]
        out["residence_inspections"] = [
            {
                "inspection_date": _iso(start - dt.timedelta(days=r.randint(5, 30))),
                "result": r.choice(("CONFIRMED", "CONFIRMED", "NOT_CONFIRMED", "NOT_REACHED")),
                "notes": "Apsekošana veikta dzīvesvietā.",
            }
        ]
        if r.random() < 0.8:
            out["benefits"] = [
                {
                    "kind": kind,
                    "granted_from": _iso(start),
                    "granted_to": _iso(start + dt.timedelta(days=180)),
                    "amount": f"{r.randint(20, 300)}.{r.choice(('00', '50'))}",
                }
                for kind in r.sample(_BENEFITS, r.choice((1, 2)))
            ]
        if r.random() < 0.5:
            service: dict[str, Any] = {"kind": r.choice(_SERVICES), "granted_from": _iso(start)}
            if r.random() < 0.5:
                service["granted_to"] = _iso(start + dt.timedelta(days=90))
            out["services"] = [service]
        return out
