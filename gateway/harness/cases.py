"""Test cases derived from the contract: the WSDL, the XSDs, the mappings and the samples.

Nothing here names a message type. A case is data: which institution, which operation, what
to send (a sample, a sample broken at one XSD facet, a signature-profile negative, a header
negative) and what must come back (an acknowledgement, an answer, a fault code, an HTTP
status). Adding a message type (XSD element, WSDL operation, mapping, samples, the type in an
institution's ``sends``/``receives``) adds its cases here without a line of test code.

Extra negatives come from the XSD facets through ``xmlschema``: for each message element the
first ``maxLength``, ``pattern``, ``enumeration`` and required element (``minOccurs`` >= 1)
found depth-first gives one case, kept only if ``xmlschema`` agrees that the valid sample is
valid and the broken one is not (a case that cannot fail is no case).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import xmlschema
import yaml
from lxml import etree

from gateway.config import Settings
from gateway.errors import BadInputError, GatewayError, RoutingError
from gateway.mapping import MappingRegistry, MessageMapping
from gateway.xml import SchemaRegistry, XmlLimits, parse_xml

__all__ = [
    "Case",
    "ContractModel",
    "Mutation",
    "WsdlOperation",
    "declared_codes",
    "read_wsdl_operations",
]

_WSDL = "http://schemas.xmlsoap.org/wsdl/"
_SOAP_BINDING = "http://schemas.xmlsoap.org/wsdl/soap/"
_CONTRACT = "ecase"
#: The message id is what every check keys on; breaking it tests nothing else.
_KEEP = ("MessageId",)


@dataclass(frozen=True)
class WsdlOperation:
    """One operation of a WSDL portType: its name and its input and output elements."""

    port_type: str
    name: str
    input: str | None
    output: str | None


@dataclass(frozen=True)
class Mutation:
    """One way to break a valid payload at one XSD facet."""

    facet: str  # maxLength | pattern | enumeration | required
    path: tuple[str, ...]  # Clark names from the payload root (exclusive) to the element
    value: str | None  # the new text; None removes the element
    why: str


@dataclass
class Case:
    """One check: what to send, and what must come back.

    ``expect`` is ``ACCEPTED`` / ``DUPLICATE`` (a signed acknowledgement), ``ANSWER`` (a
    signed query answer), a fault code, or ``HTTP <status>`` (local API).
    """

    id: str
    mode: str
    institution: str
    kind: str
    title: str
    expect: str
    operation: str | None = None
    message_type: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def read_wsdl_operations(root: etree._Element) -> dict[str, list[WsdlOperation]]:
    """Operations per portType of a parsed WSDL, with their input and output elements."""
    messages: dict[str, str | None] = {}
    for message in root.iterfind(f"{{{_WSDL}}}message"):
        part = message.find(f"{{{_WSDL}}}part")
        element = part.get("element") if part is not None else None
        messages[message.get("name", "")] = element.split(":")[-1] if element else None
    out: dict[str, list[WsdlOperation]] = {}
    for port_type in root.iterfind(f"{{{_WSDL}}}portType"):
        ops = []
        for op in port_type.iterfind(f"{{{_WSDL}}}operation"):
            io = {}
            for kind in ("input", "output"):
                found = op.find(f"{{{_WSDL}}}{kind}")
                ref = found.get("message", "") if found is not None else ""
                io[kind] = messages.get(ref.split(":")[-1]) if ref else None
            ops.append(
                WsdlOperation(
                    port_type.get("name", ""), op.get("name", ""), io["input"], io["output"]
                )
            )
        out[port_type.get("name", "")] = ops
    return out


def declared_codes(*, soap: bool) -> frozenset[str]:
    """The stable error codes the project declares (gateway/errors.py) that a sender can
    provoke: on the SOAP side (``soap``) or on the local JSON API."""

    def walk(cls: type[GatewayError]) -> set[type[GatewayError]]:
        found = {cls}
        for sub in cls.__subclasses__():
            found |= walk(sub)
        return found

    json_only = {"CANONICAL_INVALID", "REQUEST_TOO_LARGE", "JSON_TOO_DEEP"}
    codes = set()
    for cls in walk(BadInputError):
        if cls.code in ("BAD_INPUT", "CHANNEL_REFUSED", "ROUTING_FAILED"):
            continue  # abstract parents: never raised themselves
        is_routing = issubclass(cls, RoutingError)
        if soap and (is_routing or cls.code in json_only):
            continue
        if not soap and not (is_routing or cls.code in json_only):
            continue
        codes.add(cls.code)
    return frozenset(codes)


class ContractModel:
    """The contract as the harness reads it (loaded once): WSDL operations, mappings,
    schemas (``xmlschema``), samples and the expected codes of the invalid samples."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limits = XmlLimits(max_bytes=settings.xml.max_bytes)
        self.mappings = MappingRegistry.load(settings.paths.mappings)
        self.samples = Path(settings.paths.samples)
        self.xsd_root = Path(settings.paths.xsd)
        self.wsdl_path = Path(settings.ecase.wsdl)
        self.wsdl_bytes = self.wsdl_path.read_bytes()
        wsdl = parse_xml(self.wsdl_bytes)
        self.operations = read_wsdl_operations(wsdl)
        #: SOAPAction per operation, from the WSDL's bindings.
        self.soap_actions: dict[str, str] = {
            op.get("name", ""): action.get("soapAction", "")
            for op in wsdl.iterfind(f"{{{_WSDL}}}binding/{{{_WSDL}}}operation")
            for action in op.iterfind(f"{{{_SOAP_BINDING}}}operation")
        }
        self._schemas: dict[str, xmlschema.XMLSchema] = {}
        self._valid: dict[str, dict[str, Any]] = {}
        invalid_file = self.samples / "invalid.yaml"
        self.invalid_expect: dict[str, Any] = {}
        if invalid_file.is_file():
            data = yaml.safe_load(invalid_file.read_text("utf-8")) or {}
            self.invalid_expect = _flatten_invalid(data)

    # -- contract lookups -------------------------------------------------------------------

    def ecase_mappings(self) -> list[MessageMapping]:
        """Mappings of the universal E-case contract, by message type."""
        return sorted(
            (m for m in self.mappings.all() if m.contract == _CONTRACT),
            key=lambda m: m.message_type,
        )

    @cached_property
    def gateway_port_type(self) -> str:
        """The portType the gateway serves (the one with the inbound Submit operations)."""
        return self._port_type_of("inbound")

    @cached_property
    def partner_port_type(self) -> str:
        """The portType the platform or a direct institution serves."""
        return self._port_type_of("outbound")

    def _port_type_of(self, direction: str) -> str:
        ops = {m.operation for m in self.ecase_mappings() if m.direction == direction}
        for name, listed in self.operations.items():
            if ops & {o.name for o in listed}:
                return name
        return ""

    def schema(self, mapping: MessageMapping | str) -> xmlschema.XMLSchema:
        """The ``xmlschema`` of a mapping's XSD, or of an XSD by its path under ``xsd/``
        (compiled once)."""
        name = mapping if isinstance(mapping, str) else mapping.schema
        found = self._schemas.get(name)
        if found is None:
            found = xmlschema.XMLSchema(str(self.xsd_root / name))
            self._schemas[name] = found
        return found

    @cached_property
    def header_schemas(self) -> SchemaRegistry:
        """The gateway's own schema registry, for reading E-case header blocks."""
        return SchemaRegistry(self.settings.paths.xsd)

    def mapping_of_root(self, tag: str) -> MessageMapping | None:
        """The E-case message type whose payload element is ``tag`` (Clark notation)."""
        return next((m for m in self.ecase_mappings() if m.root == tag), None)

    def valid_canonical(self, mapping: MessageMapping) -> dict[str, Any]:
        """A fresh copy of the type's valid sample as canonical JSON (valid.json or .xml)."""
        found = self._valid.get(mapping.message_type)
        if found is None:
            folder = self.samples / mapping.message_type
            if (folder / "valid.json").is_file():
                found = json.loads((folder / "valid.json").read_text("utf-8"))
            elif (folder / "valid.xml").is_file():
                found = mapping.to_canonical(parse_xml((folder / "valid.xml").read_bytes()))
            else:
                raise FileNotFoundError(f"no valid sample in {folder}")
            assert isinstance(found, dict)
            self._valid[mapping.message_type] = found
        return copy.deepcopy(found)

    def invalid_samples(self, mapping: MessageMapping, suffix: str) -> list[tuple[Path, str]]:
        """The type's ``invalid-*<suffix>`` samples with their expected codes (invalid.yaml,
        else the convention of tests/samples/README.md: XSD_INVALID / CANONICAL_INVALID)."""
        folder = self.samples / mapping.message_type
        out = []
        for path in sorted(folder.glob(f"invalid-*{suffix}")):
            rel = f"{mapping.message_type}/{path.name}"
            default = "XSD_INVALID" if suffix == ".xml" else "CANONICAL_INVALID"
            entry = self.invalid_expect.get(rel) or {}
            out.append((path, str(entry.get("error", default))))
        return out

    def wire_code(self, mapping: MessageMapping, path: Path, code: str) -> str:
        """The code an invalid XML sample must give *on the wire*: invalid.yaml's, unless its
        root is not the type's element at all (another namespace, say), which no endpoint can
        route: then ``SOAP_UNKNOWN_OPERATION``."""
        try:
            root = parse_xml(path.read_bytes(), self.limits)
        except GatewayError as exc:
            return exc.code
        return code if root.tag == mapping.root else "SOAP_UNKNOWN_OPERATION"

    # -- XSD facet negatives -----------------------------------------------------------------

    def mutations(self, mapping: MessageMapping) -> list[Mutation]:
        """One mutation per facet kind found in the type's element (see module docstring),
        each confirmed by ``xmlschema`` on the valid sample."""
        schema = self.schema(mapping)
        element = schema.elements.get(etree.QName(mapping.root).localname)
        if element is None:
            return []
        try:
            valid = mapping.to_xml(self.valid_canonical(mapping))
        except (FileNotFoundError, GatewayError):
            return []  # no usable valid sample: its valid case fails and says so
        if not schema.is_valid(valid):
            return []
        found: dict[str, Mutation] = {}
        for path, xsd_el in _walk(element, ()):
            for mutation in _candidates(path, xsd_el):
                if mutation.facet in found:
                    continue
                broken = apply_mutation(valid, mutation)
                if broken is not None and not schema.is_valid(broken):
                    found[mutation.facet] = mutation
        return [found[k] for k in ("maxLength", "pattern", "enumeration", "required") if k in found]


