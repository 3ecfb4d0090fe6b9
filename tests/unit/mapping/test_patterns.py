"""The derived JSON Schema is at least as strict as the XSD for every lexical rule."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import CanonicalInvalidError, MappingError, SchemaValidationError
from gateway.mapping import MappingRegistry
from gateway.xml import SchemaRegistry

from .helpers import MAPPINGS, MESSAGE_TYPES, scalar_paths, set_path, valid_json

_NOISE = "0123456789-:.()/TZ+ _@ABCKLVazāž\n"


def _checked_fields(registry: MappingRegistry) -> list[tuple[str, tuple[str | int, ...]]]:
    # One field per distinct lexical rule and XML element: the same rule on the same element
    # (a personal code in every message) is the same check, and repeating it only costs time.
    out, seen = [], set()
    for message_type in MESSAGE_TYPES:
        mapping = registry.get(message_type)
        for path, f in scalar_paths(mapping, valid_json(message_type)):
            if f.pattern is not None or f.type in ("date", "datetime"):
                rule = (f.pattern, f.type, f.xml, mapping.schema)
                if rule not in seen:
                    seen.add(rule)
                    out.append((message_type, path))
    return out


CHECKED = _checked_fields(MappingRegistry.load(MAPPINGS))


def _near_misses(value: str) -> st.SearchStrategy[str]:
    """Strings close to a valid value: one character replaced, inserted or removed."""
    return st.one_of(
        st.text(alphabet=_NOISE, max_size=20),
        st.tuples(st.integers(0, len(value)), st.sampled_from(_NOISE), st.booleans()).map(
            lambda t: value[: t[0]] + t[1] + value[t[0] + (1 if t[2] else 0) :]
        ),
        st.integers(0, max(len(value) - 1, 0)).map(lambda i: value[:i] + value[i + 1 :]),
    )


@pytest.mark.parametrize(("message_type", "path"), CHECKED, ids=lambda v: str(v))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_json_schema_rejects_what_xsd_rejects(
    message_type: str,
    path: tuple[str | int, ...],
    data: Any,
    registry: MappingRegistry,
    schemas: SchemaRegistry,
) -> None:
    mapping = registry.get(message_type)
    base = valid_json(message_type)
    original: Any = base
    for part in path:
        original = original[part]
    candidate = data.draw(_near_misses(original))
    doc = copy.deepcopy(base)
    set_path(doc, path, candidate)
    try:
        schemas.validate(mapping.to_xml(doc), mapping.schema)
        xsd_ok = True
    except SchemaValidationError:
        xsd_ok = False
    except MappingError:  # to_xml refuses a value it cannot even write (a bad date)
        xsd_ok = False
    try:
        mapping.validate_canonical(doc)
        json_ok = True
    except CanonicalInvalidError:
        json_ok = False
    if not xsd_ok:
        assert not json_ok, f"XSD rejects {candidate!r} at {path} but the JSON Schema accepts it"
    if json_ok:
        assert xsd_ok


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_every_classifier_code_passes_the_xsd(
    message_type: str, registry: MappingRegistry, schemas: SchemaRegistry
) -> None:
    mapping = registry.get(message_type)
    base = valid_json(message_type)
    for path, f in scalar_paths(mapping, base):
        if f.classifier is None:
            continue
        for code in f.classifier.canonical_codes:
            doc = copy.deepcopy(base)
            set_path(doc, path, code)
            mapping.validate_canonical(doc)
            schemas.validate(mapping.to_xml(doc), mapping.schema)
