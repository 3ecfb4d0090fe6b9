"""X-Road style SOAP header blocks: one implementation for the E-case channel and VISS.

Both platforms route by the same model: every message carries separate header blocks naming
the ``client`` (the sender), the ``service`` (the addressee's identifier plus service code and
version), the ``userId`` on whose behalf it is sent, the message ``id`` and the
``protocolVersion``. A channel adds its own scalar blocks after these (VISS: ``issue``,
``purpose``, ``legalBasis``). A :class:`HeaderProfile` names the channel's namespace, schema
and extra blocks; everything else is shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from gateway.errors import ConfigError, HeaderError, SchemaValidationError
from gateway.xml import SchemaRegistry

__all__ = [
    "CLIENT_PARTS",
    "SERVICE_PARTS",
    "HeaderProfile",
    "XRoadHeader",
    "format_identifier",
    "parse_identifier",
    "read_header",
]

CLIENT_PARTS = ("instance", "memberClass", "memberCode", "subsystemCode")
SERVICE_PARTS = (*CLIENT_PARTS, "serviceCode", "serviceVersion")
_COMMON_SCALARS = ("userId", "id", "protocolVersion")


def parse_identifier(value: str, *, service: bool, key: str) -> tuple[str, ...]:
    """Split ``LV/GOV/90000000000/PLUS`` (client) or ``.../Service/v1`` (service) into parts."""
    parts = tuple(value.split("/"))
    expected = len(SERVICE_PARTS if service else CLIENT_PARTS)
    if len(parts) != expected or not all(parts):
        raise ConfigError(f"{key}: {value!r} must have {expected} parts separated by '/'")
    return parts


def format_identifier(parts: tuple[str, ...]) -> str:
    """The inverse of :func:`parse_identifier`: ``LV/GOV/90000000000/PLUS``."""
    return "/".join(parts)


@dataclass(frozen=True)
class HeaderProfile:
    """One channel's header: its namespace, the XSD of its blocks, its extra scalar blocks."""

    channel: str
    namespace: str
    schema: str
    #: Local names of the channel's own scalar blocks, in the order they are written.
    extras: tuple[str, ...] = ()

    def qname(self, local: str) -> str:
        """Clark name of a block or part in this profile's namespace."""
        return f"{{{self.namespace}}}{local}"


@dataclass(frozen=True)
class XRoadHeader:
    """The header blocks of one message."""

    profile: HeaderProfile = field(repr=False)
    client: tuple[str, ...]
    service: tuple[str, ...]
    user_id: str
    id: str
    protocol_version: str
    #: (local name, value) of the profile's extra blocks, in the profile's order.
    extras: tuple[tuple[str, str], ...] = ()

    def extra(self, name: str) -> str:
        """Value of the extra block ``name`` (e.g. VISS ``purpose``)."""
        for key, value in self.extras:
            if key == name:
                return value
        raise KeyError(name)

    @property
    def addressee(self) -> tuple[str, ...]:
        """The member part of ``service``: whom the message is for."""
        return self.service[: len(CLIENT_PARTS)]

    @property
    def service_code(self) -> str:
        """The service code (the operation) named by ``service``."""
        return self.service[len(CLIENT_PARTS)]

    @property
    def service_version(self) -> str:
        """The contract version named by ``service``."""
        return self.service[len(CLIENT_PARTS) + 1]

    def replace_id(self, new_id: str) -> XRoadHeader:
        """The same header with another message id (an answer echoes the request's)."""
        return XRoadHeader(
            self.profile,
            self.client,
            self.service,
            self.user_id,
            new_id,
            self.protocol_version,
            self.extras,
        )

    def elements(self) -> list[etree._Element]:
        """The header blocks as elements, in X-Road order."""
        p = self.profile
        out = []
        for name, names, values in (
            ("client", CLIENT_PARTS, self.client),
            ("service", SERVICE_PARTS, self.service),
        ):
            block = etree.Element(p.qname(name), nsmap={"h": p.namespace})
            for part, value in zip(names, values, strict=True):
                etree.SubElement(block, p.qname(part)).text = value
            out.append(block)
        scalars = (
            ("userId", self.user_id),
            ("id", self.id),
            ("protocolVersion", self.protocol_version),
            *self.extras,
        )
        for name, value in scalars:
            block = etree.Element(p.qname(name), nsmap={"h": p.namespace})
            block.text = value
            out.append(block)
        return out

    def serialize(self) -> bytes:
        """The header blocks serialized for :func:`gateway.soap.envelope.build_envelope`."""
        return b"".join(etree.tostring(e, encoding="UTF-8") for e in self.elements())


def read_header(
    header: etree._Element | None, profile: HeaderProfile, schemas: SchemaRegistry
) -> XRoadHeader:
    """Validate every block of ``profile`` against its XSD and read them; HeaderError if bad.

    Blocks of other namespaces are left to the caller (SOAP mustUnderstand handling).
    """
    if header is None:
        raise HeaderError(f"the message has no SOAP Header with the {profile.channel} blocks")
    prefix = f"{{{profile.namespace}}}"
    blocks: dict[str, etree._Element] = {}
    for child in header:
        if not isinstance(child.tag, str) or not child.tag.startswith(prefix):
            continue
        local = etree.QName(child).localname
        if local in blocks:
            raise HeaderError(f"{profile.channel} header block {local} occurs more than once")
        try:
            schemas.validate(child, profile.schema)
        except SchemaValidationError as exc:
            raise HeaderError(
                f"{profile.channel} header block {local} is invalid: {exc.message}",
                details=[{"path": f"header.{local}"}],
            ) from exc
        blocks[local] = child
    expected = ("client", "service", *_COMMON_SCALARS, *profile.extras)
    missing = [n for n in expected if n not in blocks]
    if missing:
        raise HeaderError(
            f"{profile.channel} header block {missing[0]} is missing",
            details=[{"path": f"header.{missing[0]}"}],
        )

    def parts(name: str, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(blocks[name].findtext(profile.qname(p)) or "" for p in names)

    return XRoadHeader(
        profile,
        parts("client", CLIENT_PARTS),
        parts("service", SERVICE_PARTS),
        blocks["userId"].text or "",
        blocks["id"].text or "",
        blocks["protocolVersion"].text or "",
        tuple((n, blocks[n].text or "") for n in profile.extras),
    )
