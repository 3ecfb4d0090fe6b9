"""Outbound SOAP calls with zeep over one pooled requests session per partner.

The payload is already signed, so it must reach the wire byte for byte: we let zeep own the
operation binding (SOAPAction, reply parsing, fault decoding) but post our own envelope with
the transport instead of letting zeep re-serialize Python objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
import zeep
import zeep.exceptions
from lxml import etree
from requests.adapters import HTTPAdapter
from zeep.helpers import serialize_object
from zeep.transports import Transport

from gateway.errors import (
    ConfigError,
    GatewayError,
    PartnerRejectedError,
    PartnerServerFaultError,
    PartnerTimeoutError,
    PartnerUnavailableError,
)
from gateway.soap.envelope import Envelope, build_envelope, parse_envelope
from gateway.xml import XmlLimits

if TYPE_CHECKING:
    from requests.sessions import _Settings

    from gateway.signing import TrustStore

__all__ = ["PartnerClient", "pooled_session", "zeep_settings"]


def zeep_settings() -> zeep.Settings:
    """zeep with the same hostile-network defaults as gateway.xml."""
    return zeep.Settings(
        strict=True,
        xml_huge_tree=False,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )


class _EnvironmentOnce(requests.Session):
    """A session that reads the proxy and CA environment once per URL, not on every request.

    With ``trust_env`` (the default, so ``HTTPS_PROXY``, ``NO_PROXY`` and
    ``REQUESTS_CA_BUNDLE`` keep working) requests walks ``os.environ`` twice per request to
    find proxies and bypasses: about a third of a delivery's CPU in profiles. A gateway talks
    to a handful of URLs whose environment does not change while it runs.
    """

    _MAX = 256

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], _Settings] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> _Settings:
        """requests' own merge, remembered per (url, stream, verify, cert) when no per-call
        proxies are given; a copy each time, so a caller's change never leaks."""
        if proxies or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = (url, stream, verify, cert)
        found = self._environment.get(key)
        if found is None:
            found = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if len(self._environment) < self._MAX:
                self._environment[key] = found
        settings = found.copy()
        settings["proxies"] = dict(found["proxies"])
        return settings


