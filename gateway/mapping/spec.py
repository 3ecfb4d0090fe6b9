"""The data model of a mapping file and its strict loader.

A mapping file is data only; everything here turns it into immutable, pre-resolved objects
(Clark-notation QNames, compiled regexes, resolved classifiers) so that nothing is parsed per
message. Every problem is a :class:`~gateway.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import ConfigError
from gateway.ns import PREFIXES

__all__ = [
    "ADDRESSEE",
    "DATETIME_PATTERN",
    "DATE_PATTERN",
    "DECIMAL_PATTERN",
    "DIRECTIONS",
    "INSTITUTION_PATTERN",
    "QUERY_DIRECTIONS",
    "ROUTED_DIRECTIONS",
    "SCALAR_TYPES",
    "Classifier",
    "Field",
    "MappingSpec",
    "ReplyTo",
    "Routing",
    "RoutingRule",
    "Urgent",
    "load_classifier",
    "load_spec",
]

SCALAR_TYPES = frozenset({"string", "integer", "decimal", "boolean", "date", "datetime"})
#: inbound: an institution sends to PLUS; outbound: PLUS sends to an institution;
#: query_request: PLUS asks an institution synchronously (canonical JSON -> XML);
#: query_answer: the institution's (or a VISS registry's) answer (XML -> canonical JSON).
DIRECTIONS = frozenset({"inbound", "outbound", "query_request", "query_answer"})
#: Directions that get an asynchronous route; queries are answered within the request.
ROUTED_DIRECTIONS = frozenset({"inbound", "outbound"})
QUERY_DIRECTIONS = frozenset({"query_request", "query_answer"})
#: An institution's name in config.yaml (``tis``, ``em``, ...): also what PLUS
#: may give as ``addressee`` and what a routing rule lists.
INSTITUTION_PATTERN = r"[a-z][a-z0-9_]{0,31}"
#: The optional top-level property of an outbound message naming the institution to send to.
ADDRESSEE = "addressee"
#: What the gateway may stamp into a message: its own message id, or the send time.
GATEWAY_FIELD_SOURCES = frozenset({"message_id", "now"})

# Lexical forms of the canonical side. The XSD's c:Date and c:DateTime carry the same patterns,
# so a value that passes one side passes the other.
DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
DATETIME_PATTERN = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,6})?(Z|[+\-][0-9]{2}:[0-9]{2})"
)
DECIMAL_PATTERN = r"-?[0-9]+(\.[0-9]+)?"

_FIELD_KEYS = frozenset(
    {
        "json",
        "xml",
        "type",
        "required",
        "pattern",
        "min_length",
        "max_length",
        "min",
        "max",
        "classifier",
        "list",
        "max_items",
        "fields",
        "description",
    }
)
_TOP_KEYS = frozenset(
    {
        "gateway_fields",
        "message_type",
        "contract",
        "operation",
        "direction",
        "schema",
        "root",
        "title",
        "description",
        "partner_message_id",
        "ordering_key",
        "steps",
        "namespaces",
        "fields",
        "routing",
        "urgent",
        "query",
    }
)
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_JSON_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Classifier:
    """A versioned code list: PLUS's canonical codes and one column of wire codes per contract.

    The ``ecase`` column holds the E-case shared-classifier code of each entry.
    """

    name: str
    title: str
    #: The code list's version, e.g. "2026.1"; refreshed lists get a new one.
    version: str
    #: The code list's id at the E-case shared-classifier service (VPD.FUNCTION_SUBTYPE).
    source: str | None
    canonical_codes: tuple[str, ...]
    #: contract -> {canonical code -> wire code}
    to_wire: dict[str, dict[str, str]]
    #: contract -> {wire code -> canonical code}
    from_wire: dict[str, dict[str, str]]
    labels: dict[str, dict[str, str]]


@dataclass(frozen=True)
class Field:
    """One element of a message: a scalar, an object (``fields``), or a list of either."""

    json: str
    xml: str  # Clark notation {ns}Local
    xml_prefixed: str  # as written in the mapping file, for messages
    type: str | None  # None for objects
    required: bool
    is_list: bool
    fields: tuple[Field, ...] | None
    pattern: str | None
    regex: re.Pattern[str] | None
    min_length: int | None
    max_length: int | None
    minimum: int | None
    maximum: int | None
    max_items: int | None
    classifier: Classifier | None
    description: str | None


@dataclass(frozen=True)
class ReplyTo:
    """An outbound message answers an inbound one: the field holding that message's id."""

    #: Dotted path of a required string field (``request_message_id``).
    field: str
    #: Inbound message types the referenced message may be.
    types: tuple[str, ...]


