"""The statistics extract PLUS delivers each month: its schema, streaming validation, storage form.

An extract for period ``2026-10`` holds every case that was active on at least one day from 1
January 2026 to 31 October 2026 (year to date), so one extract gives the month and, in
December, the year. One row per case (a person in one function), pseudonymised by PLUS:

=========================  ==========  ===========================================================
field                      type        meaning
=========================  ==========  ===========================================================
``person_id``              text        PLUS's pseudonym of the person (never a personal code)
``case_id``                text        the case, unique in the extract
``function_subtype``       code        one of the 13 sub-types (classifier function_subtype)
``start_date``             date        the case started (supervision term, work, mediation ...)
``end_date``               date        the planned end of the term (required for supervision)
``closing_date``           date        the case was closed (empty while open)
``sex``                    M or F
``birth_year``             integer
``violent_offence``        boolean     the offence behind the case was violent
``sexual_offence``         boolean     ... was a sexual offence
``economic_activity_start`` code       status at the start (classifier economic_activity)
``economic_activity_end``  code        status at the end (closed cases)
``programme_participation`` boolean    took part in a probation programme during the case
``mediation_outcome``      code        closed mediations: settled, not_settled, refused
``hours_worked``           integer     forced labour and public work: hours worked so far
``reoffended``             boolean     closed supervision cases: a new offence during the case
=========================  ==========  ===========================================================

CSV (UTF-8, header row, comma) or JSON Lines. Validation is row by row while the body streams
in; each error names the line and the field and never quotes a value (an extract is personal
data even pseudonymised). A refused extract changes nothing: the last good one stays.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from gateway.errors import BadInputError
from gateway.mapping.registry import CLASSIFIERS_DIR
from gateway.mapping.spec import Classifier, load_classifier

__all__ = [
    "FIELDS",
    "SUPERVISION",
    "WORK",
    "CaseRow",
    "ExtractCodes",
    "ExtractError",
    "ExtractInvalidError",
    "ExtractValidator",
    "dump_rows",
    "load_rows",
    "table_schema",
]

FIELDS = (
    "person_id",
    "case_id",
    "function_subtype",
    "start_date",
    "end_date",
    "closing_date",
    "sex",
    "birth_year",
    "violent_offence",
    "sexual_offence",
    "economic_activity_start",
    "economic_activity_end",
    "programme_participation",
    "mediation_outcome",
    "hours_worked",
    "reoffended",
)
#: The five supervision sub-types (data sets 2, 3, 4 and 6 are about them).
SUPERVISION = frozenset(
    {
        "conditional_sentence_supervision",
        "early_release_supervision",
        "liability_release_supervision",
        "probation_supervision_additional",
        "early_release_em_supervision",
    }
)
#: Sub-types with hours of work (data set 7): forced labour (both kinds) and public work.
WORK = {
    "forced_labour": "forced_labour",
    "forced_labour_additional": "forced_labour",
    "public_work": "public_work",
}
MEDIATION = "mediation"

_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# A Latvian personal code (DDMMYY-NNNNN, or the 32... form since 2017): a person_id that looks
# like one means the extract was not pseudonymised, and is refused.
_PERSONAL_CODE = re.compile(r"\d{6}-?\d{5}")
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


class ExtractInvalidError(BadInputError):
    """The extract has errors (details: line, field, message); the last good one is kept."""

    code = "EXTRACT_INVALID"


@dataclass(frozen=True)
class ExtractError:
    """One problem: where (line, field) and what, without the value."""

    line: int
    field: str
    message: str


@dataclass(frozen=True)
class CaseRow:
    """One validated case of an extract."""

    person_id: str
    case_id: str
    function_subtype: str
    start_date: date
    end_date: date | None
    closing_date: date | None
    sex: str
    birth_year: int
    violent_offence: bool
    sexual_offence: bool
    economic_activity_start: str
    economic_activity_end: str | None
    programme_participation: bool
    mediation_outcome: str | None
    hours_worked: int | None
    reoffended: bool | None


@dataclass(frozen=True)
class ExtractCodes:
    """The code lists an extract is checked against, from mappings/classifiers/."""

    function_subtype: Classifier
    economic_activity: Classifier
    mediation_outcome: Classifier

    @classmethod
    def load(cls, mappings: Path) -> ExtractCodes:
        """Load the three classifiers from ``mappings``."""
        folder = Path(mappings) / CLASSIFIERS_DIR
        return cls(
            function_subtype=load_classifier(folder / "function_subtype.yaml"),
            economic_activity=load_classifier(folder / "economic_activity.yaml"),
            mediation_outcome=load_classifier(folder / "mediation_outcome.yaml"),
        )


class _RowErrors(Exception):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors


class ExtractValidator:
    """Validates an extract row by row for one period; collects errors, yields good rows."""

    def __init__(self, codes: ExtractCodes, period: str, *, max_errors: int = 100) -> None:
        match = re.fullmatch(r"(\d{4})-(\d{2})", period)
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ExtractInvalidError(
                "period must be a month YYYY-MM",
                details=[{"path": "query.period", "message": "expected YYYY-MM"}],
            )
        self.codes = codes
        self.period = period
        year, month = int(match.group(1)), int(match.group(2))
        self.year = year
        self.first_day = date(year, 1, 1)
        after = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        self.last_day = after - timedelta(days=1)
        self.max_errors = max_errors
        self.errors: list[ExtractError] = []
        self.error_count = 0
        self.rows = 0
        self._cases: set[str] = set()
        self._subtypes = frozenset(codes.function_subtype.canonical_codes)
        self._activities = frozenset(codes.economic_activity.canonical_codes)
        self._outcomes = frozenset(codes.mediation_outcome.canonical_codes)

    # -- entry points ----------------------------------------------------------------------

    def csv_rows(self, lines: Iterable[str]) -> Iterator[CaseRow]:
        """Validate CSV text lines (the header first); yields the good rows as they come."""
        reader = csv.reader(lines)
        try:
            header = next(reader)
        except StopIteration:
            self._error(1, "", "the extract is empty (no header row)")
            return
        except csv.Error as exc:
            self._error(1, "", f"not CSV: {exc}")
            return
        header = [h.strip().lstrip("\ufeff") for h in header]
        missing = [f for f in FIELDS if f not in header]
        unknown = [h for h in header if h not in FIELDS]
        for name in missing:
            self._error(1, name, "column missing from the header")
        for name in unknown:
            self._error(1, name, "unknown column")
        if missing or unknown:
            return
        try:
            for values in reader:
                line = reader.line_num
                if not values or values == [""]:
                    continue
                if len(values) != len(header):
                    self._error(line, "", f"{len(values)} values for {len(header)} columns")
                    continue
                row = self._row(line, dict(zip(header, values, strict=True)))
                if row is not None:
                    yield row
        except csv.Error as exc:
            self._error(reader.line_num, "", f"not CSV: {exc}")

    def jsonl_rows(self, lines: Iterable[str]) -> Iterator[CaseRow]:
        """Validate JSON Lines (one object per line); yields the good rows."""
        for line_number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                self._error(line_number, "", f"not JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(data, dict):
                self._error(line_number, "", "each line must be a JSON object")
                continue
            unknown = sorted(set(data) - set(FIELDS))
            for name in unknown:
                self._error(line_number, name, "unknown field")
            if unknown:
                continue
            row = self._row(line_number, {k: _as_text(v) for k, v in data.items()})
            if row is not None:
                yield row

    @property
    def ok(self) -> bool:
        """No errors so far, and at least one row."""
        return self.error_count == 0 and self.rows > 0

    def error_details(self) -> list[dict[str, Any]]:
        """The kept errors as API ``details`` (``path`` is ``line N: field``)."""
        return [
            {
                "line": e.line,
                "field": e.field,
                "path": f"line {e.line}: {e.field or '(row)'}",
                "message": e.message,
            }
            for e in self.errors
        ]

    # -- one row ---------------------------------------------------------------------------

    def _error(self, line: int, field: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(ExtractError(line, field, message))

    def _row(self, line: int, raw: dict[str, str]) -> CaseRow | None:
        problems: list[tuple[str, str]] = []
        try:
            row = self._parse(raw, problems)
        except _RowErrors:
            row = None
        if problems:
            for field, message in problems:
                self._error(line, field, message)
            return None
        assert row is not None
        if row.case_id in self._cases:
            self._error(line, "case_id", "the same case appears twice")
            return None
        self._cases.add(row.case_id)
        self.rows += 1
        return row

    def _parse(self, raw: dict[str, str], problems: list[tuple[str, str]]) -> CaseRow:
        def text(name: str, *, required: bool = True) -> str | None:
            value = (raw.get(name) or "").strip()
            if not value:
                if required:
                    problems.append((name, "required"))
                return None
            return value

        def day(name: str, *, required: bool) -> date | None:
            value = text(name, required=required)
            if value is None:
                return None
            try:
                return date.fromisoformat(value)
            except ValueError:
                problems.append((name, "not a date YYYY-MM-DD"))
                return None

        def flag(name: str, *, required: bool = True) -> bool | None:
            value = text(name, required=required)
            if value is None:
                return None
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            problems.append((name, "not a boolean (true or false)"))
            return None

        def code(name: str, allowed: frozenset[str], what: str, *, required: bool) -> str | None:
            value = text(name, required=required)
            if value is not None and value not in allowed:
                problems.append((name, f"unknown {what} code"))
                return None
            return value

        def integer(name: str, low: int, high: int, *, required: bool) -> int | None:
            value = text(name, required=required)
            if value is None:
                return None
            try:
                number = int(value)
            except ValueError:
                problems.append((name, "not an integer"))
                return None
            if not low <= number <= high:
                problems.append((name, f"out of range {low}..{high}"))
                return None
            return number

        person = text("person_id")
        if person is not None:
            if _PERSONAL_CODE.fullmatch(person):
                problems.append(("person_id", "looks like a personal code: pseudonymise it"))
            elif not _ID.fullmatch(person):
                problems.append(("person_id", "1-64 letters, digits or _.:-"))
        case = text("case_id")
        if case is not None and not _ID.fullmatch(case):
            problems.append(("case_id", "1-64 letters, digits or _.:-"))
        subtype = code("function_subtype", self._subtypes, "function sub-type", required=True)
        start = day("start_date", required=True)
        end = day("end_date", required=subtype in SUPERVISION)
        closing = day("closing_date", required=False)
        sex = text("sex")
        if sex is not None and sex not in ("M", "F"):
            problems.append(("sex", "M or F"))
        birth_year = integer("birth_year", 1900, self.year - 10, required=True)
        violent = flag("violent_offence")
        sexual = flag("sexual_offence")
        activity_start = code(
            "economic_activity_start", self._activities, "economic activity", required=True
        )
        activity_end = code(
            "economic_activity_end", self._activities, "economic activity", required=False
        )
        programme = flag("programme_participation")
        outcome = code(
            "mediation_outcome",
            self._outcomes,
            "mediation outcome",
            required=subtype == MEDIATION and closing is not None,
        )
        hours = integer("hours_worked", 0, 2000, required=subtype in WORK)
        reoffended = flag("reoffended", required=False)
        if start is not None:
            if start > self.last_day:
                problems.append(("start_date", f"after the extract's period {self.period}"))
            if end is not None and end < start:
                problems.append(("end_date", "before start_date"))
            if closing is not None and closing < start:
                problems.append(("closing_date", "before start_date"))
        if closing is not None:
            if closing > self.last_day:
                problems.append(("closing_date", f"after the extract's period {self.period}"))
            elif closing < self.first_day:
                problems.append(("closing_date", f"closed before {self.year}: not in this extract"))
        if outcome is not None and subtype != MEDIATION:
            problems.append(("mediation_outcome", "only for mediation cases"))
        if hours is not None and subtype not in WORK:
            problems.append(("hours_worked", "only for forced labour and public work"))
        if problems:
            raise _RowErrors(problems)
        assert person and case and subtype and start and sex and activity_start
        assert birth_year is not None and violent is not None and sexual is not None
        assert programme is not None
        return CaseRow(
            person_id=person,
            case_id=case,
            function_subtype=subtype,
            start_date=start,
            end_date=end,
            closing_date=closing,
            sex=sex,
            birth_year=birth_year,
            violent_offence=violent,
            sexual_offence=sexual,
            economic_activity_start=activity_start,
            economic_activity_end=activity_end,
            programme_participation=programme,
            mediation_outcome=outcome,
            hours_worked=hours,
            reoffended=reoffended,
        )


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dump_rows(rows: Iterable[CaseRow]) -> bytes:
    """The storage form of validated rows: gzip of JSON Lines."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as gz:
        for row in rows:
            gz.write(json.dumps(asdict(row), default=str, separators=(",", ":")).encode())
            gz.write(b"\n")
    return buffer.getvalue()


