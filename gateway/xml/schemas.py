"""XSD registry: schemas are compiled once at start-up, from the local ``xsd/`` tree only."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.errors import ConfigError, SchemaValidationError
from gateway.logging import mask_text

__all__ = ["SchemaRegistry", "mask_xsd_message"]

# libxml2 quotes the offending value in these messages (xmlschemas.c); the value is the
# sender's data: a personal code, a name, a birth date. Greedy up to the fixed wording that
# follows, so a value containing a quote is masked whole.
_XSD_VALUE_PATTERNS = (
    # "Element 'd': '1990-13-45' is not a valid value of the atomic type 'xs:date'."
    (re.compile(r"(: )'.*'( is not a valid value of )"), r"\1'***'\2"),
    # "[facet 'pattern'] The value '010190-1234' is not accepted by the pattern '...'."
    (re.compile(r"(The value )'.*'( (?:is|has|does) )"), r"\1'***'\2"),
    # "Duplicate key-sequence ['150390-12345'] in unique identity-constraint 'uk'."
    (re.compile(r"(key-sequence )\[.*\]"), r"\1[***]"),
)


def mask_xsd_message(message: str) -> str:
    """An XSD validation message with the offending value masked (it is personal data).

    Element and attribute names, facets and types stay readable for the partner's developer;
    any personal code left anywhere in the text is masked as well.
    """
    for pattern, replacement in _XSD_VALUE_PATTERNS:
        message = pattern.sub(replacement, message)
    return mask_text(message)


class _LocalOnlyResolver(etree.Resolver):
    """Resolves ``xs:import``/``xs:include`` to files under the XSD root, refusing the rest."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self._root = root.resolve()

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        if system_url.startswith("file://"):
            system_url = system_url[len("file://") :]
        if "://" in system_url:
            raise ConfigError(f"XSD refers to a non-local resource: {system_url}")
        path = Path(system_url).resolve()
        if not path.is_relative_to(self._root):
            raise ConfigError(f"XSD refers to a file outside {self._root}: {system_url}")
        return self.resolve_filename(str(path), context)


class SchemaRegistry:
    """Compiled XSDs keyed by their path relative to the XSD root (``tis/tis.xsd``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._schemas: dict[str, etree.XMLSchema] = {}
        # lxml validators keep their error log on the object; one lock per schema keeps
        # concurrent validations from reading each other's errors.
        self._locks: dict[str, threading.Lock] = {}

    def _parser(self) -> etree.XMLParser:
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
        )
        parser.resolvers.add(_LocalOnlyResolver(self.root))
        return parser

    def load(self, name: str) -> etree.XMLSchema:
        """Compile ``name`` (relative to the root) if not yet compiled, and return it."""
        if name in self._schemas:
            return self._schemas[name]
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            raise ConfigError(f"schema {name!r} not found under {self.root}")
        try:
            doc = etree.parse(str(path), parser=self._parser())
            schema = etree.XMLSchema(doc)
        except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
            raise ConfigError(f"schema {name!r} does not compile: {exc}") from exc
        self._schemas[name] = schema
        self._locks[name] = threading.Lock()
        return schema

    def load_all(self, pattern: str = "**/*.xsd") -> list[str]:
        """Compile every schema matching ``pattern``; returns their names."""
        names = sorted(str(p.relative_to(self.root)) for p in self.root.glob(pattern))
        for name in names:
            self.load(name)
        return names

    def __contains__(self, name: object) -> bool:
        return name in self._schemas

    def names(self) -> list[str]:
        """Names of the compiled schemas."""
        return sorted(self._schemas)

    def validate(self, element: etree._Element, name: str) -> None:
        """Validate ``element`` against schema ``name``; SchemaValidationError with details."""
        schema = self._schemas.get(name) or self.load(name)
        with self._locks[name]:
            if schema.validate(element):
                return
            errors = [
                {"line": e.line, "path": e.path, "message": mask_xsd_message(e.message)}
                for e in schema.error_log
            ][:20]
        first = errors[0]["message"] if errors else "invalid"
        raise SchemaValidationError(f"schema {name}: {first}", details=errors)
