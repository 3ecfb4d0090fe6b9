"""The X-Road style VISS header: built for every request, read back from every response."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from gateway.errors import ConfigError, SchemaValidationError
from gateway.ns import VISS, qname
from gateway.xml import SchemaRegistry

__all__ = ["HEADER_SCHEMA", "VissHeader", "parse_identifier", "read_header"]

HEADER_SCHEMA = "viss/viss.xsd"

_CLIENT_PARTS = ("instance", "memberClass", "memberCode", "subsystemCode")
_SERVICE_PARTS = (*_CLIENT_PARTS, "serviceCode", "serviceVersion")
_SCALARS = ("userId", "id", "protocolVersion", "issue", "purpose", "legalBasis")


def parse_identifier(value: str, *, service: bool, key: str) -> tuple[str, ...]:
    """Split ``LV/GOV/90000000000/PLUS`` (client) or ``.../Service/v1`` (service) into parts."""
    parts = tuple(value.split("/"))
    expected = len(_SERVICE_PARTS if service else _CLIENT_PARTS)
    if len(parts) != expected or not all(parts):
        raise ConfigError(f"{key}: {value!r} must have {expected} parts separated by '/'")
    return parts


@dataclass(frozen=True)
class VissHeader:
    """The header blocks of one VISS message."""

    client: tuple[str, ...]
    service: tuple[str, ...]
    user_id: str
    id: str
    protocol_version: str
    issue: str
    purpose: str
    legal_basis: str

    def elements(self) -> list[etree._Element]:
        """The header blocks as elements, in X-Road order."""
        out = []
        for name, names, values in (
            ("client", _CLIENT_PARTS, self.client),
            ("service", _SERVICE_PARTS, self.service),
        ):
            block = etree.Element(qname(VISS, name), nsmap={"v": VISS})
            for part, value in zip(names, values, strict=True):
                etree.SubElement(block, qname(VISS, part)).text = value
            out.append(block)
        for name, value in zip(_SCALARS, self._scalars(), strict=True):
            block = etree.Element(qname(VISS, name), nsmap={"v": VISS})
            block.text = value
            out.append(block)
        return out

    def _scalars(self) -> tuple[str, ...]:
        return (
            self.user_id,
            self.id,
            self.protocol_version,
            self.issue,
            self.purpose,
            self.legal_basis,
        )

    def serialize(self) -> bytes:
        """The header blocks serialized for :func:`gateway.soap.envelope.build_envelope`."""
        return b"".join(etree.tostring(e, encoding="UTF-8") for e in self.elements())


def read_header(header: etree._Element | None, schemas: SchemaRegistry) -> VissHeader:
    """Validate every VISS header block against the XSD and read them; SchemaValidationError."""
    if header is None:
        raise SchemaValidationError("the message has no SOAP Header with the VISS blocks")
    blocks: dict[str, etree._Element] = {}
    for child in header:
        if not isinstance(child.tag, str) or not child.tag.startswith(f"{{{VISS}}}"):
            continue
        local = etree.QName(child).localname
        if local in blocks:
            raise SchemaValidationError(f"VISS header block {local} occurs more than once")
        schemas.validate(child, HEADER_SCHEMA)
        blocks[local] = child
    missing = [n for n in ("client", "service", *_SCALARS) if n not in blocks]
    if missing:
        raise SchemaValidationError(f"VISS header block {missing[0]} is missing")

    def parts(name: str, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(blocks[name].findtext(qname(VISS, p)) or "" for p in names)

    scalars = [blocks[n].text or "" for n in _SCALARS]
    return VissHeader(parts("client", _CLIENT_PARTS), parts("service", _SERVICE_PARTS), *scalars)
