"""XML namespaces used across the gateway, in one place."""

from __future__ import annotations

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DS = "http://www.w3.org/2000/09/xmldsig#"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

COMMON = "urn:lv:vpd:plus:common:v1"
#: The E-case platform: universal business messages, and its X-Road style header blocks.
ECASE = "urn:lv:ecase:plus:v1"
ECASE_HEADER = "urn:lv:ecase:header:v1"

#: VISS (the State IS integrator): the X-Road style header and one namespace per registry.
VISS = "urn:lv:vraa:viss:v1"
VIIS = "urn:lv:vraa:viss:viis:v1"
IIS = "urn:lv:vraa:viss:iis:v1"
VID = "urn:lv:vraa:viss:vid:v1"
RD = "urn:lv:vraa:viss:rd:v1"

#: Prefixes the mapping files and the XPath helpers may use.
PREFIXES: dict[str, str] = {
    "soap": SOAP_ENV,
    "ds": DS,
    "xs": XSD,
    "c": COMMON,
    "m": ECASE,
    "eh": ECASE_HEADER,
    "viss": VISS,
    "viis": VIIS,
    "iis": IIS,
    "vid": VID,
    "rd": RD,
}


def qname(ns: str, local: str) -> str:
    """Clark notation ``{ns}local`` as lxml uses it."""
    return f"{{{ns}}}{local}"
