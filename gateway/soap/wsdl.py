"""Serve a WSDL with the real address of the service we expose."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from gateway.errors import ConfigError
from gateway.xml import parse_xml, serialize

__all__ = ["served_wsdl"]

_WSDL = "http://schemas.xmlsoap.org/wsdl/"
_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"


def served_wsdl(path: Path, *, service: str, port: str, address: str) -> bytes:
    """The WSDL at ``path`` with ``service``/``port``'s soap:address set to ``address``.

    Called once at start; the result is cached by the caller. Schema imports stay relative, and
    the gateway serves ``/xsd/...`` so that a client fetching ``?wsdl`` resolves them.
    """
    root = parse_xml(path.read_bytes())
    ns = {"wsdl": _WSDL, "soap": _SOAP}
    found = root.xpath(
        "wsdl:service[@name=$s]/wsdl:port[@name=$p]/soap:address", namespaces=ns, s=service, p=port
    )
    if not found:
        raise ConfigError(f"{path}: no service {service!r} with port {port!r}")
    found[0].set("location", address)
    # One WSDL file describes both sides of a partner exchange; whoever fetches ours should
    # see only the service this server answers, not the other side's placeholder address.
    for other in root.xpath("wsdl:service[@name!=$s]", namespaces=ns, s=service):
        root.remove(other)
    _rebase_imports(root)
    return serialize(root)


def _rebase_imports(root: etree._Element) -> None:
    # The WSDL sits in wsdl/ and imports ../xsd/...; served from /soap/<partner> the same
    # relative path resolves to /xsd/..., which is where the API serves the schema tree.
    for imp in root.iter("{http://www.w3.org/2001/XMLSchema}import"):
        location = imp.get("schemaLocation")
        if location and location.startswith("../xsd/"):
            imp.set("schemaLocation", "/xsd/" + location[len("../xsd/") :])
