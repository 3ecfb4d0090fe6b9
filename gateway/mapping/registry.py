"""All message mappings, loaded and compiled once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.errors import ConfigError, UnknownOperationError
from gateway.mapping.message import MessageMapping
from gateway.mapping.spec import Classifier, load_classifier, load_spec

__all__ = ["MappingRegistry"]

CLASSIFIERS_DIR = "classifiers"


class MappingRegistry:
    """Message mappings by type, by (partner, root element) and by (partner, operation)."""

    def __init__(self, mappings: list[MessageMapping], classifiers: dict[str, Classifier]) -> None:
        self.classifiers = classifiers
        self._by_type: dict[str, MessageMapping] = {}
        self._by_root: dict[tuple[str, str], MessageMapping] = {}
        self._by_operation: dict[tuple[str, str], MessageMapping] = {}
        for m in mappings:
            self._add(self._by_type, m.message_type, m, "message_type")
            self._add(self._by_root, (m.partner, m.root), m, "root")
            self._add(self._by_operation, (m.partner, m.operation), m, "operation")

    @staticmethod
    def _add(index: dict[Any, MessageMapping], key: Any, m: MessageMapping, what: str) -> None:
        other = index.get(key)
        if other is not None:
            raise ConfigError(
                f"{m.source}: key {what!r}: {key!r} is already used by {other.source}"
            )
        index[key] = m

    @classmethod
    def load(cls, root: Path) -> MappingRegistry:
        """Load every ``root/**/*.yaml`` mapping and the ``root/classifiers/*.yaml`` code lists."""
        root = Path(root)
        if not root.is_dir():
            raise ConfigError(f"mappings directory {root} does not exist")
        classifiers: dict[str, Classifier] = {}
        for path in sorted((root / CLASSIFIERS_DIR).glob("*.yaml")):
            classifier = load_classifier(path)
            if classifier.name in classifiers:
                raise ConfigError(f"{path}: key 'name': duplicate classifier {classifier.name!r}")
            classifiers[classifier.name] = classifier
        mappings = [
            MessageMapping(load_spec(path, classifiers))
            for path in sorted(root.glob("**/*.yaml"))
            if path.relative_to(root).parts[0] != CLASSIFIERS_DIR
        ]
        return cls(mappings, classifiers)

    def get(self, message_type: str) -> MessageMapping:
        """The mapping of ``message_type`` (``tis.court_ruling``); UnknownOperationError if none."""
        try:
            return self._by_type[message_type]
        except KeyError:
            raise UnknownOperationError(f"unknown message type {message_type!r}") from None

    def by_root(self, partner: str, root: str) -> MessageMapping:
        """The mapping whose payload element is ``root`` (Clark notation) for ``partner``."""
        try:
            return self._by_root[(partner, root)]
        except KeyError:
            raise UnknownOperationError(
                f"no message of partner {partner!r} has root element {root}", partner=partner
            ) from None

    def by_operation(self, partner: str, operation: str) -> MessageMapping:
        """The mapping of WSDL operation ``operation`` for ``partner``."""
        try:
            return self._by_operation[(partner, operation)]
        except KeyError:
            raise UnknownOperationError(
                f"partner {partner!r} has no operation {operation!r}", partner=partner
            ) from None

    def all(self) -> list[MessageMapping]:
        """Every mapping, sorted by message type."""
        return [self._by_type[k] for k in sorted(self._by_type)]

    def __contains__(self, message_type: object) -> bool:
        return message_type in self._by_type