def _walk(element: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    xsd_type = getattr(element, "type", None)
    if xsd_type is None or not xsd_type.has_complex_content():
        return out
    for child in xsd_type.content.iter_elements():
        if getattr(child, "type", None) is None or not child.name:
            continue
        here = (*path, child.name)
        out.append((here, child))
        if len(here) < 6:
            out.extend(_walk(child, here))
    return out


def _candidates(path: tuple[str, ...], xsd_el: Any) -> list[Mutation]:
    local = etree.QName(path[-1]).localname
    if local in _KEEP:
        return []
    shown = "/".join(etree.QName(p).localname for p in path)
    t = xsd_el.type
    out = []
    if xsd_el.min_occurs >= 1:
        out.append(Mutation("required", path, None, f"required element {shown} left out"))
    if t.is_simple():
        if getattr(t, "max_length", None):
            n = int(t.max_length)
            out.append(
                Mutation("maxLength", path, "A" * (n + 1), f"{shown} longer than maxLength {n}")
            )
        patterns = getattr(t, "patterns", None)
        if patterns:
            out.append(Mutation("pattern", path, "#§~", f"{shown} does not match its pattern"))
        if t.enumeration:
            out.append(
                Mutation("enumeration", path, "NOT_A_CODE", f"{shown} is not one of its codes")
            )
    return out


def apply_mutation(document: etree._Element, mutation: Mutation) -> etree._Element | None:
    """A broken copy of ``document`` (None if the sample lacks the element)."""
    broken = copy.deepcopy(document)
    target = broken.find("/".join(mutation.path))
    if target is None:
        return None
    if mutation.value is None:
        parent = target.getparent()
        assert parent is not None
        parent.remove(target)
    else:
        if len(target):
            return None
        target.text = mutation.value
    return broken


def _flatten_invalid(data: Any) -> dict[str, Any]:
    """``{"<type>/<file>": entry}`` from tests/samples/invalid.yaml (type -> file -> entry)."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for message_type, files in data.items():
            if isinstance(files, dict):
                for name, entry in files.items():
                    if isinstance(entry, dict) and "error" in entry:
                        out[f"{message_type}/{name}"] = entry
    return out
