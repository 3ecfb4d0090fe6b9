"""Field types shared by the local API's request models."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from gateway.mapping.message import XML_TEXT_PATTERN, xml_unsafe

__all__ = ["PERSONAL_CODE_PATTERN", "XmlText"]

#: The form of a Latvian personal code; the checksum is checked on top where it matters.
PERSONAL_CODE_PATTERN = r"^[0-9]{6}-[0-9]{5}$"


def _xml_safe(value: str) -> str:
    if xml_unsafe(value):
        raise ValueError(
            "contains a character XML 1.0 cannot carry (a control character other than tab, "
            "LF and CR, U+FFFE, U+FFFF or a lone surrogate)"
        )
    return value


#: Free text that may end up in XML (a SOAP header block) or the journal: tab, LF and CR are
#: the only control characters allowed, and no lone surrogate (422 naming the field). The
#: published pattern says so for clients; the validator checks it, lone surrogates included
#: (no portable regex can name them), with a message that says what is wrong.
XmlText = Annotated[
    str,
    AfterValidator(_xml_safe),
    Field(json_schema_extra={"pattern": f"^{XML_TEXT_PATTERN}$"}),
]
