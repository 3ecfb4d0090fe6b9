"""Property: canonical -> XML -> XSD -> bytes -> XML -> canonical is the identity."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mapping import MappingRegistry
from gateway.mapping.testing import canonical_strategy
from gateway.xml import SchemaRegistry, parse_xml, serialize

from .helpers import MESSAGE_TYPES

_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
@_SETTINGS
@given(data=st.data())
def test_round_trip(
    message_type: str, data: Any, registry: MappingRegistry, schemas: SchemaRegistry
) -> None:
    mapping = registry.get(message_type)
    canonical = data.draw(canonical_strategy(mapping))
    mapping.validate_canonical(canonical)
    element = mapping.to_xml(canonical)
    schemas.validate(element, mapping.schema)
    back = mapping.to_canonical(parse_xml(serialize(element)))
    assert back == canonical
    mapping.validate_canonical(back)
