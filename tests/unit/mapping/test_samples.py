"""Every sample behaves as tests/samples/README.md says."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from gateway.errors import CanonicalInvalidError, SchemaValidationError
from gateway.mapping import MappingRegistry
from gateway.xml import SchemaRegistry, parse_xml, serialize

from .helpers import MESSAGE_TYPES, SAMPLES, sample_dir, valid_json


def _manifest(path: str, prefix: str) -> dict[str, dict[str, dict[str, Any]]]:
    data: dict[str, dict[str, dict[str, Any]]] = yaml.safe_load((SAMPLES / path).read_text("utf-8"))
    return {f"{prefix}{mt}": entries for mt, entries in data.items()}


# What each invalid sample of the E-case business messages breaks (invalid.yaml).
MANIFEST = _manifest("invalid.yaml", "")
INVALID = [
    (mt, name, entry) for mt, entries in sorted(MANIFEST.items()) for name, entry in entries.items()
]


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_valid_xml_validates_and_maps_to_json_twin(
    message_type: str, registry: MappingRegistry, schemas: SchemaRegistry
) -> None:
    mapping = registry.get(message_type)
    element = parse_xml((sample_dir(message_type) / "valid.xml").read_bytes())
    schemas.validate(element, mapping.schema)
    assert mapping.to_canonical(element) == valid_json(message_type)


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_valid_json_validates_and_maps_to_xml_twin(
    message_type: str, registry: MappingRegistry, schemas: SchemaRegistry
) -> None:
    mapping = registry.get(message_type)
    data = valid_json(message_type)
    mapping.validate_canonical(data)
    built = mapping.to_xml(data)
    schemas.validate(built, mapping.schema)
    expected = parse_xml((sample_dir(message_type) / "valid.xml").read_bytes())
    # Compare structure and text, not formatting: the sample file is pretty-printed.
    assert _shape(built) == _shape(expected)
    assert mapping.to_canonical(parse_xml(serialize(built))) == data


def _shape(element: Any) -> Any:
    children = [c for c in element if isinstance(c.tag, str)]
    if not children:
        return (element.tag, element.text)
    return (element.tag, [_shape(c) for c in children])


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_every_message_type_has_invalid_samples_of_each_kind(message_type: str) -> None:
    names = [p.name for p in sample_dir(message_type).glob("invalid-*")]
    assert [n for n in names if n.endswith(".xml")], "an XSD_INVALID sample"
    assert [n for n in names if n.endswith(".json")], "a CANONICAL_INVALID sample"
    listed = set(MANIFEST[message_type])
    assert set(names) == listed, "every invalid sample is listed in invalid.yaml and README"


@pytest.mark.parametrize(("message_type", "name", "entry"), INVALID, ids=lambda v: str(v)[:40])
def test_invalid_sample_fails_with_the_documented_error(
    message_type: str,
    name: str,
    entry: dict[str, Any],
    registry: MappingRegistry,
    schemas: SchemaRegistry,
) -> None:
    mapping = registry.get(message_type)
    path = sample_dir(message_type) / name
    if name.endswith(".xml"):
        assert entry["error"] == "XSD_INVALID"
        with pytest.raises(SchemaValidationError) as xml_exc:
            schemas.validate(parse_xml(path.read_bytes()), mapping.schema)
        assert xml_exc.value.code == "XSD_INVALID"
    else:
        assert entry["error"] == "CANONICAL_INVALID"
        with pytest.raises(CanonicalInvalidError) as json_exc:
            mapping.validate_canonical(json.loads(path.read_text("utf-8")))
        assert json_exc.value.code == "CANONICAL_INVALID"
        assert entry["path"] in [d["path"] for d in json_exc.value.details]


def test_readme_lists_every_invalid_sample() -> None:
    readme = (SAMPLES / "README.md").read_text("utf-8")
    for message_type, name, _entry in INVALID:
        relative = sample_dir(message_type).relative_to(SAMPLES).as_posix()
        assert f"`{relative}/{name}`" in readme
