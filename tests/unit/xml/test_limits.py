"""Structural limits of the hardened parser: each one refused with XML_LIMIT naming it."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.config import XmlSettings
from gateway.errors import XmlCommentOrPiError, XmlLimitError, XmlMalformedError
from gateway.logging import PERSONAL_CODE_MASK
from gateway.xml import XmlLimits, parse_xml, refuse_comments_and_pis

SMALL = XmlLimits(
    max_elements=10,
    max_attributes=3,
    max_total_attributes=6,
    max_namespaces=2,
    max_namespaces_in_scope=3,
    max_text=20,
    max_attribute_value=10,
)


def refused(doc: bytes, limits: XmlLimits = SMALL) -> XmlLimitError:
    with pytest.raises(XmlLimitError) as info:
        parse_xml(doc, limits)
    assert info.value.code == "XML_LIMIT"
    return info.value


def limit_of(error: XmlLimitError) -> str:
    return str(error.details[0]["limit"])


def attrs(n: int, prefix: str = "a") -> str:
    return "".join(f' {prefix}{i}="v"' for i in range(n))


def decls(n: int, start: int = 0) -> str:
    return "".join(f' xmlns:p{i}="urn:p{i}"' for i in range(start, start + n))


# -- elements ----------------------------------------------------------------------------------


def test_elements_up_to_the_limit_pass() -> None:
    assert len(parse_xml(b"<r>" + b"<a/>" * 9 + b"</r>", SMALL)) == 9


def test_too_many_elements() -> None:
    error = refused(b"<r>" + b"<a/>" * 10 + b"</r>")
    assert limit_of(error) == "max_elements"
    assert error.details[0]["max"] == 10
    assert "max_elements=10" in error.message


def test_comments_and_processing_instructions_count_as_nodes() -> None:
    assert limit_of(refused(b"<r>" + b"<!---->" * 10 + b"</r>")) == "max_elements"
    assert limit_of(refused(b"<r>" + b"<?p?>" * 10 + b"</r>")) == "max_elements"


def test_parsing_stops_at_the_first_element_over_the_limit() -> None:
    # Malformed far after the limit: the refusal is the limit, so the tail was never parsed.
    doc = b"<r>" + b"<a/>" * 50 + b"<broken></r>"
    assert limit_of(refused(doc)) == "max_elements"


# -- attributes --------------------------------------------------------------------------------


def test_attributes_per_element() -> None:
    parse_xml(f"<r{attrs(3)}/>".encode(), SMALL)
    error = refused(f"<r><x{attrs(4)}/></r>".encode())
    assert limit_of(error) == "max_attributes"
    assert error.details[0]["path"] == "x"


def test_attributes_in_total() -> None:
    parse_xml(f"<r><x{attrs(3)}/><y{attrs(3)}/></r>".encode(), SMALL)
    doc = f"<r><x{attrs(3)}/><y{attrs(3)}/><z{attrs(1)}/></r>".encode()
    assert limit_of(refused(doc)) == "max_total_attributes"


def test_attribute_value_size() -> None:
    parse_xml(b'<r a="0123456789"/>', SMALL)
    error = refused(b'<r><x a="0123456789X"/></r>')
    assert limit_of(error) == "max_attribute_value"
    assert error.details[0]["path"] == "x"


def test_single_tag_with_thousands_of_attributes_is_refused_before_parsing() -> None:
    # The pre-parse guard (no tree is built for it): 20,001 "=" in one start tag.
    limits = XmlLimits()
    error = refused(f"<r{attrs(20_001)}/>".encode(), limits)
    assert limit_of(error) == "max_attributes"
    assert "start tag" in error.message


def test_many_equals_signs_in_text_are_not_attributes() -> None:
    # Spread over text nodes between tags: no single run without "<" holds enough of them.
    long_text = b"<r>" + (b"<t>" + b"=" * 5000 + b"</t>") * 4 + b"</r>"
    assert len(parse_xml(long_text)) == 4


# -- namespaces --------------------------------------------------------------------------------


def test_namespace_declarations_per_element() -> None:
    parse_xml(f"<r{decls(2)}/>".encode(), SMALL)
    error = refused(f"<r><x{decls(3)}/></r>".encode())
    assert limit_of(error) == "max_namespaces"
    assert error.details[0]["path"] == "x"


def test_namespace_declarations_in_scope() -> None:
    ok = f"<r{decls(2)}><x{decls(1, 2)}/><y{decls(1, 3)}/></r>".encode()
    assert len(parse_xml(ok, SMALL)) == 2  # 3 in scope at x and at y, never 4
    deep = f"<r{decls(2)}><x{decls(1, 2)}><y{decls(1, 3)}/></x></r>".encode()
    assert limit_of(refused(deep)) == "max_namespaces_in_scope"


def test_default_namespace_declarations_count() -> None:
    doc = b'<r xmlns="urn:a" xmlns:b="urn:b" xmlns:c="urn:c"/>'
    assert limit_of(refused(doc)) == "max_namespaces"


# -- text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        b"<r>" + b"x" * 21 + b"</r>" + b" " * 10,
        b"<r><a/>" + b"x" * 21 + b"</r>",  # a tail
        b"<r><!--" + b"x" * 21 + b"--></r>",
        b"<r/><!--" + b"x" * 21 + b"-->",  # after the root element
    ],
)
def test_text_node_size(doc: bytes) -> None:
    assert limit_of(refused(doc)) == "max_text"


def test_text_at_the_limit_passes() -> None:
    assert parse_xml(b"<r>" + b"x" * 20 + b"</r>" + b" " * 10, SMALL).text == "x" * 20


def test_text_limit_counts_characters_not_bytes() -> None:
    # 20 two-byte characters: 40 bytes of text, still 20 characters.
    assert parse_xml(("<r>" + "ā" * 20 + "</r>").encode(), SMALL).text == "ā" * 20


# -- messages carry no personal data -----------------------------------------------------------


def test_limit_message_masks_a_personal_code_spelled_as_a_tag() -> None:
    doc = f"<r><x150390-12345{attrs(4)}/></r>".encode()
    error = refused(doc)
    assert "150390-12345" not in error.message
    assert "150390-12345" not in str(error.details)
    assert PERSONAL_CODE_MASK in error.message


def test_syntax_error_message_is_masked() -> None:
    with pytest.raises(XmlMalformedError) as info:
        parse_xml(b"<x150390-12345></y>")
    assert "150390-12345" not in info.value.message


# -- configuration -----------------------------------------------------------------------------


def test_settings_and_limits_have_the_same_defaults() -> None:
    settings = XmlSettings()
    for f in dataclasses.fields(XmlLimits):
        assert getattr(settings, f.name) == f.default, f.name
    assert XmlLimits.from_settings(settings) == XmlLimits()


def test_limits_from_settings() -> None:
    limits = XmlLimits.from_settings(XmlSettings(max_elements=5, max_certificates=2))
    assert limits.max_elements == 5 and limits.max_certificates == 2
    assert limit_of(refused(b"<r>" + b"<a/>" * 5 + b"</r>", limits)) == "max_elements"


# -- comments and processing instructions --------------------------------------------------------


def test_refuse_comments_and_pis() -> None:
    root = parse_xml(b"<r><c>150390<?x?>-12345</c></r>")
    assert root[0].text == "150390"  # why: the text a mapping would read
    with pytest.raises(XmlCommentOrPiError) as info:
        refuse_comments_and_pis(root, "a payload")
    assert info.value.code == "XML_COMMENT_OR_PI"
    assert "processing instruction" in info.value.message
    assert "inside element c" in info.value.message
    with pytest.raises(XmlCommentOrPiError, match="comment"):
        refuse_comments_and_pis(parse_xml(b"<r>150390<!--x-->-12345</r>"), "a payload")


def test_refuse_pis_only() -> None:
    refuse_comments_and_pis(parse_xml(b"<r>a<!--x-->b</r>"), "x", comments=False)
    with pytest.raises(XmlCommentOrPiError):
        refuse_comments_and_pis(parse_xml(b"<r>a<?x?>b</r>"), "x", comments=False)
