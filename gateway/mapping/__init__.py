"""Declarative mapping between PLUS's canonical JSON and partners' XML messages.

Each message type is one YAML file under ``mappings/<partner>/``; code lists live in
``mappings/classifiers/``. Adding a message type means adding data, not Python::

    registry = MappingRegistry.load(Path("mappings"))
    mapping = registry.get("tis.court_ruling")
    mapping.validate_canonical(data)
    element = mapping.to_xml(data)
"""

from gateway.mapping.message import MessageMapping
from gateway.mapping.registry import MappingRegistry
from gateway.mapping.spec import Classifier, Field

__all__ = ["Classifier", "Field", "MappingRegistry", "MessageMapping"]
