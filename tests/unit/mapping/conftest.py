from __future__ import annotations

import pytest

from gateway.mapping import MappingRegistry
from gateway.xml import SchemaRegistry

from .helpers import MAPPINGS, XSD


@pytest.fixture(scope="session")
def registry() -> MappingRegistry:
    return MappingRegistry.load(MAPPINGS)


@pytest.fixture(scope="session")
def schemas() -> SchemaRegistry:
    return SchemaRegistry(XSD)
