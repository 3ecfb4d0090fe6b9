"""Would the mappings, the XSDs and the samples still hold under a new classifier version?

A classifier's codes appear in three more places, and a sync that changes the codes must not
leave any of them behind silently:

- every mapping field using the classifier (``classifier:``): the mappings must still load
  (each contract column complete) -> ``mappings_invalid``;
- the XSD simple type that field's element validates against: it must list exactly the new
  wire codes of the mapping's contract -> ``xsd_missing_code`` (an added code the XSD does not
  list), ``xsd_extra_code`` (a removed code the XSD still lists), ``xsd_no_enumeration``,
  ``xsd_element_not_found``;
- the samples of every such message type (``paths.samples``/<message_type>/): none may still
  use a removed code -> ``sample_uses_removed_code``.

The XSD side is read from the compiled schema component model (xmlschema), walking from the
mapping's root element along the field's element path, so element references, named and
anonymous types, imports and derived restrictions resolve as the validator resolves them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xmlschema

from gateway.errors import ConfigError, GatewayError
from gateway.mapping import MappingRegistry, MessageMapping
from gateway.mapping.spec import Classifier, Field, load_spec
from gateway.xml import parse_xml

__all__ = ["Break", "UsedField", "XsdEnumerations", "check_breaks", "used_fields"]


@dataclass(frozen=True)
class Break:
    """One reason a new classifier version may not be applied as it is."""

    classifier: str
    kind: str
    message: str
    message_type: str | None = None
    #: Dotted canonical path of the field (``function.subtype``).
    field: str | None = None
    codes: tuple[str, ...] = ()
    #: The file to fix (XSD, sample, mapping).
    file: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The break as ``classifiers sync --json`` prints it."""
        return {k: v for k, v in vars(self).items() if v not in (None, ())} | {
            "codes": list(self.codes)
        }


@dataclass(frozen=True)
class UsedField:
    """A field of a mapping that takes its codes from a classifier."""

    mapping: MessageMapping
    json_path: tuple[str, ...]
    xml_path: tuple[str, ...]
    field: Field


def used_fields(registry: MappingRegistry, classifier: str) -> Iterator[UsedField]:
    """Every field of every mapping whose codes come from ``classifier``."""

    def walk(
        m: MessageMapping, fields: tuple[Field, ...], jp: tuple[str, ...], xp: tuple[str, ...]
    ) -> Iterator[UsedField]:
        for f in fields:
            if f.fields is not None:
                yield from walk(m, f.fields, (*jp, f.json), (*xp, f.xml))
            elif f.classifier is not None and f.classifier.name == classifier:
                yield UsedField(m, (*jp, f.json), (*xp, f.xml), f)

    for m in registry.all():
        yield from walk(m, m.fields, (), ())


