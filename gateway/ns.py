"""XML namespaces used across the gateway, in one place."""

from __future__ import annotations

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DS = "http://www.w3.org/2000/09/xmldsig#"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

COMMON = "urn:lv:vpd:plus:common:v1"
TIS = "urn:lv:ta:tis:plus:v1"

#: Prefixes the mapping files and the XPath helpers may use.
PREFIXES: dict[str, str] = {
    "soap": SOAP_ENV,
    "ds": DS,
    "xs": XSD,
    "c": COMMON,
    "tis": TIS,
}


def qname(ns: str, local: str) -> str:
    """Clark notation ``{ns}local`` as lxml uses it."""
    return f"{{{ns}}}{local}"
