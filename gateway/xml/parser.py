"""Hardened XML parsing.

Defaults are those of a hostile network: no DTD (a DOCTYPE is refused outright, which also
refuses every entity declaration), no entity expansion, no network access, no XInclude (never
processed), a byte-size cap and libxml2's default depth limit (``huge_tree`` stays off).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lxml import etree

from gateway.errors import XmlForbiddenError, XmlMalformedError, XmlTooLargeError

__all__ = ["DEFAULT_MAX_BYTES", "XmlLimits", "parse_xml", "serialize"]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024

# A DOCTYPE can only appear in the prolog, but the prolog may be in any encoding the XML
# declaration names; these cover UTF-8/ASCII/Latin and both UTF-16 byte orders.
_DOCTYPE_MARKERS = (
    b"<!DOCTYPE",
    "<!DOCTYPE".encode("utf-16-le"),
    "<!DOCTYPE".encode("utf-16-be"),
    b"<!ENTITY",
)


@dataclass(frozen=True)
class XmlLimits:
    """Limits applied to every parsed document."""

    max_bytes: int = DEFAULT_MAX_BYTES


_local = threading.local()


def _parser() -> etree.XMLParser:
    # One parser per thread: lxml parsers hold per-parse state and error logs.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


def parse_xml(data: bytes, limits: XmlLimits | None = None) -> etree._Element:
    """Parse untrusted bytes into an element tree and return its root element.

    Raises :class:`~gateway.errors.XmlTooLargeError` past the size cap or depth limit,
    :class:`~gateway.errors.XmlForbiddenError` for a DOCTYPE or entity declaration, and
    :class:`~gateway.errors.XmlMalformedError` for anything that is not well-formed.
    """
    limits = limits or XmlLimits()
    if not isinstance(data, bytes | bytearray):
        raise TypeError("parse_xml takes bytes; decoding is the parser's job")
    if len(data) > limits.max_bytes:
        raise XmlTooLargeError(
            f"document is {len(data)} bytes, larger than the limit of {limits.max_bytes}"
        )
    if not data.strip():
        raise XmlMalformedError("empty document")
    if any(marker in data for marker in _DOCTYPE_MARKERS):
        raise XmlForbiddenError("DOCTYPE and entity declarations are not accepted")
    try:
        root = etree.fromstring(bytes(data), parser=_parser())
    except etree.XMLSyntaxError as exc:
        text = str(exc)
        if "depth" in text.lower() or "huge" in text.lower():
            raise XmlTooLargeError(f"document nests too deeply: {text}") from exc
        raise XmlMalformedError(f"not well-formed XML: {text}") from exc
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        # Belt and braces: a marker hidden by an exotic encoding still ends here.
        raise XmlForbiddenError("DOCTYPE and entity declarations are not accepted")
    return root


def serialize(element: etree._Element, *, declaration: bool = True) -> bytes:
    """Serialize an element to UTF-8 bytes (no pretty printing: signatures depend on bytes)."""
    return etree.tostring(element, encoding="UTF-8", xml_declaration=declaration)
