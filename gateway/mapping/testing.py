"""Hypothesis strategies for canonical messages (a test helper; imports hypothesis).

The generated data satisfies the derived JSON Schema and, once mapped, the partner's XSD.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from gateway.mapping.message import MessageMapping
from gateway.mapping.spec import Field

__all__ = ["SAFE_ALPHABET", "canonical_strategy"]

#: Printable text including Latvian letters and XML-special characters (to test escaping).
SAFE_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "āčēģīķļņšūžĀČĒĢĪĶĻŅŠŪŽ .,;:-()/'\"&<>!?%+"
)
_OFFSETS = [timezone(timedelta(hours=h)) for h in (-5, 0, 1, 2, 3, 14)] + [UTC]


def _text(f: Field) -> st.SearchStrategy[str]:
    min_size = max(f.min_length or 0, 1)
    max_size = f.max_length if f.max_length is not None else 200
    # Edges are never blank: leading/trailing space is fragile in every consumer.
    return (
        st.text(alphabet=SAFE_ALPHABET, min_size=min_size, max_size=max_size)
        .map(str.strip)
        .filter(lambda s: len(s) >= min_size)
    )


def _scalar(f: Field) -> st.SearchStrategy[Any]:
    if f.classifier is not None:
        return st.sampled_from(f.classifier.canonical_codes)
    if f.type == "string":
        if f.regex is not None:
            lo = f.min_length or 0
            hi = f.max_length if f.max_length is not None else 10_000
            return st.from_regex(f.regex, fullmatch=True).filter(lambda s: lo <= len(s) <= hi)
        return _text(f)
    if f.type == "integer":
        lo = f.minimum if f.minimum is not None else -(2**31)
        hi = f.maximum if f.maximum is not None else 2**31 - 1
        return st.integers(min_value=lo, max_value=hi)
    if f.type == "decimal":
        return st.builds(
            lambda whole, frac: f"{whole}.{frac}" if frac else str(whole),
            st.integers(min_value=-(10**9), max_value=10**9),
            st.one_of(st.none(), st.text(alphabet="0123456789", min_size=1, max_size=4)),
        )
    if f.type == "boolean":
        return st.booleans()
    if f.type == "date":
        return st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)).map(
            date.isoformat
        )
    return st.datetimes(
        min_value=datetime(1900, 1, 2),
        max_value=datetime(2100, 12, 30),
        timezones=st.sampled_from(_OFFSETS),
    ).map(lambda d: d.isoformat())


def _field(f: Field) -> st.SearchStrategy[Any]:
    item = _object(f.fields) if f.fields is not None else _scalar(f)
    if not f.is_list:
        return item
    max_size = min(3, f.max_items) if f.max_items is not None else 3
    return st.lists(item, min_size=1, max_size=max_size)


def _object(fields: tuple[Field, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {f.json: _field(f) for f in fields if f.required},
        optional={f.json: _field(f) for f in fields if not f.required},
    )


def canonical_strategy(mapping: MessageMapping) -> st.SearchStrategy[dict[str, Any]]:
    """Strategy for canonical dicts of ``mapping`` that pass its JSON Schema and XSD."""
    return _object(mapping.fields)