def pooled_session(pool_maxsize: int = 10) -> requests.Session:
    """One keep-alive session; connections are reused across messages and threads."""
    session = _EnvironmentOnce()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class PartnerClient:
    """Calls one partner's SOAP service; WSDL loaded once at construction."""

    def __init__(
        self,
        *,
        partner: str,
        wsdl: Path,
        service: str,
        port: str,
        endpoint: str,
        connect_timeout: float,
        operation_timeout: float,
        session: requests.Session,
    ) -> None:
        self.partner = partner
        self.endpoint = endpoint
        # requests takes (connect, read); zeep passes operation_timeout straight through.
        self.transport = Transport(
            session=session,
            timeout=connect_timeout,
            operation_timeout=(connect_timeout, operation_timeout),
        )
        try:
            self.client = zeep.Client(str(wsdl), transport=self.transport, settings=zeep_settings())
            self.service = self.client.bind(service, port)
        except (OSError, ValueError, zeep.exceptions.Error) as exc:
            raise ConfigError(f"partners.{partner}.wsdl: cannot load {wsdl}: {exc}") from exc
        self.binding = self.service._binding

    def has_operation(self, operation: str) -> bool:
        """Whether the WSDL's binding has ``operation``."""
        try:
            self.binding.get(operation)
        except ValueError:
            return False
        return True

    def _post(
        self, operation: str, envelope: bytes, message_id: str | None
    ) -> tuple[Any, requests.Response, dict[str, Any]]:
        """Post an envelope as ``operation``; map transport failures and HTTP status.

        Errors are mapped here, at the boundary: connection failures, timeouts and HTTP 5xx
        without a SOAP body are retryable; HTTP 4xx is permanent. Returns the zeep operation,
        the response and the error context for the caller's reply handling.
        """
        ctx: dict[str, Any] = {
            "partner": self.partner,
            "operation": operation,
            "message_id": message_id,
        }
        try:
            op = self.binding.get(operation)
        except ValueError as exc:
            raise ConfigError(f"{self.partner} has no operation {operation}", **ctx) from exc
        headers = {
            "SOAPAction": f'"{op.soapaction}"',
            "Content-Type": 'text/xml; charset="utf-8"',
        }
        try:
            response = self.transport.post(self.endpoint, envelope, headers)
        except requests.Timeout as exc:
            raise PartnerTimeoutError(f"{self.partner} did not answer in time", **ctx) from exc
        except requests.RequestException as exc:
            raise PartnerUnavailableError(
                f"{self.partner} unreachable: {type(exc).__name__}", **ctx
            ) from exc
        if response.status_code >= 500 and not _looks_like_soap(response):
            raise PartnerUnavailableError(
                f"{self.partner} answered HTTP {response.status_code}", **ctx
            )
        if 400 <= response.status_code < 500:
            raise PartnerRejectedError(
                f"{self.partner} answered HTTP {response.status_code}", **ctx
            )
        return op, response, ctx

    def send(
        self,
        operation: str,
        payload: bytes,
        *,
        header: bytes | None = None,
        message_id: str | None = None,
        trust: TrustStore | None = None,
        limits: XmlLimits | None = None,
    ) -> Any:
        """Post ``payload`` (the signed body element, with SOAP ``header`` blocks) as
        ``operation``; return the parsed reply.

        With ``trust``, a reply that is not a fault must be a signed receipt that ``trust``
        verifies in place (docs/SIGNATURE-PROFILE.md), and only what was signed is parsed:
        an unsigned, altered or untrusted one is an invalid answer. SOAP Server faults are
        retryable; SOAP Client faults and invalid answers permanent.
        """
        op, response, ctx = self._post(operation, build_envelope(payload, header), message_id)
        if trust is not None:
            signed = self._verified(response, trust, limits or XmlLimits(), ctx)
            if signed is not None:
                return self._receipt(op, signed, ctx)
        try:
            result = self.binding.process_reply(self.client, op, response)
        except zeep.exceptions.Fault as exc:
            raise _fault_error(exc, ctx) from exc
        except (zeep.exceptions.Error, etree.LxmlError, ValueError) as exc:
            raise PartnerRejectedError(
                f"{self.partner} answered something that is not a valid reply: {exc}", **ctx
            ) from exc
        return serialize_object(result, dict)

    def _receipt(self, op: Any, signed: etree._Element, ctx: dict[str, Any]) -> Any:
        """The verified receipt as zeep reads the operation's output element, from the
        verifier's element itself (zeep's whole reply processing would serialize it into an
        envelope and parse that again: twice the work per delivery, the same dict)."""
        body = getattr(op.output, "body", None)
        if body is None or signed.tag != body.qname.text:
            raise PartnerRejectedError(
                f"{self.partner} answered {etree.QName(signed).localname}, not the operation's "
                "receipt",
                **ctx,
            )
        try:
            value = body.parse(signed, self.client.wsdl.types)
        except (zeep.exceptions.Error, etree.LxmlError, ValueError) as exc:
            raise PartnerRejectedError(
                f"{self.partner} answered something that is not a valid reply: {exc}", **ctx
            ) from exc
        return serialize_object(value, dict)

    def _verified(
        self,
        response: requests.Response,
        trust: TrustStore,
        limits: XmlLimits,
        ctx: dict[str, Any],
    ) -> etree._Element | None:
        """The signed element alone, once verified; None for a SOAP fault (zeep decodes it)."""
        try:
            envelope = parse_envelope(response.content, limits)
        except GatewayError as exc:
            raise PartnerRejectedError(
                f"{self.partner} answered something that is not a SOAP envelope: {exc.message}",
                details=[{"code": exc.code}],
                **ctx,
            ) from exc
        if envelope.body.tag == _FAULT:
            return None  # zeep decodes the fault; a fault never counts as delivered
        try:
            signed = trust.verify(envelope.body)
        except GatewayError as exc:
            raise PartnerRejectedError(
                f"{self.partner} answered a receipt that does not verify "
                f"[{exc.code}]: {exc.message}",
                details=[{"code": exc.code}],
                **ctx,
            ) from exc
        # Signature wrapping defence, as for inbound messages: only the verifier's output is
        # read, never the bytes around it.
        return signed

    def send_raw(
        self,
        operation: str,
        payload: bytes,
        *,
        header: bytes | None = None,
        message_id: str | None = None,
        limits: XmlLimits | None = None,
    ) -> Envelope:
        """Post ``payload`` (with SOAP ``header`` blocks) as ``operation``; return the raw reply.

        For answers whose signature must be verified before use (registry queries): the reply
        is parsed only by the hardened parser and returned as elements, not zeep objects.
        Transport errors map as in :meth:`send`; a SOAP fault raises PartnerServerFaultError
        (Server) or PartnerRejectedError (Client); a reply that is not a SOAP envelope raises
        PartnerRejectedError whose details name the underlying code (XML_MALFORMED ...).
        """
        _, response, ctx = self._post(operation, build_envelope(payload, header), message_id)
        try:
            envelope = parse_envelope(response.content, limits or XmlLimits())
        except GatewayError as exc:
            raise PartnerRejectedError(
                f"{self.partner} answered something that is not a SOAP envelope: {exc.message}",
                details=[{"code": exc.code}],
                **ctx,
            ) from exc
        if envelope.body.tag == _FAULT:
            raise _raw_fault_error(envelope.body, ctx)
        return envelope


_FAULT = "{http://schemas.xmlsoap.org/soap/envelope/}Fault"


def _raw_fault_error(fault: etree._Element, ctx: dict[str, Any]) -> GatewayError:
    code = (fault.findtext("faultcode") or "").split(":")[-1]
    detail_code = fault.findtext("detail/{*}ErrorDetail/{*}Code")
    text = f"{ctx['partner']} fault {code or '?'}"
    text += f" [{detail_code}]" if detail_code else ""
    text += f": {fault.findtext('faultstring') or ''}"
    details = [{"fault_code": code, "detail_code": detail_code}]
    if code == "Client":
        return PartnerRejectedError(text, details=details, **ctx)
    return PartnerServerFaultError(text, details=details, **ctx)


def _looks_like_soap(response: requests.Response) -> bool:
    return b"Envelope" in response.content[:512]


def _fault_error(fault: zeep.exceptions.Fault, ctx: dict[str, Any]) -> GatewayError:
    code = (fault.code or "").split(":")[-1]
    detail_code = None
    if fault.detail is not None:
        found = fault.detail.find(".//{*}Code")
        detail_code = found.text if found is not None else None
    text = f"{ctx['partner']} fault {code or '?'}"
    text += f" [{detail_code}]" if detail_code else ""
    text += f": {fault.message}"
    details = [{"fault_code": code, "detail_code": detail_code}]
    if code == "Client":
        return PartnerRejectedError(text, details=details, **ctx)
    return PartnerServerFaultError(text, details=details, **ctx)
