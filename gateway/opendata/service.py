"""Open data operations shared by the API, the CLI and the publishing job.

- :func:`receive_extract`: validate a streamed extract row by row and store it (or its errors);
- :func:`load_extract_rows`: the rows a period is built from (the month's extract, or
  December's for a year);
- :func:`build`: the release of a period (and its files under ``opendata.output``);
- :func:`publish`: build and publish a period to CKAN, whole or not at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.errors import RetryableError
from gateway.opendata.build import Release, build_release
from gateway.opendata.ckan import CkanPublisher
from gateway.opendata.extract import (
    CaseRow,
    ExtractCodes,
    ExtractError,
    ExtractValidator,
    dump_rows,
    load_rows,
)
from gateway.store import Store
from gateway.store.statistics import Extracts

__all__ = [
    "ExtractMissingError",
    "Received",
    "build",
    "load_extract_rows",
    "publish",
    "receive_extract",
]

Progress = Callable[[int, int, str], None]


class ExtractMissingError(RetryableError):
    """No good extract for the period yet (PLUS delivers it after the month ends)."""

    code = "EXTRACT_MISSING"


@dataclass(frozen=True)
class Received:
    """What became of one extract."""

    id: int
    period: str
    accepted: bool
    rows: int
    error_count: int
    errors: list[dict[str, Any]]
    sha256: str
    size: int


class _Hashing:
    """Counts and hashes the text lines as the validator reads them."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines = lines
        self.digest = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[str]:
        for raw in self._lines:
            self.digest.update(raw)
            self.size += len(raw)
            yield raw.decode("utf-8", errors="replace")


def receive_extract(
    store: Store,
    codes: ExtractCodes,
    *,
    period: str,
    fmt: str,
    lines: Iterable[bytes],
    actor: str | None,
    max_errors: int = 100,
) -> Received:
    """Validate ``lines`` (bytes, one line each) as an extract of ``period`` and store it.

    The good rows go straight into the compressed storage form while the lines stream in;
    only if every row is good is that stored as the period's extract. Errors are stored (line,
    field, message, never a value) and the last good extract stays in force.
    """
    validator = ExtractValidator(codes, period, max_errors=max_errors)
    source = _Hashing(lines)
    rows = validator.csv_rows(source) if fmt == "csv" else validator.jsonl_rows(source)
    content = dump_rows(rows)
    accepted = validator.ok
    if validator.rows == 0 and validator.error_count == 0:
        validator.errors.append(ExtractError(0, "", "the extract has no rows"))
        validator.error_count = 1
    extract_id = Extracts(store.db, store.journal).record(
        period=period,
        fmt=fmt,
        rows=validator.rows,
        size=source.size,
        sha256=source.digest.hexdigest(),
        content=content if accepted else None,
        errors=validator.error_details(),
        error_count=validator.error_count,
        actor=actor,
    )
    return Received(
        id=extract_id,
        period=period,
        accepted=accepted,
        rows=validator.rows,
        error_count=validator.error_count,
        errors=validator.error_details(),
        sha256=source.digest.hexdigest(),
        size=source.size,
    )


def load_extract_rows(store: Store, period: str) -> list[CaseRow]:
    """The rows ``period`` is built from: its month's extract, or December's for a year."""
    source = f"{period}-12" if len(period) == 4 else period
    found = Extracts(store.db, store.journal).latest(source)
    if found is None:
        raise ExtractMissingError(
            f"no accepted statistics extract for {source} yet (POST /v1/statistics/extracts)"
        )
    return load_rows(found["content"])


def build(settings: Settings, store: Store, period: str, *, out: Path | None = None) -> Release:
    """The release of ``period`` from the stored extract; written under ``out`` if given."""
    codes = ExtractCodes.load(settings.paths.mappings)
    release = build_release(load_extract_rows(store, period), period, codes, settings.opendata)
    if out is not None:
        release.write(out)
    return release


def publish(
    settings: Settings,
    store: Store,
    period: str,
    *,
    force: bool = False,
    progress: Progress | None = None,
    check: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Build ``period``, write its files under ``opendata.output``, publish it to CKAN."""
    if progress:
        progress(0, 1, "building")
    release = build(settings, store, period, out=settings.opendata.output)
    check()
    publisher = CkanPublisher.from_settings(settings.opendata)
    try:
        published = publisher.publish(release, force=force, progress=progress)
    finally:
        publisher.close()
    return {**release.summary(), "published": published}