class XsdEnumerations:
    """Enumerations of element types, from schemas compiled once per instance."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._schemas: dict[str, xmlschema.XMLSchemaBase] = {}

    def _schema(self, name: str) -> xmlschema.XMLSchemaBase:
        if name not in self._schemas:
            path = (self.root / name).resolve()
            if not path.is_relative_to(self.root) or not path.is_file():
                raise ConfigError(f"schema {name!r} not found under {self.root}")
            try:
                # Local files only and no DTDs or entities: the same stance as gateway.xml.
                self._schemas[name] = xmlschema.XMLSchema(str(path), allow="local", defuse="always")
            except (xmlschema.XMLSchemaException, OSError) as exc:
                raise ConfigError(f"schema {name!r} does not compile: {exc}") from exc
        return self._schemas[name]

    def lookup(self, schema: str, root: str, path: tuple[str, ...]) -> tuple[str, list[str] | None]:
        """(type name, enumeration or None) of the element at ``path`` under ``root``.

        Names are Clark notation. LookupError when the XSD has no such element there.
        """
        # xmlschema's component classes are loosely typed unions; walk them as Any.
        element: Any = self._schema(schema).maps.elements.get(root)
        if element is None:
            raise LookupError(f"{schema} has no global element {root}")
        for name in path:
            xsd_type: Any = element.type
            content: Any = xsd_type.content if xsd_type.is_complex() else None
            children = content.iter_elements() if hasattr(content, "iter_elements") else ()
            element = next((c for c in children if c.name == name), None)
            if element is None:
                raise LookupError(f"{schema}: no element {name} on the path from {root}")
        xsd_type = element.type
        type_name = xsd_type.prefixed_name or "(anonymous type)"
        simple: Any = xsd_type
        if xsd_type.is_complex():
            simple = xsd_type.content if xsd_type.has_simple_content() else None
        while simple is not None:
            # A restriction without facets of its own inherits its base's enumeration.
            values = getattr(simple, "enumeration", None)
            if values:
                return type_name, [str(v) for v in values]
            simple = getattr(simple, "base_type", None)
        return type_name, None


def _sample_dir(samples: Path, message_type: str) -> Path:
    # tests/samples/<message_type>/ (a dotted type, from before universal messages, nests).
    return samples / message_type.replace(".", "/")


def _json_values(data: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if not path:
        yield data
        return
    items = data if isinstance(data, list) else [data]
    for item in items:
        if isinstance(item, dict) and path[0] in item:
            value = item[path[0]]
            for v in value if isinstance(value, list) and len(path) > 1 else [value]:
                yield from _json_values(v, path[1:])


def _sample_values(file: Path, used: UsedField) -> Iterator[str]:
    """The values a sample file holds at the used field: canonical (JSON) or wire (XML)."""
    if file.suffix == ".json":
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        for value in _json_values(data, used.json_path):
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str):
                    yield v
    elif file.suffix == ".xml":
        try:
            root = parse_xml(file.read_bytes())
        except (OSError, GatewayError):
            return  # a deliberately malformed sample holds no codes
        start = root if root.tag == used.mapping.root else next(root.iter(used.mapping.root), None)
        elements = [start] if start is not None else []
        for name in used.xml_path:
            elements = [c for e in elements for c in e.iterchildren(name)]
        for e in elements:
            if e.text and e.text.strip():
                yield e.text.strip()


def _mappings_load(registry: MappingRegistry, new: Classifier) -> str | None:
    """None if every mapping using the classifier loads with ``new``, else the loader's message.

    Only those mappings can fail (a column without a code for an added entry, a routing rule
    naming a removed code); reloading just them keeps a sync of many classifiers fast.
    """
    classifiers = {**registry.classifiers, new.name: new}
    users = {u.mapping.source: u.mapping for u in used_fields(registry, new.name)}
    for source in sorted(users):
        try:
            MessageMapping(load_spec(source, classifiers))
        except ConfigError as exc:
            return exc.message
    return None


def check_breaks(
    old: Classifier,
    new: Classifier,
    *,
    classifier_file: Path,
    registry: MappingRegistry,
    xsd: XsdEnumerations,
    samples: Path,
) -> list[Break]:
    """Everything that would break if ``old`` (in ``classifier_file``) became ``new``.

    ``registry`` is the current mapping registry (loaded with ``old``); its fields say where
    the classifier is used.
    """
    name = old.name
    out: list[Break] = []
    problem = _mappings_load(registry, new)
    if problem is not None:
        out.append(Break(name, "mappings_invalid", problem, file=str(classifier_file)))
    removed = [c for c in old.canonical_codes if c not in new.canonical_codes]
    seen_samples: set[tuple[str, str, str]] = set()
    for used in used_fields(registry, name):
        m, dotted = used.mapping, ".".join(used.json_path)
        expected = set(new.to_wire.get(m.contract, {}).values())
        try:
            type_name, listed = xsd.lookup(m.schema, m.root, used.xml_path)
        except LookupError as exc:
            out.append(
                Break(
                    name, "xsd_element_not_found", str(exc), m.message_type, dotted, file=m.schema
                )
            )
            listed = None
            type_name = ""
        if type_name and listed is None:
            out.append(
                Break(
                    name,
                    "xsd_no_enumeration",
                    f"{m.schema}: {type_name} lists no codes; it must list the {m.contract} codes",
                    m.message_type,
                    dotted,
                    file=m.schema,
                )
            )
        if listed is not None:
            missing = tuple(sorted(expected - set(listed)))
            extra = tuple(sorted(set(listed) - expected))
            if missing:
                out.append(
                    Break(
                        name,
                        "xsd_missing_code",
                        f"{m.schema}: {type_name} does not list {', '.join(missing)}",
                        m.message_type,
                        dotted,
                        missing,
                        m.schema,
                    )
                )
            if extra:
                out.append(
                    Break(
                        name,
                        "xsd_extra_code",
                        f"{m.schema}: {type_name} still lists {', '.join(extra)}",
                        m.message_type,
                        dotted,
                        extra,
                        m.schema,
                    )
                )
        if not removed:
            continue
        old_wire = old.to_wire.get(m.contract, {})
        # JSON samples hold canonical codes, XML samples the contract's wire codes.
        gone = {".json": set(removed), ".xml": {old_wire[c] for c in removed if c in old_wire}}
        directory = _sample_dir(samples, m.message_type)
        files = sorted(directory.iterdir()) if directory.is_dir() else []
        for file in files:
            for value in _sample_values(file, used):
                key = (str(file), dotted, value)
                if value in gone.get(file.suffix, ()) and key not in seen_samples:
                    seen_samples.add(key)
                    out.append(
                        Break(
                            name,
                            "sample_uses_removed_code",
                            f"{file.name} uses removed code {value} at {dotted}",
                            m.message_type,
                            dotted,
                            (value,),
                            str(file),
                        )
                    )
    return out