def load_rows(content: bytes) -> list[CaseRow]:
    """Rows back from :func:`dump_rows` (already validated when stored)."""
    rows = []
    with gzip.GzipFile(fileobj=io.BytesIO(content)) as gz:
        for line in gz:
            data = json.loads(line)
            for name in ("start_date", "end_date", "closing_date"):
                if data[name] is not None:
                    data[name] = date.fromisoformat(data[name])
            rows.append(CaseRow(**data))
    return rows


def table_schema(codes: ExtractCodes) -> dict[str, Any]:
    """The published schema of an extract, as a Frictionless Table Schema."""

    def enum(c: Classifier) -> dict[str, Any]:
        return {"enum": list(c.canonical_codes)}

    boolean = {"type": "boolean", "trueValues": ["true", "1"], "falseValues": ["false", "0"]}
    fields: list[dict[str, Any]] = [
        {
            "name": "person_id",
            "type": "string",
            "constraints": {"required": True},
            "description": "PLUS's pseudonym of the person; never a personal code",
        },
        {"name": "case_id", "type": "string", "constraints": {"required": True, "unique": True}},
        {
            "name": "function_subtype",
            "type": "string",
            "constraints": {"required": True, **enum(codes.function_subtype)},
        },
        {"name": "start_date", "type": "date", "constraints": {"required": True}},
        {
            "name": "end_date",
            "type": "date",
            "description": "planned end of the term; required for supervision sub-types",
        },
        {"name": "closing_date", "type": "date"},
        {"name": "sex", "type": "string", "constraints": {"required": True, "enum": ["M", "F"]}},
        {"name": "birth_year", "type": "integer", "constraints": {"required": True}},
        {"name": "violent_offence", **boolean, "constraints": {"required": True}},
        {"name": "sexual_offence", **boolean, "constraints": {"required": True}},
        {
            "name": "economic_activity_start",
            "type": "string",
            "constraints": {"required": True, **enum(codes.economic_activity)},
        },
        {
            "name": "economic_activity_end",
            "type": "string",
            "constraints": enum(codes.economic_activity),
        },
        {"name": "programme_participation", **boolean, "constraints": {"required": True}},
        {
            "name": "mediation_outcome",
            "type": "string",
            "constraints": enum(codes.mediation_outcome),
        },
        {"name": "hours_worked", "type": "integer", "constraints": {"minimum": 0}},
        {"name": "reoffended", **boolean},
    ]
    return {"fields": fields, "primaryKey": ["case_id"], "missingValues": [""]}