@dataclass(frozen=True)
class RoutingRule:
    """Content only some institutions may receive (public work goes to courts only)."""

    field: str
    values: tuple[str, ...]
    institutions: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Routing:
    """How an outbound message finds its addressee (docs/CHANNELS.md, "Reply routing")."""

    reply_to: ReplyTo | None
    rules: tuple[RoutingRule, ...]


@dataclass(frozen=True)
class Urgent:
    """An inbound message is urgent when ``field`` has one of ``values``."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class MappingSpec:
    """A validated mapping file, before the JSON Schema validator is compiled."""

    source: Path
    message_type: str
    #: The classifier column and contract family: ``ecase`` (business messages), ``viss``.
    contract: str
    operation: str
    direction: str
    schema: str
    root: str
    title: str
    description: str
    partner_message_id: str
    ordering_key: str | None
    steps: tuple[str, ...] | None
    #: Top-level canonical fields the gateway fills in itself ("message_id" or "now").
    gateway_fields: dict[str, str]
    nsmap: dict[str, str]
    fields: tuple[Field, ...]
    routing: Routing | None = None
    urgent: Urgent | None = None
    #: Pairs a query_request with its query_answer (both name the same query).
    query: str | None = None


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            # libyaml's safe loader when present: the same safety, ~10x faster at start-up.
            return yaml.load(fh, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML: {exc}") from exc


def _str(path: Path, data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{path}: key {key!r} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: key {key!r} must be a non-empty string")
    return value


def load_classifier(path: Path) -> Classifier:
    """Load one classifier file; raise ConfigError naming the file and key if it is bad.

    Keys: ``name``, ``title``, ``version`` (a string such as "2026.1"), optional ``source``
    (the list's id at the E-case shared-classifier service) and ``description``, and ``codes``:
    one entry per code with ``canonical``, one wire column per contract (``ecase`` ...) and
    ``label_*`` texts.
    """
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a classifier file must be a mapping")
    unknown = set(data) - {"name", "title", "description", "version", "source", "codes"}
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    if "version" in data and not isinstance(data["version"], str):
        # YAML reads 2026.1 as a float (and 2026.10 as 2026.1): a version must be quoted.
        raise ConfigError(f"{path}: key 'version' must be a quoted string such as \"2026.1\"")
    name = _str(path, data, "name")
    title = _str(path, data, "title")
    version = _str(path, data, "version")
    source = _str(path, data, "source", required=False)
    assert name is not None and title is not None and version is not None  # _str raised
    codes = data.get("codes")
    if not isinstance(codes, list) or not codes:
        raise ConfigError(f"{path}: key 'codes' must be a non-empty list")
    canonical: list[str] = []
    to_wire: dict[str, dict[str, str]] = {}
    from_wire: dict[str, dict[str, str]] = {}
    labels: dict[str, dict[str, str]] = {}
    for i, entry in enumerate(codes):
        where = f"{path}: codes[{i}]"
        if not isinstance(entry, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in entry.items()
        ):
            raise ConfigError(f"{where}: must map column names to non-empty strings")
        code = entry.get("canonical")
        if code is None:
            raise ConfigError(f"{where}: key 'canonical' is required")
        if code in canonical:
            raise ConfigError(f"{where}: duplicate canonical code {code!r}")
        canonical.append(code)
        labels[code] = {k: v for k, v in entry.items() if k.startswith("label_")}
        for column, value in entry.items():
            if column == "canonical" or column.startswith("label_") or column == "description":
                continue
            reverse = from_wire.setdefault(column, {})
            if value in reverse:
                raise ConfigError(f"{where}: duplicate {column!r} code {value!r}")
            reverse[value] = code
            to_wire.setdefault(column, {})[code] = value
    return Classifier(
        name=name,
        title=title,
        version=version,
        source=source,
        canonical_codes=tuple(canonical),
        to_wire=to_wire,
        from_wire=from_wire,
        labels=labels,
    )


class _FileContext:
    """What field parsing needs to know about the file it is in."""

    def __init__(
        self,
        path: Path,
        contract: str,
        prefixes: dict[str, str],
        classifiers: dict[str, Classifier],
    ) -> None:
        self.path = path
        self.contract = contract
        self.prefixes = prefixes
        self.classifiers = classifiers
        self.used_prefixes: dict[str, str] = {}

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: key {key!r}: {problem}")

    def clark(self, key: str, prefixed: object) -> str:
        if not isinstance(prefixed, str) or prefixed.count(":") != 1:
            raise self.error(key, "must be a prefixed name like tis:CourtRuling")
        prefix, local = prefixed.split(":")
        if prefix not in self.prefixes:
            raise self.error(key, f"unknown namespace prefix {prefix!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", local):
            raise self.error(key, f"{local!r} is not an XML name")
        self.used_prefixes[prefix] = self.prefixes[prefix]
        return f"{{{self.prefixes[prefix]}}}{local}"


def _opt_int(ctx: _FileContext, where: str, raw: dict[str, Any], key: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ctx.error(f"{where}.{key}", "must be an integer")
    return value


def _parse_field(ctx: _FileContext, where: str, raw: object) -> Field:
    if not isinstance(raw, dict):
        raise ctx.error(where, "a field must be a mapping")
    unknown = set(raw) - _FIELD_KEYS
    if unknown:
        raise ctx.error(f"{where}.{sorted(unknown)[0]}", "unknown key")
    json_name = raw.get("json")
    if not isinstance(json_name, str) or not _JSON_NAME.fullmatch(json_name):
        raise ctx.error(f"{where}.json", "must be a snake_case name")
    where = f"{where}({json_name})"
    xml = ctx.clark(f"{where}.xml", raw.get("xml"))
    for flag in ("required", "list"):
        if not isinstance(raw.get(flag, False), bool):
            raise ctx.error(f"{where}.{flag}", "must be true or false")
    sub_raw = raw.get("fields")
    ftype = raw.get("type")
    sub: tuple[Field, ...] | None = None
    if sub_raw is not None:
        if ftype is not None:
            raise ctx.error(f"{where}.type", "a field with 'fields' is an object and has no type")
        for key in ("pattern", "classifier", "min_length", "max_length", "min", "max"):
            if key in raw:
                raise ctx.error(f"{where}.{key}", "not allowed on an object field")
        sub = _parse_fields(ctx, f"{where}.fields", sub_raw)
    elif ftype not in SCALAR_TYPES:
        raise ctx.error(f"{where}.type", f"must be one of {sorted(SCALAR_TYPES)}")
    if ftype != "string":
        for key in ("pattern", "classifier", "min_length", "max_length"):
            if key in raw:
                raise ctx.error(f"{where}.{key}", "only allowed on string fields")
    if ftype != "integer":
        for key in ("min", "max"):
            if key in raw:
                raise ctx.error(f"{where}.{key}", "only allowed on integer fields")
    if "max_items" in raw and not raw.get("list"):
        raise ctx.error(f"{where}.max_items", "only allowed on list fields")
    pattern = raw.get("pattern")
    regex = None
    if pattern is not None:
        if not isinstance(pattern, str):
            raise ctx.error(f"{where}.pattern", "must be a string")
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ctx.error(f"{where}.pattern", f"does not compile: {exc}") from exc
    classifier = None
    if "classifier" in raw:
        name = raw["classifier"]
        if not isinstance(name, str) or name not in ctx.classifiers:
            raise ctx.error(f"{where}.classifier", f"unknown classifier {name!r}")
        classifier = ctx.classifiers[name]
        column = classifier.to_wire.get(ctx.contract, {})
        missing = [c for c in classifier.canonical_codes if c not in column]
        if missing:
            raise ctx.error(
                f"{where}.classifier",
                f"classifier {name!r} has no {ctx.contract!r} code for {missing[0]!r}",
            )
        if pattern is not None:
            raise ctx.error(f"{where}.pattern", "a classifier field takes no pattern")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise ctx.error(f"{where}.description", "must be a string")
    min_length = _opt_int(ctx, where, raw, "min_length")
    if ftype == "string" and min_length is None and classifier is None:
        # An empty element reads back as absent-ish text and our XSD text types all have
        # minLength 1, so empty strings are refused unless a mapping says otherwise.
        min_length = 1
    return Field(
        json=json_name,
        xml=xml,
        xml_prefixed=str(raw["xml"]),
        type=ftype if sub is None else None,
        required=bool(raw.get("required", False)),
        is_list=bool(raw.get("list", False)),
        fields=sub,
        pattern=pattern,
        regex=regex,
        min_length=min_length,
        max_length=_opt_int(ctx, where, raw, "max_length"),
        minimum=_opt_int(ctx, where, raw, "min"),
        maximum=_opt_int(ctx, where, raw, "max"),
        max_items=_opt_int(ctx, where, raw, "max_items"),
        classifier=classifier,
        description=description,
    )


def _parse_fields(ctx: _FileContext, where: str, raw: object) -> tuple[Field, ...]:
    if not isinstance(raw, list) or not raw:
        raise ctx.error(where, "must be a non-empty list of fields")
    fields = tuple(_parse_field(ctx, f"{where}[{i}]", item) for i, item in enumerate(raw))
    seen_json: set[str] = set()
    seen_xml: set[str] = set()
    for f in fields:
        if f.json in seen_json:
            raise ctx.error(f"{where}.{f.json}", "duplicate json name")
        if f.xml in seen_xml:
            raise ctx.error(f"{where}.{f.json}", f"duplicate xml element {f.xml_prefixed}")
        seen_json.add(f.json)
        seen_xml.add(f.xml)
    return fields


def _check_path(
    ctx: _FileContext,
    key: str,
    fields: tuple[Field, ...],
    path: object,
    *,
    required: bool = False,
    string: bool = False,
) -> Field:
    """The scalar field a dotted ``path`` names, reached through single-valued objects.

    ``required``: every step must be required (the value is always there); ``string``: the
    field must hold a string. Raises ConfigError naming ``key`` otherwise.
    """
    if not isinstance(path, str) or not path:
        raise ctx.error(key, "must be a dotted field path such as case.number")
    current: tuple[Field, ...] | None = fields
    parts = path.split(".")
    match: Field | None = None
    for i, part in enumerate(parts):
        match = next((f for f in current or () if f.json == part), None)
        if match is None:
            raise ctx.error(key, f"no field {'.'.join(parts[: i + 1])!r}")
        if match.is_list:
            raise ctx.error(key, f"{part!r} is a list; the path must be single-valued")
        if required and not match.required:
            raise ctx.error(key, f"{'.'.join(parts[: i + 1])!r} is not a required field")
        current = match.fields
    assert match is not None  # parts is never empty
    if match.fields is not None:
        raise ctx.error(key, f"{path!r} is an object, not a value")
    if string and match.type != "string":
        raise ctx.error(key, f"{path!r} is not a string field")
    return match


def _name_list(
    ctx: _FileContext, key: str, raw: object, pattern: str | None = None
) -> tuple[str, ...]:
    """A non-empty list of distinct non-empty strings (each matching ``pattern`` if given)."""
    if not isinstance(raw, list) or not raw:
        raise ctx.error(key, "must be a non-empty list")
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not item.strip():
            raise ctx.error(f"{key}[{i}]", "must be a non-empty string")
        if pattern is not None and not re.fullmatch(pattern, item):
            raise ctx.error(f"{key}[{i}]", f"{item!r} does not match {pattern}")
    if len(set(raw)) != len(raw):
        raise ctx.error(key, "lists a value twice")
    return tuple(raw)


def _keys(
    ctx: _FileContext, key: str, raw: object, allowed: set[str], needed: set[str]
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ctx.error(key, "must be a mapping")
    unknown = set(raw) - allowed
    if unknown:
        raise ctx.error(f"{key}.{sorted(unknown)[0]}", "unknown key")
    missing = needed - set(raw)
    if missing:
        raise ctx.error(f"{key}.{sorted(missing)[0]}", "is required")
    return raw


def _field_values(
    ctx: _FileContext, key: str, fields: tuple[Field, ...], raw: dict[str, Any]
) -> tuple[str, tuple[str, ...]]:
    """``field`` and ``values`` of a routing rule or urgency: values the field can hold."""
    f = _check_path(ctx, f"{key}.field", fields, raw.get("field"), string=True)
    values = _name_list(ctx, f"{key}.values", raw.get("values"))
    for i, value in enumerate(values):
        # A value the field can never hold is a typo that would silently never match.
        if f.classifier is not None and value not in f.classifier.canonical_codes:
            raise ctx.error(
                f"{key}.values[{i}]", f"{value!r} is not a code of classifier {f.classifier.name}"
            )
        if f.regex is not None and not f.regex.fullmatch(value):
            raise ctx.error(f"{key}.values[{i}]", f"{value!r} does not match the field's pattern")
    return str(raw["field"]), values


def _parse_routing(ctx: _FileContext, fields: tuple[Field, ...], raw: object) -> Routing:
    data = _keys(ctx, "routing", raw, {"reply_to", "rules"}, set())
    if not data:
        raise ctx.error("routing", "needs reply_to, rules or both")
    reply_to = None
    if "reply_to" in data:
        r = _keys(ctx, "routing.reply_to", data["reply_to"], {"field", "types"}, {"field", "types"})
        _check_path(ctx, "routing.reply_to.field", fields, r["field"], required=True, string=True)
        types = _name_list(ctx, "routing.reply_to.types", r["types"])
        reply_to = ReplyTo(field=str(r["field"]), types=types)
    rules: list[RoutingRule] = []
    if "rules" in data:
        raw_rules = data["rules"]
        if not isinstance(raw_rules, list) or not raw_rules:
            raise ctx.error("routing.rules", "must be a non-empty list")
        for i, item in enumerate(raw_rules):
            key = f"routing.rules[{i}]"
            rule = _keys(
                ctx,
                key,
                item,
                {"field", "values", "institutions", "reason"},
                {"field", "values", "institutions", "reason"},
            )
            field, values = _field_values(ctx, key, fields, rule)
            institutions = _name_list(
                ctx, f"{key}.institutions", rule["institutions"], INSTITUTION_PATTERN
            )
            reason = rule["reason"]
            if not isinstance(reason, str) or not reason.strip():
                raise ctx.error(f"{key}.reason", "must be a non-empty string")
            rules.append(RoutingRule(field, values, institutions, reason.strip()))
    return Routing(reply_to=reply_to, rules=tuple(rules))


def _parse_urgent(ctx: _FileContext, fields: tuple[Field, ...], raw: object) -> Urgent:
    data = _keys(ctx, "urgent", raw, {"field", "values"}, {"field", "values"})
    field, values = _field_values(ctx, "urgent", fields, data)
    return Urgent(field=field, values=values)


def load_spec(path: Path, classifiers: dict[str, Classifier]) -> MappingSpec:
    """Load and check one mapping file against the format; raise ConfigError naming the key."""
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a mapping file must be a mapping")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: key {sorted(unknown)[0]!r}: unknown key")
    values = {
        key: _str(path, data, key)
        for key in (
            "message_type",
            "contract",
            "operation",
            "direction",
            "schema",
            "root",
            "title",
            "partner_message_id",
        )
    }
    description = _str(path, data, "description", required=False) or ""
    ordering_key = _str(path, data, "ordering_key", required=False)
    direction = values["direction"]
    if direction not in DIRECTIONS:
        raise ConfigError(f"{path}: key 'direction': must be one of {sorted(DIRECTIONS)}")
    steps = data.get("steps")
    if steps is not None and (
        not isinstance(steps, list) or not all(isinstance(s, str) and s for s in steps)
    ):
        raise ConfigError(f"{path}: key 'steps': must be a list of step names")
    prefixes = dict(PREFIXES)
    extra = data.get("namespaces") or {}
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        raise ConfigError(f"{path}: key 'namespaces': must map prefixes to namespace URIs")
    prefixes.update(extra)
    contract = values["contract"]
    assert contract is not None  # _str raised otherwise
    if not _JSON_NAME.fullmatch(contract):
        raise ConfigError(f"{path}: key 'contract': must be a lower-case name such as ecase")
    ctx = _FileContext(path, contract, prefixes, classifiers)
    root = ctx.clark("root", values["root"])
    fields = _parse_fields(ctx, "fields", data.get("fields"))
    pmid = values["partner_message_id"]
    assert pmid is not None
    _check_path(ctx, "partner_message_id", fields, pmid)
    if ordering_key is not None:
        _check_path(ctx, "ordering_key", fields, ordering_key)
    gateway_fields = data.get("gateway_fields") or {}
    top_level = {f.json: f for f in fields}
    if not isinstance(gateway_fields, dict):
        raise ConfigError(f"{path}: key 'gateway_fields': must map field names to sources")
    for name, source in gateway_fields.items():
        if source not in GATEWAY_FIELD_SOURCES:
            raise ConfigError(
                f"{path}: key 'gateway_fields.{name}': must be one of "
                f"{sorted(GATEWAY_FIELD_SOURCES)}"
            )
        if name not in top_level or top_level[name].fields is not None:
            raise ConfigError(f"{path}: key 'gateway_fields.{name}': not a top-level value field")
    if direction == "outbound" and ADDRESSEE in top_level:
        # PLUS may add "addressee" to any outbound message; the name is not free for content.
        raise ConfigError(f"{path}: key 'fields.{ADDRESSEE}': reserved on outbound messages")
    routing = urgent = query = None
    if "routing" in data:
        if direction != "outbound":
            raise ConfigError(f"{path}: key 'routing': only outbound messages are routed")
        routing = _parse_routing(ctx, fields, data["routing"])
    if "urgent" in data:
        if direction != "inbound":
            raise ConfigError(f"{path}: key 'urgent': only inbound messages can be urgent")
        urgent = _parse_urgent(ctx, fields, data["urgent"])
    if "query" in data:
        if direction not in QUERY_DIRECTIONS:
            raise ConfigError(f"{path}: key 'query': only on {sorted(QUERY_DIRECTIONS)} mappings")
        query = data["query"]
        if not isinstance(query, str) or not _JSON_NAME.fullmatch(query):
            raise ConfigError(f"{path}: key 'query': must be a snake_case name")
    return MappingSpec(
        source=path,
        message_type=str(values["message_type"]),
        contract=contract,
        operation=str(values["operation"]),
        direction=str(direction),
        schema=str(values["schema"]),
        root=root,
        title=str(values["title"]),
        description=description.strip(),
        partner_message_id=pmid,
        ordering_key=ordering_key,
        steps=tuple(steps) if steps is not None else None,
        gateway_fields={str(k): str(v) for k, v in gateway_fields.items()},
        nsmap=dict(ctx.used_prefixes),
        fields=fields,
        routing=routing,
        urgent=urgent,
        query=query,
    )
