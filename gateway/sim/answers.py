"""Answers to queries on request, built from data: the answer's sample and the request.

The answer is the sample of the query's answer type with the request's id, a fresh response
id and answer time, and the fields it shares with the request (the case, the person) copied
from the request, so that an answer is about what was asked. Whether the institution knows
what was asked is decided on the identifiers among those shared fields (patterned strings:
case numbers, personal codes, court codes): each must occur in what the institution has seen
(its samples and the messages it exchanged); otherwise the answer is ``NOT_FOUND``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gateway.mapping import MessageMapping
from gateway.mapping.spec import Field

__all__ = ["ANSWER_OWN_FIELDS", "build_answer", "string_leaves"]

#: Fields of an answer that the answering side sets, never copied from the request.
ANSWER_OWN_FIELDS = frozenset({"request_id", "response_id", "answered_at", "result"})


def string_leaves(data: object) -> Iterator[str]:
    """Every string value anywhere in ``data`` (the institution's memory of a message)."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from string_leaves(value)
    elif isinstance(data, list):
        for value in data:
            yield from string_leaves(value)


def _same_scalar(a: Field, b: Field) -> bool:
    # Copy only what maps to the wire the same way on both sides.
    a_code = a.classifier.name if a.classifier else None
    b_code = b.classifier.name if b.classifier else None
    return a.type == b.type and a_code == b_code and a.is_list == b.is_list


def _is_identifier(f: Field) -> bool:
    return f.type == "string" and f.pattern is not None and f.classifier is None


def _copy_shared(
    answer_fields: tuple[Field, ...],
    request_fields: tuple[Field, ...],
    target: dict[str, Any],
    source: dict[str, Any],
    skip: Iterable[str],
    identifiers: list[str],
) -> None:
    by_name = {f.json: f for f in request_fields}
    skipped = set(skip)
    for f in answer_fields:
        g = by_name.get(f.json)
        if g is None or f.json in skipped or f.json not in source:
            continue
        value = source[f.json]
        if f.fields is None and g.fields is None:
            if _same_scalar(f, g):
                target[f.json] = value
                if _is_identifier(f):
                    identifiers.extend(value if isinstance(value, list) else [value])
        elif f.fields is not None and g.fields is not None and not (f.is_list or g.is_list):
            # Into an object the sample has only: a partial object could miss required parts.
            inner = target.get(f.json)
            if isinstance(inner, dict) and isinstance(value, dict):
                _copy_shared(f.fields, g.fields, inner, value, (), identifiers)


def build_answer(
    *,
    request_mapping: MessageMapping,
    request: dict[str, Any],
    answer_mapping: MessageMapping,
    sample: dict[str, Any],
    response_id: str,
    answered_at: str,
    knows: Callable[[str], bool],
) -> dict[str, Any]:
    """The canonical answer to ``request`` (``sample`` is a fresh copy, changed in place).

    ``knows(value)`` says whether the institution has seen an identifier; one it has not seen
    makes the answer ``NOT_FOUND``, which keeps only the answer's required fields.
    """
    request_id = request_mapping.get_path(request, request_mapping.partner_message_id)
    own = {request_mapping.partner_message_id.split(".")[0], *request_mapping.gateway_fields}
    identifiers: list[str] = []
    _copy_shared(
        answer_mapping.fields,
        request_mapping.fields,
        sample,
        request,
        {*own, *ANSWER_OWN_FIELDS},
        identifiers,
    )
    found = all(knows(str(value)) for value in identifiers)
    names = {f.json for f in answer_mapping.fields}
    stamps = {"request_id": request_id, "response_id": response_id, "answered_at": answered_at}
    sample.update({k: v for k, v in stamps.items() if k in names})
    if "result" in names:
        sample["result"] = "FOUND" if found else "NOT_FOUND"
    if not found:
        # What was asked is unknown here: say so, and nothing else the sample would invent.
        keep = {f.json for f in answer_mapping.fields if f.required} | ANSWER_OWN_FIELDS
        keep |= {f.json for f in answer_mapping.fields if f.json in request}
        for name in [k for k in sample if k not in keep]:
            del sample[name]
    return sample
