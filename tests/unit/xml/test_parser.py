from __future__ import annotations

import pytest

from gateway.errors import XmlForbiddenError, XmlMalformedError, XmlTooLargeError
from gateway.xml import XmlLimits, parse_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>"""


def test_parses_plain_xml() -> None:
    root = parse_xml(b"<a xmlns='urn:x'><b>t\xc4\x81</b></a>")
    assert root.tag == "{urn:x}a"
    assert root[0].text == "tā"


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL_ENTITY, b"<!DOCTYPE a><a/>"])
def test_doctype_and_entities_refused(doc: bytes) -> None:
    with pytest.raises(XmlForbiddenError) as info:
        parse_xml(doc)
    assert info.value.code == "XML_FORBIDDEN"


def test_doctype_in_utf16_refused() -> None:
    doc = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'
    with pytest.raises(XmlForbiddenError):
        parse_xml(doc.encode("utf-16"))


@pytest.mark.parametrize("doc", [b"<a><b></a>", b"not xml", b"", b"   ", b"<a>&undefined;</a>"])
def test_malformed(doc: bytes) -> None:
    with pytest.raises(XmlMalformedError):
        parse_xml(doc)


def test_size_cap() -> None:
    doc = b"<a>" + b"x" * 2000 + b"</a>"
    with pytest.raises(XmlTooLargeError):
        parse_xml(doc, XmlLimits(max_bytes=1000))
    assert parse_xml(doc, XmlLimits(max_bytes=5000)).tag == "a"


def test_depth_limit() -> None:
    doc = b"<a>" * 5000 + b"</a>" * 5000
    with pytest.raises(XmlTooLargeError):
        parse_xml(doc)


def test_xinclude_is_not_processed() -> None:
    doc = (
        b'<a xmlns:xi="http://www.w3.org/2001/XInclude">'
        b'<xi:include href="file:///etc/passwd" parse="text"/></a>'
    )
    root = parse_xml(doc)
    assert "root:" not in (root.xpath("string()") or "")
    assert root[0].tag == "{http://www.w3.org/2001/XInclude}include"


def test_str_is_refused() -> None:
    with pytest.raises(TypeError):
        parse_xml("<a/>")  # type: ignore[arg-type]
