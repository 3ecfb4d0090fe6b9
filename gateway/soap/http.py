"""What SOAP 1.1 asks of the HTTP request around an envelope: Content-Type and SOAPAction.

* Content-Type must be ``text/xml`` (SOAP 1.1 section 6.1.1; parameters such as ``charset``
  are allowed). ``application/soap+xml`` is SOAP 1.2, which no contract here speaks. A missing
  Content-Type is refused too. Checked before the body is read: HTTP 415.
* SOAPAction, when present and not empty, must be the ``soapAction`` the WSDL binding declares
  for the operation of the body element (WS-I Basic Profile R2744), quoted or not. It is
  checked after routing, because only the body says which operation is meant; a mismatch is
  refused rather than guessed at, since an intermediary may have routed or authorised the
  request by its SOAPAction.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.errors import SoapActionMismatchError, SoapContentTypeError
from gateway.logging import mask_text
from gateway.xml import parse_xml

__all__ = ["check_content_type", "check_http_request", "check_soap_action", "soap_actions"]

_WSDL = "http://schemas.xmlsoap.org/wsdl/"
_WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
# Header values are attacker-chosen; only this much of one is ever quoted back.
_QUOTE_MAX = 80


def _shown(value: str) -> str:
    text = value if len(value) <= _QUOTE_MAX else value[:_QUOTE_MAX] + "..."
    return mask_text(text)


def check_content_type(content_type: str | None) -> None:
    """Refuse a request whose Content-Type is not ``text/xml``: SoapContentTypeError (415)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "text/xml":
        shown = _shown(content_type) if content_type else "none"
        raise SoapContentTypeError(
            f"SOAP 1.1 requests must have Content-Type text/xml, not {shown}",
            details=[{"path": "header.Content-Type", "message": "expected text/xml"}],
        )


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].strip()
    return value


def check_soap_action(
    soap_action: str | None, operation: str, expected_actions: Mapping[str, str]
) -> None:
    """Refuse a SOAPAction that names another operation than the body element's.

    ``expected_actions`` maps operation names to the ``soapAction`` of their binding (see
    :func:`soap_actions`). No header, an empty one or ``""`` (SOAP 1.1: "the intent is the
    request URI") carry no claim and pass; so does an operation the map does not know (the
    route step has already refused unknown body elements). Otherwise the value, without its
    quotes, must equal the declared action: SoapActionMismatchError if not.
    """
    if soap_action is None:
        return
    claimed = _unquote(soap_action)
    if not claimed:
        return
    declared = expected_actions.get(operation)
    if declared is None or claimed == declared:
        return
    raise SoapActionMismatchError(
        f"SOAPAction {_shown(claimed)!r} does not match the body's operation {operation} "
        f"(expected {declared!r})",
        operation=operation,
        details=[{"path": "header.SOAPAction", "message": f"expected {declared!r}"}],
    )


def check_http_request(
    content_type: str | None,
    soap_action: str | None = None,
    expected_actions: Mapping[str, str] | None = None,
    *,
    operation: str | None = None,
) -> None:
    """Both checks at once, for a caller that already knows the body's operation.

    The Content-Type check always runs; the SOAPAction check only when ``operation`` and
    ``expected_actions`` are given.
    """
    check_content_type(content_type)
    if operation is not None and expected_actions is not None:
        check_soap_action(soap_action, operation, expected_actions)


def soap_actions(wsdl: bytes) -> dict[str, str]:
    """Operation name -> declared ``soapAction``, for the bindings of the WSDL's services.

    Pass the served WSDL document (``Runtime.wsdl_documents[endpoint]``): it holds only the
    service that endpoint answers, so only that service's operations are mapped. Computed once
    at start-up. An operation declared by two bindings with different actions keeps the first.
    """
    root = parse_xml(wsdl)
    ns = {"wsdl": _WSDL, "soap": _WSDL_SOAP}
    # binding="tns:PlusBinding": bindings are named in the WSDL's own target namespace.
    used = {
        port.get("binding", "").rpartition(":")[2]
        for port in root.iterfind("wsdl:service/wsdl:port", ns)
    }
    actions: dict[str, str] = {}
    for binding in root.iterfind("wsdl:binding", ns):
        if binding.get("name") not in used:
            continue
        for op in binding.iterfind("wsdl:operation", ns):
            soap_op = op.find("soap:operation", ns)
            name = op.get("name")
            if name and soap_op is not None and name not in actions:
                actions[name] = soap_op.get("soapAction", "")
    return actions
