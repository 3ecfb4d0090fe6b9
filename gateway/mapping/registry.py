"""All message mappings, loaded and compiled once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.errors import ConfigError, UnknownOperationError
from gateway.mapping.message import MessageMapping
from gateway.mapping.spec import Classifier, load_classifier, load_spec

__all__ = ["MappingRegistry"]

CLASSIFIERS_DIR = "classifiers"
#: E-service tables (data scope, entitlement, forms): data beside the mappings, not messages.
ESERVICES_DIR = "eservices"
_NOT_MESSAGES = frozenset({CLASSIFIERS_DIR, ESERVICES_DIR})


class MappingRegistry:
    """Message mappings by type, by root element, by operation, and queries by name.

    A root element is unique across all mappings (the namespace names the contract). An
    operation is unique within a contract; a query answer shares its request's operation and is
    found through :meth:`query_answer` instead.
    """

    def __init__(self, mappings: list[MessageMapping], classifiers: dict[str, Classifier]) -> None:
        self.classifiers = classifiers
        self._by_type: dict[str, MessageMapping] = {}
        self._by_root: dict[str, MessageMapping] = {}
        self._by_operation: dict[tuple[str, str], MessageMapping] = {}
        self._operations: dict[str, list[MessageMapping]] = {}
        self._queries: dict[tuple[str, str], MessageMapping] = {}
        for m in mappings:
            self._add(self._by_type, m.message_type, m, "message_type")
            self._add(self._by_root, m.root, m, "root")
            if m.direction != "query_answer":
                self._add(self._by_operation, (m.contract, m.operation), m, "operation")
                self._operations.setdefault(m.operation, []).append(m)
            if m.query is not None:
                self._add(self._queries, (m.query, m.direction), m, "query")
        self._check_queries()
        self._check_reply_to()

    def _check_queries(self) -> None:
        # A named query is a pair: a request PLUS sends and the answer it gets back.
        for (name, direction), m in self._queries.items():
            other = "query_answer" if direction == "query_request" else "query_request"
            if (name, other) not in self._queries:
                raise ConfigError(f"{m.source}: key 'query': no {other} mapping for {name!r}")
            partner = self._queries[(name, other)]
            if partner.contract != m.contract or partner.operation != m.operation:
                raise ConfigError(
                    f"{m.source}: key 'operation': {partner.source} answers query {name!r} "
                    "and must have the same contract and operation"
                )

    def _check_reply_to(self) -> None:
        # An outbound reply can only answer a message the gateway receives.
        for m in self._by_type.values():
            reply_to = m.routing.reply_to if m.routing is not None else None
            if reply_to is None:
                continue
            for i, name in enumerate(reply_to.types):
                target = self._by_type.get(name)
                if target is None or target.direction != "inbound":
                    raise ConfigError(
                        f"{m.source}: key 'routing.reply_to.types[{i}]': "
                        f"{name!r} is not an inbound message type"
                    )

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
            if path.relative_to(root).parts[0] not in _NOT_MESSAGES
        ]
        return cls(mappings, classifiers)

    def get(self, message_type: str) -> MessageMapping:
        """The mapping of ``message_type`` (``court_ruling``); UnknownOperationError if none."""
        try:
            return self._by_type[message_type]
        except KeyError:
            raise UnknownOperationError(f"unknown message type {message_type!r}") from None

    def by_root(self, root: str) -> MessageMapping:
        """The mapping whose payload element is ``root`` (Clark notation)."""
        try:
            return self._by_root[root]
        except KeyError:
            raise UnknownOperationError(f"no message has root element {root}") from None

    def by_operation(self, operation: str, *, contract: str | None = None) -> MessageMapping:
        """The mapping of WSDL operation ``operation`` (a query's request, not its answer).

        ``contract`` is needed only while an operation exists in two contracts (the legacy
        ``tis`` mappings beside ``ecase``); otherwise the operation alone names the mapping.
        """
        if contract is not None:
            found = self._by_operation.get((contract, operation))
            candidates = [found] if found is not None else []
        else:
            candidates = self._operations.get(operation, [])
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            where = f" in contract {contract!r}" if contract is not None else ""
            raise UnknownOperationError(f"no operation {operation!r}{where}")
        contracts = ", ".join(sorted(m.contract for m in candidates))
        raise UnknownOperationError(
            f"operation {operation!r} exists in contracts {contracts}; name the contract"
        )

    def query_request(self, query: str) -> MessageMapping:
        """The request mapping of the query named ``query`` (``ruling_state``)."""
        return self._query(query, "query_request")

    def query_answer(self, query: str) -> MessageMapping:
        """The answer mapping of the query named ``query`` (``ruling_state``)."""
        return self._query(query, "query_answer")

    def _query(self, query: str, direction: str) -> MessageMapping:
        try:
            return self._queries[(query, direction)]
        except KeyError:
            raise UnknownOperationError(f"no query {query!r}") from None

    def all(self) -> list[MessageMapping]:
        """Every mapping, sorted by message type."""
        return [self._by_type[k] for k in sorted(self._by_type)]

    def __contains__(self, message_type: object) -> bool:
        return message_type in self._by_type
