"""Declarative mapping between PLUS's canonical JSON and the wire XML of each contract.

Each message type is one YAML file (``mappings/messages/`` for the E-case business messages,
``mappings/viss/`` for registry answers); versioned code lists live in ``mappings/classifiers/``.
Adding a message type means adding data, not Python::

    registry = MappingRegistry.load(Path("mappings"))
    mapping = registry.get("court_ruling")
    mapping.validate_canonical(data)
    element = mapping.to_xml(data)
"""

from gateway.mapping.message import MessageMapping
from gateway.mapping.registry import MappingRegistry
from gateway.mapping.spec import (
    ADDRESSEE,
    ROUTED_DIRECTIONS,
    Classifier,
    Field,
    ReplyTo,
    Routing,
    RoutingRule,
    Urgent,
)

__all__ = [
    "ADDRESSEE",
    "ROUTED_DIRECTIONS",
    "Classifier",
    "Field",
    "MappingRegistry",
    "MessageMapping",
    "ReplyTo",
    "Routing",
    "RoutingRule",
    "Urgent",
]
