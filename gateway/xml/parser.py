"""Hardened XML parsing with bounded cost.

Defaults are those of a hostile network: no DTD (a DOCTYPE is refused outright, which also
refuses every entity declaration), no entity expansion, no network access, no XInclude (never
processed), a byte-size cap and libxml2's default depth limit (256; ``huge_tree`` stays off).

On top of that every document must stay within structural limits (:class:`XmlLimits`), checked
*while* parsing, before anything canonicalises, re-serialises or verifies it. Those steps cost
far more per node than parsing does (exclusive c14n is quadratic in attributes per element and
in namespaces in scope), and a parsed tree costs 100+ bytes per node: a few MB of ``<a/>``
would otherwise become hundreds of MB of tree. So:

* elements (with comments and processing instructions) are counted as the parser produces
  them, and parsing stops at the first one over the limit, with the rest of the input unread;
* attributes per element and in total, namespace declarations per element and in scope, and
  attribute value sizes are checked on each start tag;
* before parsing, one pass over the bytes refuses a single start tag with thousands of
  attributes or declarations, which libxml2 would otherwise materialise in full (~250 bytes
  each) before the first check could run;
* text node sizes are checked on the finished (bounded) tree, only when the document is large
  enough to hold an oversized one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, fields
from typing import Any

from lxml import etree

from gateway.errors import (
    XmlCommentOrPiError,
    XmlForbiddenError,
    XmlLimitError,
    XmlMalformedError,
    XmlTooLargeError,
)
from gateway.logging import mask_text

__all__ = [
    "DEFAULT_MAX_BYTES",
    "XmlLimits",
    "parse_xml",
    "refuse_comments_and_pis",
    "serialize",
]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024

# A DOCTYPE can only appear in the prolog, but the prolog may be in any encoding the XML
# declaration names; these cover UTF-8/ASCII/Latin and both UTF-16 byte orders.
_DOCTYPE_MARKERS = (
    b"<!DOCTYPE",
    "<!DOCTYPE".encode("utf-16-le"),
    "<!DOCTYPE".encode("utf-16-be"),
    b"<!ENTITY",
)

# The pre-parse guard refuses a run of bytes without "<" (a start tag can hold no "<") that
# holds more "=" than this: more attributes and declarations in one tag than any real message
# carries, and few enough (~2.5 MB of parsed attributes) that memory stays bounded even if
# the "=" were in text. The exact per-element limits are checked during parsing.
_MIN_TAG_GATE = 10_000

_EVENTS = ("start", "start-ns", "end-ns", "comment", "pi")


@dataclass(frozen=True)
class XmlLimits:
    """Limits applied to every parsed document (see ``XmlSettings`` for the configuration).

    The defaults leave wide room for every real message (the XSDs cap text at 4,000
    characters; a court ruling has about 40 elements) while keeping the worst case of a
    10 MB request under a second and under 100 MB.
    """

    #: Bytes in the document (the HTTP body).
    max_bytes: int = DEFAULT_MAX_BYTES
    #: Elements, comments and processing instructions in the document.
    max_elements: int = 20_000
    #: Attributes on one element (namespace declarations not included).
    max_attributes: int = 64
    #: Attributes in the whole document.
    max_total_attributes: int = 50_000
    #: Namespace declarations on one element.
    max_namespaces: int = 32
    #: Namespace declarations in scope at any element (its own and its ancestors').
    max_namespaces_in_scope: int = 64
    #: Characters in one text node (element text or tail, comment, processing instruction).
    max_text: int = 1024 * 1024
    #: Characters in one attribute value.
    max_attribute_value: int = 64 * 1024
    #: X509Certificate elements in a signature's KeyInfo (checked by the trust store).
    max_certificates: int = 4

    @classmethod
    def from_settings(cls, settings: Any) -> XmlLimits:
        """Limits from ``Settings.xml`` (an ``XmlSettings``); fields it lacks keep defaults."""
        values = {
            f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)
        }
        return cls(**values)


def _limit(limits: XmlLimits, name: str, message: str, path: str = "") -> XmlLimitError:
    value = getattr(limits, name)
    return XmlLimitError(
        mask_text(f"{message} (limit {name}={value})"),
        details=[{"path": mask_text(path), "limit": name, "max": value}],
    )


def _name(element: etree._Element) -> str:
    # Local names only, masked: an attacker chooses them, and a tag can spell a personal code.
    tag = element.tag
    if not isinstance(tag, str):
        return "(comment or processing instruction)"
    return mask_text(tag.rsplit("}", 1)[-1])


def _guard_start_tags(data: bytes, limits: XmlLimits) -> None:
    gate = max(_MIN_TAG_GATE, 2 * (limits.max_attributes + limits.max_namespaces))
    if data.count(b"=") <= gate:
        return
    # A run of more than `gate` "=" is longer than `gate` bytes, so it contains a whole aligned
    # window of gate // 2 bytes without "<": only such windows need a closer look. About 2,000
    # bounded C-level searches for 10 MB.
    window = gate // 2
    position, size = 0, len(data)
    while position < size:
        end = min(position + window, size)
        if data.find(b"<", position, end) != -1:
            position = end
            continue
        start = data.rfind(b"<", 0, position)
        stop = data.find(b"<", end)
        stop = size if stop == -1 else stop
        if data.count(b"=", max(start, 0), stop) > gate:
            raise _limit(
                limits,
                "max_attributes",
                f"a start tag carries more than {gate} attributes and namespace declarations",
            )
        position = stop


def _parse_counted(data: bytes, limits: XmlLimits) -> etree._Element:
    context = etree.iterparse(
        io.BytesIO(data),
        events=_EVENTS,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        remove_comments=False,
        remove_pis=False,
        collect_ids=False,
    )
    nodes = total_attributes = declared = in_scope = 0
    check_values = len(data) > limits.max_attribute_value
    for event, item in context:
        if event == "start":
            nodes += 1
            if nodes > limits.max_elements:
                # Stop here: the rest of the input is never parsed into a tree.
                raise _limit(limits, "max_elements", "the document has too many elements")
            if declared > limits.max_namespaces:
                raise _limit(
                    limits,
                    "max_namespaces",
                    f"element {_name(item)} declares {declared} namespaces",
                    _name(item),
                )
            declared = 0
            if in_scope > limits.max_namespaces_in_scope:
                raise _limit(
                    limits,
                    "max_namespaces_in_scope",
                    f"element {_name(item)} has {in_scope} namespace declarations in scope",
                    _name(item),
                )
            count = len(item.attrib)
            if count:
                if count > limits.max_attributes:
                    raise _limit(
                        limits,
                        "max_attributes",
                        f"element {_name(item)} has {count} attributes",
                        _name(item),
                    )
                total_attributes += count
                if total_attributes > limits.max_total_attributes:
                    raise _limit(
                        limits, "max_total_attributes", "the document has too many attributes"
                    )
                if check_values and any(len(v) > limits.max_attribute_value for v in item.values()):
                    raise _limit(
                        limits,
                        "max_attribute_value",
                        f"an attribute value of element {_name(item)} is too long",
                        _name(item),
                    )
        elif event == "start-ns":
            declared += 1
            in_scope += 1
        elif event == "end-ns":
            in_scope -= 1
        else:  # a comment or processing instruction: a node like any other
            nodes += 1
            if nodes > limits.max_elements:
                raise _limit(limits, "max_elements", "the document has too many elements")
    root: etree._Element = context.root
    return root


def _check_text(root: etree._Element, limits: XmlLimits) -> None:
    limit = limits.max_text
    # The prolog and epilog (comments, processing instructions) count as well.
    nodes = [*root.itersiblings(preceding=True), *root.iter(), *root.itersiblings()]
    for node in nodes:
        text, tail = node.text, node.tail
        if (text is not None and len(text) > limit) or (tail is not None and len(tail) > limit):
            raise _limit(
                limits, "max_text", f"a text node in {_name(node)} is too long", _name(node)
            )


def parse_xml(data: bytes, limits: XmlLimits | None = None) -> etree._Element:
    """Parse untrusted bytes into an element tree and return its root element.

    Raises :class:`~gateway.errors.XmlTooLargeError` past the size cap or depth limit,
    :class:`~gateway.errors.XmlLimitError` past a structural limit of ``limits``,
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
    data = bytes(data)
    _guard_start_tags(data, limits)
    try:
        root = _parse_counted(data, limits)
    except etree.XMLSyntaxError as exc:
        # libxml2's messages name elements and may quote a few bytes of content.
        text = mask_text(str(exc))
        if "depth" in text.lower() or "huge" in text.lower():
            raise XmlTooLargeError(f"document nests too deeply or is too large: {text}") from exc
        raise XmlMalformedError(f"not well-formed XML: {text}") from exc
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        # Belt and braces: a marker hidden by an exotic encoding still ends here.
        raise XmlForbiddenError("DOCTYPE and entity declarations are not accepted")
    if len(data) > limits.max_text:
        # A smaller document cannot hold an oversized text node: no walk for real traffic.
        _check_text(root, limits)
    return root


def refuse_comments_and_pis(element: etree._Element, where: str, *, comments: bool = True) -> None:
    """Refuse comments (unless ``comments`` is False) and processing instructions in ``element``.

    Business text must be read exactly as it was validated: in ``150390<?x?>-12345`` the
    element's ``.text`` is ``150390``, while XSD validation and c14n see the whole value.
    Raises :class:`~gateway.errors.XmlCommentOrPiError` naming the parent element.
    """
    kinds = (etree.Comment, etree.ProcessingInstruction) if comments else (etree.PI,)
    for node in element.iter(*kinds):
        what = "processing instruction" if node.tag is etree.PI else "comment"
        parent = node.getparent()
        inside = _name(parent) if parent is not None else "(document)"
        raise XmlCommentOrPiError(
            f"a {what} is not accepted in {where} (inside element {inside})",
            details=[{"path": inside, "kind": what}],
        )


def serialize(element: etree._Element, *, declaration: bool = True) -> bytes:
    """Serialize an element to UTF-8 bytes (no pretty printing: signatures depend on bytes)."""
    return etree.tostring(element, encoding="UTF-8", xml_declaration=declaration)
