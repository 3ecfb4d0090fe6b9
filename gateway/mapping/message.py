"""One message type: its derived JSON Schema and the two mapping directions."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import date, datetime
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from lxml import etree

from gateway.errors import CanonicalInvalidError, MappingError
from gateway.mapping.spec import (
    ADDRESSEE,
    DATE_PATTERN,
    DATETIME_PATTERN,
    DECIMAL_PATTERN,
    INSTITUTION_PATTERN,
    Field,
    MappingSpec,
)
from gateway.ns import DS

__all__ = ["XML_TEXT_PATTERN", "MessageMapping", "xml_unsafe"]

_DATE_RE = re.compile(DATE_PATTERN)
_DATETIME_RE = re.compile(DATETIME_PATTERN)
_DECIMAL_RE = re.compile(DECIMAL_PATTERN)

#: Text XML 1.0 can carry: no C0 control character but tab, LF and CR, and not U+FFFE/U+FFFF.
#: Published on every string field without a pattern of its own; written with escapes only, so
#: Python, ECMA-262 and Rust regex engines all read it the same way.
XML_TEXT_PATTERN = r"[^\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]*"
#: What we enforce: the same, and no lone surrogate either (a JSON ``\ud800`` escape), which
#: a published pattern cannot name portably (Rust regex has no surrogate code points).
_XML_UNSAFE = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\uD800-\uDFFF\uFFFE\uFFFF]")
_XML_TEXT_MESSAGE = (
    "contains a character XML 1.0 cannot carry (a control character other than tab, "
    "LF and CR, U+FFFE, U+FFFF or a lone surrogate)"
)


def xml_unsafe(value: str) -> bool:
    """True when ``value`` holds a character XML 1.0 cannot carry (see XML_TEXT_PATTERN)."""
    return _XML_UNSAFE.search(value) is not None


def _is_date(value: object) -> bool:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str) or not _DATETIME_RE.fullmatch(value):
        return False
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    offset = parsed.utcoffset()
    if offset is None:
        return False
    # xs:dateTime allows offsets up to +-14:00 with minutes below 60; Python is more lenient
    # (it reads "+02:60" as three hours), so check the text as the XSD does.
    if value.endswith("Z"):
        return True
    hours, minutes = int(value[-5:-3]), int(value[-2:])
    return minutes < 60 and (hours, minutes) <= (14, 0)


# Our own format checker: jsonschema's date-time check needs an optional package, and we want
# exactly the lexical rules the XSD applies, whatever is installed.
_FORMATS = FormatChecker(formats=())
_FORMATS.checks("date")(lambda v: not isinstance(v, str) or _is_date(v))
_FORMATS.checks("date-time")(lambda v: not isinstance(v, str) or _is_datetime(v))


def _anchored(pattern: str) -> str:
    # XSD patterns match the whole value; JSON Schema patterns search, so anchor them.
    return f"^(?:{pattern})$"


@cache
def _full_regex(pattern: str) -> re.Pattern[str]:
    inner = pattern[4:-2] if pattern.startswith("^(?:") and pattern.endswith(")$") else pattern
    if inner == XML_TEXT_PATTERN:
        # The published pattern cannot name lone surrogates; the check refuses them as well.
        return re.compile(r"[^\x00-\x08\x0B\x0C\x0E-\x1F\uD800-\uDFFF\uFFFE\uFFFF]*")
    return re.compile(inner)


def _pattern_keyword(
    validator: Any, pattern: str, instance: object, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    # Python's "$" also matches before a final newline, which the XSD would refuse; fullmatch
    # gives the XSD's whole-value semantics for the anchored patterns we emit.
    if isinstance(instance, str) and not _full_regex(pattern).fullmatch(instance):
        yield ValidationError("does not match the required pattern")


_Validator = validators.extend(Draft202012Validator, {"pattern": _pattern_keyword})


def _scalar_schema(f: Field) -> dict[str, Any]:
    s: dict[str, Any]
    if f.classifier is not None:
        s = {"type": "string", "enum": list(f.classifier.canonical_codes)}
        labels = "; ".join(
            f"{code}: {f.classifier.labels.get(code, {}).get('label_en', code)}"
            for code in f.classifier.canonical_codes
        )
        s["description"] = f"{f.classifier.title}. Codes: {labels}."
    elif f.type == "string":
        s = {"type": "string"}
        if f.min_length is not None:
            s["minLength"] = f.min_length
        if f.max_length is not None:
            s["maxLength"] = f.max_length
        # Free text gets the XML-safe pattern; the XSD patterns are stricter already.
        s["pattern"] = _anchored(f.pattern if f.pattern is not None else XML_TEXT_PATTERN)
    elif f.type == "integer":
        s = {"type": "integer"}
        if f.minimum is not None:
            s["minimum"] = f.minimum
        if f.maximum is not None:
            s["maximum"] = f.maximum
    elif f.type == "decimal":
        s = {"type": "string", "pattern": _anchored(DECIMAL_PATTERN)}
    elif f.type == "boolean":
        s = {"type": "boolean"}
    elif f.type == "date":
        s = {"type": "string", "format": "date", "pattern": _anchored(DATE_PATTERN)}
    else:  # datetime
        s = {"type": "string", "format": "date-time", "pattern": _anchored(DATETIME_PATTERN)}
    return s


def _object_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.json: _field_schema(f) for f in fields},
        "required": [f.json for f in fields if f.required],
        "additionalProperties": False,
    }


def _field_schema(f: Field) -> dict[str, Any]:
    item = _object_schema(f.fields) if f.fields is not None else _scalar_schema(f)
    if f.description and "description" not in item:
        item["description"] = f.description
    if not f.is_list:
        return item
    # An optional list may be sent empty (treated as absent); a required one needs an item.
    s: dict[str, Any] = {"type": "array", "items": item, "minItems": 1 if f.required else 0}
    if f.max_items is not None:
        s["maxItems"] = f.max_items
    if f.description:
        s["description"] = f.description
    return s


def _error_path(error: ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path)


def _error_details(error: ValidationError) -> list[dict[str, str]]:
    """Messages without the offending value: canonical data is personal data."""
    path = _error_path(error)
    kw = error.validator
    value = error.validator_value

    def at(name: str) -> str:
        return f"{path}.{name}" if path else name

    if kw == "required":
        missing = [k for k in value if isinstance(error.instance, dict) and k not in error.instance]
        return [{"path": at(k), "message": "required field is missing"} for k in missing]
    if kw == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return [{"path": at(k), "message": "unknown field"} for k in extra]
    if kw == "enum":
        message = "is not a known code; expected one of " + ", ".join(map(str, value))
    elif kw == "pattern" and value == _anchored(XML_TEXT_PATTERN):
        message = _XML_TEXT_MESSAGE
    else:
        templates = {
            "type": "must be of type {}",
            "pattern": "does not match the required pattern",
            "maxLength": "must be at most {} characters long",
            "minLength": "must be at least {} characters long",
            "minimum": "must be at least {}",
            "maximum": "must be at most {}",
            "minItems": "must have at least {} item(s)",
            "maxItems": "must have at most {} item(s)",
            "format": "is not a valid {}",
        }
        message = templates.get(str(kw), f"fails the {kw} rule").format(value)
    return [{"path": path, "message": message}]


def _with_addressee(schema: dict[str, Any]) -> dict[str, Any]:
    """An outbound message may name its addressee; the gateway resolves it otherwise."""
    out = dict(schema)
    out["properties"] = {
        **schema["properties"],
        ADDRESSEE: {
            "type": "string",
            "pattern": f"^{INSTITUTION_PATTERN}$",
            "description": (
                "Institution to send to; resolved from the message this one answers when omitted"
            ),
        },
    }
    return out


def _request_schema(schema: dict[str, Any], gateway_fields: dict[str, str]) -> dict[str, Any]:
    """The schema PLUS sends against: fields the gateway stamps are optional and read-only."""
    if not gateway_fields:
        return schema
    out = copy.deepcopy(schema)
    out["required"] = [r for r in out.get("required", []) if r not in gateway_fields]
    for name, source in gateway_fields.items():
        prop = out["properties"][name]
        prop["readOnly"] = True
        what = "the gateway's message id" if source == "message_id" else "the time of sending"
        prop["description"] = f"Set by the gateway to {what}; any value sent is replaced."
    return out


class MessageMapping:
    """A message type: metadata, JSON Schema, and canonical JSON <-> wire XML mapping."""

    def __init__(self, spec: MappingSpec) -> None:
        self._spec = spec
        self.message_type = spec.message_type
        self.contract = spec.contract
        self.operation = spec.operation
        self.direction = spec.direction
        self.schema = spec.schema
        self.root = spec.root
        self.title = spec.title
        self.description = spec.description
        self.partner_message_id = spec.partner_message_id
        self.ordering_key = spec.ordering_key
        self.steps: list[str] | None = list(spec.steps) if spec.steps is not None else None
        self.fields = spec.fields
        self.source = spec.source
        self.routing = spec.routing
        self.urgent = spec.urgent
        self.query = spec.query
        #: PLUS may name the addressee of any outbound message (docs/CHANNELS.md).
        self.accepts_addressee = spec.direction == "outbound"
        self._nsmap = dict(spec.nsmap)
        schema = _object_schema(spec.fields)
        if self.accepts_addressee:
            schema = _with_addressee(schema)
        self.json_schema: dict[str, Any] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": spec.title,
            "description": spec.description,
            **schema,
        }
        # The schema is derived by our own code, so it is checked against the metaschema once
        # per mapping in the unit tests, not at every start (it was ~40 % of start-up time).
        self._validator = _Validator(self.json_schema, format_checker=_FORMATS)
        self.gateway_fields = dict(spec.gateway_fields)
        self.request_schema = _request_schema(self.json_schema, self.gateway_fields)

    def __repr__(self) -> str:
        return f"MessageMapping({self.message_type!r})"

    # ----- canonical JSON -------------------------------------------------------------------

    def validate_canonical(self, data: object) -> None:
        """Check ``data`` against the JSON Schema; raise CanonicalInvalidError with paths."""
        errors = sorted(self._validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if not errors:
            return
        details = [d for e in errors for d in _error_details(e)]
        raise CanonicalInvalidError(
            f"canonical {self.message_type} is invalid: {len(details)} problem(s), "
            f"first at {details[0]['path'] or '(root)'}: {details[0]['message']}",
            details=details,
        )

    def split_addressee(self, canonical: Any) -> tuple[Any, str | None]:
        """``canonical`` without its top-level ``addressee``, and the addressee (or None).

        The input is not modified. Messages that take no addressee come back unchanged.
        """
        if not self.accepts_addressee or not isinstance(canonical, dict):
            return canonical, None
        if ADDRESSEE not in canonical:
            return canonical, None
        rest = {k: v for k, v in canonical.items() if k != ADDRESSEE}
        addressee = canonical[ADDRESSEE]
        return rest, addressee if isinstance(addressee, str) else None

    def get_path(self, canonical: object, path: str) -> Any:
        """Value at a dotted path (``case.number``, ``obligations.0.code``), or None."""
        current: Any = canonical
        for part in path.split("."):
            if isinstance(current, dict):
                current = current.get(part)
            elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
                current = current[int(part)]
            else:
                return None
            if current is None:
                return None
        return current

    # ----- canonical -> XML -----------------------------------------------------------------

    def to_xml(self, canonical: dict[str, Any]) -> etree._Element:
        """Build the unsigned payload element from canonical data; raise MappingError."""
        if not isinstance(canonical, dict):
            raise MappingError(f"{self.message_type}: canonical data must be an object")
        root = etree.Element(self.root, nsmap=self._nsmap)
        # The addressee is routing data, not content: it never reaches the wire.
        data, _ = self.split_addressee(canonical)
        self._build(root, self.fields, data, "")
        return root

    def _build(
        self, parent: etree._Element, fields: tuple[Field, ...], data: dict[str, Any], path: str
    ) -> None:
        known = {f.json for f in fields}
        extra = sorted(k for k in data if k not in known)
        if extra:
            raise MappingError(f"{self.message_type}: unknown field {path}{extra[0]}")
        for f in fields:
            value = data.get(f.json)
            where = f"{path}{f.json}"
            if value is None or (f.is_list and value == []):
                if f.required:
                    raise MappingError(f"{self.message_type}: required field {where} is missing")
                continue
            if f.is_list and not isinstance(value, list):
                raise MappingError(f"{self.message_type}: {where} must be a list")
            items = value if f.is_list else [value]
            for i, item in enumerate(items):
                item_path = f"{where}.{i}" if f.is_list else where
                child = etree.SubElement(parent, f.xml)
                if f.fields is not None:
                    if not isinstance(item, dict):
                        raise MappingError(f"{self.message_type}: {item_path} must be an object")
                    self._build(child, f.fields, item, f"{item_path}.")
                else:
                    child.text = self._to_text(f, item, item_path)

    def _to_text(self, f: Field, value: object, path: str) -> str:
        def bad(expected: str) -> MappingError:
            return MappingError(f"{self.message_type}: {path} must be {expected}")

        if f.classifier is not None:
            code = (
                f.classifier.to_wire[self.contract].get(value) if isinstance(value, str) else None
            )
            if code is None:
                raise MappingError(
                    f"{self.message_type}: {path} is not a code of classifier {f.classifier.name}"
                )
            return code
        if f.type == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                raise bad("an integer")
            return str(value)
        if f.type == "boolean":
            if not isinstance(value, bool):
                raise bad("true or false")
            return "true" if value else "false"
        if not isinstance(value, str):
            raise bad("a string")
        if f.type == "decimal" and not _DECIMAL_RE.fullmatch(value):
            raise bad("a decimal number in a string")
        if f.type == "date" and not _is_date(value):
            raise bad("a date YYYY-MM-DD")
        if f.type == "datetime" and not _is_datetime(value):
            raise bad("a date-time with a UTC offset")
        return value

    # ----- XML -> canonical -----------------------------------------------------------------

    def to_canonical(self, element: etree._Element) -> dict[str, Any]:
        """Map a payload element to canonical data (a trailing ds:Signature is ignored)."""
        if element.tag != self.root:
            raise MappingError(f"{self.message_type}: expected root {self.root}, got {element.tag}")
        return self._read(element, self.fields, "")

    def _read(
        self, element: etree._Element, fields: tuple[Field, ...], path: str
    ) -> dict[str, Any]:
        by_tag: dict[str, list[etree._Element]] = {}
        known = {f.xml for f in fields}
        for child in element:
            tag = child.tag
            if not isinstance(tag, str):  # comments and processing instructions
                continue
            if tag.startswith(f"{{{DS}}}"):
                continue
            if tag not in known:
                raise MappingError(
                    f"{self.message_type}: unexpected element {tag} in {path or 'root'}"
                )
            by_tag.setdefault(tag, []).append(child)
        out: dict[str, Any] = {}
        for f in fields:
            where = f"{path}{f.json}"
            found = by_tag.get(f.xml, [])
            if not found:
                if f.required:
                    raise MappingError(
                        f"{self.message_type}: required element for {where} is missing"
                    )
                continue
            if not f.is_list and len(found) > 1:
                raise MappingError(f"{self.message_type}: {where} occurs more than once")
            values = []
            for i, child in enumerate(found):
                item_path = f"{where}.{i}" if f.is_list else where
                if f.fields is not None:
                    values.append(self._read(child, f.fields, f"{item_path}."))
                else:
                    values.append(self._from_text(f, child, item_path))
            out[f.json] = values if f.is_list else values[0]
        return out

    def _from_text(self, f: Field, child: etree._Element, path: str) -> Any:
        if any(isinstance(c.tag, str) for c in child):
            raise MappingError(f"{self.message_type}: {path} must not contain elements")
        text = child.text or ""

        def bad(expected: str) -> MappingError:
            return MappingError(f"{self.message_type}: {path} is not {expected}")

        if f.classifier is not None:
            code = f.classifier.from_wire[self.contract].get(text.strip())
            if code is None:
                raise MappingError(
                    f"{self.message_type}: {path} has a code unknown to classifier "
                    f"{f.classifier.name}"
                )
            return code
        if f.type == "string":
            # Kept exactly: string content is data, and signatures were made over it.
            return text
        value = text.strip()  # XSD collapses whitespace for the non-string types
        if f.type == "integer":
            try:
                return int(value)
            except ValueError:
                raise bad("an integer") from None
        if f.type == "boolean":
            if value in ("true", "1"):
                return True
            if value in ("false", "0"):
                return False
            raise bad("a boolean")
        if f.type == "decimal":
            # Bring XSD decimal lexical forms (+1.50, .5, 5.) to the canonical one without
            # touching significant digits.
            value = value.removeprefix("+")
            sign = "-" if value.startswith("-") else ""
            value = value.removeprefix("-").removesuffix(".")
            if value.startswith("."):
                value = "0" + value
            value = sign + value
            if not _DECIMAL_RE.fullmatch(value):
                raise bad("a decimal")
            return value
        if f.type == "date":
            if not _is_date(value):
                raise bad("a date YYYY-MM-DD")
            return value
        if not _is_datetime(value):
            raise bad("a date-time with a UTC offset")
        return value
