"""Bulk import of opportunities (VOL-36): CSV or a JSON array, validated with line numbers.

All or nothing: every row is validated first and any error refuses the whole file with a 422
``IMPORT_INVALID`` whose details name each bad row by its line and field
(``body.line[3].deadline``), so an organisation fixes its export in one round. Rows with an
``external_ref`` update the posting imported earlier under it; others are new.

CSV: UTF-8 (a BOM is fine), comma-separated, a header line naming the columns in
:data:`CSV_COLUMNS` (only ``title``, ``duties``, ``deadline``, ``volunteers_needed`` and
``kind`` are required), ``skills`` separated by ``;``, ``digital`` as true/false, times in ISO
8601 with a zone. JSON: an array of objects shaped like the API's ``OpportunityIn``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from gateway.facade.errors import MediaTypeError, UnprocessableError, detail
from gateway.facade.models import OpportunityIn

__all__ = ["CSV_COLUMNS", "export_csv", "parse_import"]

#: Columns of the CSV format, in the order ``export_csv`` writes them.
CSV_COLUMNS = (
    "external_ref",
    "title",
    "city",
    "municipality",
    "digital",
    "starts_at",
    "ends_at",
    "expected_hours",
    "duties",
    "deadline",
    "desired_profile",
    "skills",
    "volunteers_needed",
    "benefits",
    "kind",
)
_REQUIRED = ("title", "duties", "deadline", "volunteers_needed", "kind")
_MAX_ERRORS = 50


def _csv_row(raw: dict[str, str]) -> dict[str, Any]:
    """A CSV record in the API's shape (empty cells are absent values)."""

    def cell(name: str) -> str | None:
        value = raw.get(name)
        return value if value not in (None, "") else None

    item: dict[str, Any] = {
        name: cell(name)
        for name in (
            "external_ref",
            "title",
            "starts_at",
            "ends_at",
            "expected_hours",
            "duties",
            "deadline",
            "desired_profile",
            "volunteers_needed",
            "benefits",
            "kind",
        )
        if cell(name) is not None
    }
    digital = (cell("digital") or "false").strip().lower()
    item["place"] = {
        "city": cell("city"),
        "municipality": cell("municipality"),
        "digital": {
            "true": True,
            "1": True,
            "yes": True,
            "false": False,
            "0": False,
            "no": False,
        }.get(digital, digital),
    }
    skills = cell("skills")
    item["skills"] = [s.strip() for s in skills.split(";") if s.strip()] if skills else []
    return item


def _csv_records(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise UnprocessableError("IMPORT_INVALID", "the CSV is empty", path="body") from None
    except csv.Error as exc:
        raise _invalid([detail("body.line[1]", f"not CSV: {exc}", line=1)]) from exc
    names = [h.strip() for h in header]
    unknown = [n for n in names if n not in CSV_COLUMNS]
    missing = [n for n in _REQUIRED if n not in names]
    if unknown or missing:
        problems = [detail(f"body.line[1].{n}", "unknown column", line=1) for n in unknown]
        problems += [
            detail(f"body.line[1].{n}", "required column missing", line=1) for n in missing
        ]
        raise _invalid(problems)
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _invalid([detail(f"body.line[{start}]", f"not CSV: {exc}", line=start)]) from exc
        line, start = start, reader.line_num + 1
        if not any(v.strip() for v in values):
            continue  # blank lines are not rows
        if len(values) != len(names):
            yield line, {"__columns__": len(values)}
            continue
        yield line, _csv_row(dict(zip(names, values, strict=True)))


def _json_records(text: str) -> Iterator[tuple[int, Any]]:
    decoder = json.JSONDecoder()
    pos = _skip(text, 0)
    if not text.startswith("[", pos):
        raise _invalid([detail("body", "a JSON array of opportunities is expected", line=1)])
    pos = _skip(text, pos + 1)
    if text.startswith("]", pos):
        return
    while True:
        line = text.count("\n", 0, pos) + 1
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise _invalid(
                [detail(f"body.line[{exc.lineno}]", f"not JSON: {exc.msg}", line=exc.lineno)]
            ) from exc
        yield line, value
        pos = _skip(text, end)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
            continue
        if text.startswith("]", pos) and not text[_skip(text, pos + 1) :]:
            return
        line = text.count("\n", 0, pos) + 1
        raise _invalid([detail(f"body.line[{line}]", "expected ',' or the closing ']'", line=line)])


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _invalid(problems: list[dict[str, Any]]) -> UnprocessableError:
    return UnprocessableError(
        "IMPORT_INVALID",
        f"the import has {len(problems)} problem(s); nothing was imported",
        details=problems[:_MAX_ERRORS],
    )


def parse_import(raw: bytes, media_type: str, *, max_rows: int) -> list[dict[str, Any]]:
    """Validated opportunities (``OpportunityIn`` dumps) from a CSV or JSON body.

    Raises 415 IMPORT_MEDIA_TYPE for another media type and 422 IMPORT_INVALID listing every
    bad row by line and field.
    """
    kind = media_type.split(";", 1)[0].strip().lower()
    if kind not in ("text/csv", "application/json"):
        raise MediaTypeError(
            "IMPORT_MEDIA_TYPE",
            "send the import as text/csv or application/json",
            path="header.Content-Type",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _invalid([detail("body", "not UTF-8 text")]) from exc
    records = _csv_records(text) if kind == "text/csv" else _json_records(text)
    problems: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for count, (line, record) in enumerate(records, start=1):
        if count > max_rows:
            raise _invalid([detail("body", f"at most {max_rows} rows per import", line=line)])
        if isinstance(record, dict) and "__columns__" in record:
            problems.append(
                detail(
                    f"body.line[{line}]",
                    f"{record['__columns__']} cells; the header has another number",
                    line=line,
                )
            )
            continue
        try:
            item = OpportunityIn.model_validate(record)
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"])
                path = f"body.line[{line}]" + (f".{where}" if where else "")
                problems.append(detail(path, error["msg"], line=line))
            continue
        if item.external_ref:
            first = seen.setdefault(item.external_ref, line)
            if first != line:
                problems.append(
                    detail(
                        f"body.line[{line}].external_ref",
                        f"the same external_ref as line {first}",
                        line=line,
                    )
                )
                continue
        items.append(item.model_dump())
        if len(problems) >= _MAX_ERRORS:
            break
    if problems:
        raise _invalid(problems)
    return items


def export_csv(rows: list[dict[str, Any]]) -> str:
    """Opportunities (store rows) in the import's CSV format, so an export re-imports."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r.get("external_ref") or "",
                r["title"],
                r.get("city") or "",
                r.get("municipality") or "",
                "true" if r["digital"] else "false",
                r["starts_at"].isoformat() if r.get("starts_at") else "",
                r["ends_at"].isoformat() if r.get("ends_at") else "",
                "" if r.get("expected_hours") is None else f"{r['expected_hours']:g}",
                r["duties"],
                r["deadline"].isoformat(),
                r.get("desired_profile") or "",
                ";".join(json.loads(r["skills"])),
                r["volunteers_needed"],
                r.get("benefits") or "",
                r["kind"],
            ]
        )
    return out.getvalue()
