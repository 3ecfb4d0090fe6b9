"""Loading mapping files: lookups, the public surface, and errors that name file and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from gateway.errors import ConfigError, UnknownOperationError
from gateway.mapping import MappingRegistry
from gateway.ns import ECASE

from .helpers import MAPPINGS


def test_unknown_lookups_raise_unknown_operation(registry: MappingRegistry) -> None:
    with pytest.raises(UnknownOperationError):
        registry.get("nope")
    with pytest.raises(UnknownOperationError):
        registry.by_root(f"{{{ECASE}}}Nope")
    with pytest.raises(UnknownOperationError):
        registry.by_root("{urn:lv:ecase:plus:v2}CourtRuling")
    with pytest.raises(UnknownOperationError):
        registry.by_operation("SubmitNope")
    with pytest.raises(UnknownOperationError):
        registry.by_operation("SubmitCourtRuling", contract="viss")


def test_json_schema_is_draft_2020_12_with_titles(registry: MappingRegistry) -> None:
    schema = registry.get("court_ruling").json_schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"]
    assert schema["additionalProperties"] is False
    assert "message_id" in schema["required"]
    props = schema["properties"]
    function = props["measures"]["items"]["properties"]["function"]
    assert function["enum"] == list(registry.classifiers["function_subtype"].canonical_codes)
    assert len(function["enum"]) == 13  # the 13 function sub-types of OD-09
    assert props["sent_at"]["format"] == "date-time"
    assert props["person"]["properties"]["birth_date"]["format"] == "date"
    assert props["obligations"]["type"] == "array"
    assert props["obligations"]["items"]["required"] == ["code", "text"]
    assert props["criminal_law_sections"]["minItems"] == 1


# ----- bad mapping files ---------------------------------------------------------------------


@pytest.fixture
def mappings_copy(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


def _edit(path: Path, change: dict[str, object] | None = None, **top: object) -> None:
    data = yaml.safe_load(path.read_text("utf-8"))
    data.update(top)
    if change:
        data["fields"][0].update(change)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")


@pytest.mark.parametrize(
    ("change", "top", "key"),
    [
        ({"type": "strng"}, {}, "type"),
        ({"colour": "red"}, {}, "colour"),
        ({"xml": "zz:MessageId"}, {}, "xml"),
        ({"classifier": "no_such_list", "pattern": None}, {}, "classifier"),
        ({"pattern": "[unclosed"}, {}, "pattern"),
        ({"max_length": "long"}, {}, "max_length"),
        (None, {"direction": "sideways"}, "direction"),
        (None, {"partner_message_id": "nope.id"}, "partner_message_id"),
        (None, {"ordering_key": "case"}, "ordering_key"),
        (None, {"operation": None}, "operation"),
        (None, {"bogus": 1}, "bogus"),
    ],
)
def test_bad_mapping_file_names_file_and_key(
    mappings_copy: Path, change: dict[str, object] | None, top: dict[str, object], key: str
) -> None:
    path = mappings_copy / "messages" / "court_ruling.yaml"
    if change and change.get("pattern", 1) is None:
        del change["pattern"]
    _edit(path, change, **top)
    with pytest.raises(ConfigError) as exc:
        MappingRegistry.load(mappings_copy)
    assert "court_ruling.yaml" in str(exc.value)
    assert key in str(exc.value)


def test_duplicate_message_type_is_refused(mappings_copy: Path) -> None:
    messages = mappings_copy / "messages"
    shutil.copy(messages / "court_ruling.yaml", messages / "copy.yaml")
    with pytest.raises(ConfigError, match="message_type"):
        MappingRegistry.load(mappings_copy)


def test_classifier_without_contract_column_is_refused(mappings_copy: Path) -> None:
    path = mappings_copy / "classifiers" / "mediation_outcome.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    del data["codes"][0]["ecase"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(ConfigError) as exc:
        MappingRegistry.load(mappings_copy)
    assert "mediation_result.yaml" in str(exc.value)
    assert "classifier" in str(exc.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('name: mediation_outcome\ntitle: x\nversion: "1"\ncodes: []\n', "codes"),
        ("name: mediation_outcome\ntitle: x\ncodes: [{canonical: a, ecase: A}]\n", "version"),
        (
            "name: mediation_outcome\ntitle: x\nversion: 2026.1\n"
            "codes: [{canonical: a, ecase: A}]\n",
            "version",
        ),
        (
            'name: mediation_outcome\ntitle: x\nversion: "1"\nsource: 7\ncodes: [{canonical: a}]\n',
            "source",
        ),
    ],
)
def test_bad_classifier_file_names_file_and_key(mappings_copy: Path, text: str, key: str) -> None:
    path = mappings_copy / "classifiers" / "mediation_outcome.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as exc:
        MappingRegistry.load(mappings_copy)
    assert "mediation_outcome.yaml" in str(exc.value)
    assert key in str(exc.value)


def test_malformed_yaml_names_file(mappings_copy: Path) -> None:
    (mappings_copy / "messages" / "broken.yaml").write_text("fields: [unclosed\n", "utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        MappingRegistry.load(mappings_copy)


def test_every_derived_schema_is_a_valid_json_schema(registry: MappingRegistry) -> None:
    # Start-up no longer checks the derived schemas; this does, for every mapping.
    from jsonschema import Draft202012Validator

    for mapping in registry.all():
        Draft202012Validator.check_schema(mapping.json_schema)
        Draft202012Validator.check_schema(mapping.request_schema)
