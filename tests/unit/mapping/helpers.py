"""Shared helpers for the mapping tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.mapping import MappingRegistry, MessageMapping
from gateway.mapping.spec import Field

ROOT = Path(__file__).resolve().parents[3]
MAPPINGS = ROOT / "mappings"
XSD = ROOT / "xsd"
SAMPLES = ROOT / "tests" / "samples"

# Registry answers (contract viss, mappings/viss/) have no samples here; their contract is
# checked against the whole simulator population in tests/unit/registries/test_contract.py.
MESSAGE_TYPES = [
    m.message_type for m in MappingRegistry.load(MAPPINGS).all() if m.contract != "viss"
]


def sample_dir(message_type: str) -> Path:
    """tests/samples/<message_type>/."""
    return SAMPLES / message_type


def valid_json(message_type: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((sample_dir(message_type) / "valid.json").read_text("utf-8"))
    return data


def scalar_paths(
    mapping: MessageMapping, data: dict[str, Any]
) -> Iterator[tuple[tuple[str | int, ...], Field]]:
    """Every scalar field that has a value in ``data``, with its path (lists: first item)."""

    def walk(
        fields: tuple[Field, ...], obj: dict[str, Any], prefix: tuple[str | int, ...]
    ) -> Iterator[tuple[tuple[str | int, ...], Field]]:
        for f in fields:
            if f.json not in obj:
                continue
            path: tuple[str | int, ...] = (*prefix, f.json)
            value = obj[f.json]
            if f.is_list:
                path, value = (*path, 0), value[0]
            if f.fields is not None:
                yield from walk(f.fields, value, path)
            else:
                yield path, f

    yield from walk(mapping.fields, data, ())


def set_path(data: Any, path: tuple[str | int, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value
