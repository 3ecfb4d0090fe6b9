"""The harness's wire: bounded HTTP with TLS options, SOAP answers read safely, and the
target's WSDL compared with ours.

Every failure of the target becomes a :class:`Wire` with a plain-language ``problem``
(unreachable, TLS, no answer in time, not SOAP), never an exception: the runner turns it into
a report entry. Every exchange is bounded by the connect and read timeouts.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from lxml import etree

from gateway.errors import ConfigError, GatewayError
from gateway.harness.cases import WsdlOperation, read_wsdl_operations
from gateway.ns import COMMON, SOAP_ENV
from gateway.soap.envelope import Envelope, parse_envelope
from gateway.xml import XmlLimits, parse_xml

__all__ = ["Target", "Transport", "Wire", "compare_wsdl", "soap_fault"]


@dataclass(frozen=True)
class Target:
    """Where the harness sends, and how: the URL, timeouts and TLS material."""

    url: str
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    client_cert: Path | None = None
    client_key: Path | None = None
    ca: Path | None = None  # trust for the target's TLS certificate (default: system)
    insecure: bool = False  # no TLS verification (never for a real environment)


@dataclass
class Wire:
    """One exchange as it happened on the wire."""

    method: str
    url: str
    request: bytes = b""
    request_headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    response: bytes = b""
    content_type: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    problem: str | None = None  # set when there was no usable HTTP answer


class Transport:
    """One pooled HTTP client for a whole run (keep-alive, TLS context built once)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        # One SSL context with the trust and the client certificate (httpx's ``cert=`` and
        # path-valued ``verify=`` are deprecated): built once, a bad file is a clear error.
        try:
            context = ssl.create_default_context(
                cafile=str(target.ca) if target.ca is not None and not target.insecure else None
            )
            if target.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if target.client_cert is not None:
                context.load_cert_chain(
                    str(target.client_cert),
                    str(target.client_key) if target.client_key is not None else None,
                )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"harness TLS options (--tls-ca, --tls-cert, --tls-key): cannot load: {exc}"
            ) from exc
        self.client = httpx.Client(
            timeout=httpx.Timeout(target.read_timeout, connect=target.connect_timeout),
            verify=context,
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self.client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes = b"",
        headers: dict[str, str] | None = None,
        params: dict[str, str | int] | None = None,
    ) -> Wire:
        """Send one request; every transport failure is a ``Wire.problem``, never a raise."""
        wire = Wire(method, url, content, dict(headers or {}))
        started = time.monotonic()
        try:
            response = self.client.request(
                method, url, content=content or None, headers=headers, params=params
            )
            wire.status = response.status_code
            wire.response = response.content
            wire.content_type = response.headers.get("content-type", "")
            wire.response_headers = {k.lower(): v for k, v in response.headers.items()}
        except httpx.TimeoutException as exc:
            kind = "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
            limit = self.target.connect_timeout if kind == "connect" else self.target.read_timeout
            wire.problem = (
                f"no answer within {limit:g} s ({kind} timeout): the endpoint hangs or is filtered"
            )
        except httpx.ConnectError as exc:
            wire.problem = _connect_problem(exc)
        except httpx.RemoteProtocolError as exc:
            if url.startswith("https:"):
                # TLS 1.3: a server that wants a client certificate completes the handshake,
                # then closes the connection when it got none or one it does not trust.
                wire.problem = (
                    "TLS failure: the server closed the connection without answering (it "
                    "may require a client certificate: --tls-cert/--tls-key, one it trusts)"
                )
            else:
                wire.problem = f"the server closed the connection without answering: {exc}"
        except httpx.HTTPError as exc:
            wire.problem = f"transport error: {type(exc).__name__}: {exc}"
        except (OSError, ValueError) as exc:
            # A bad certificate file, an unusable URL: configuration, said plainly.
            wire.problem = f"cannot send: {type(exc).__name__}: {exc}"
        wire.seconds = time.monotonic() - started
        return wire

    def soap(self, url: str, envelope: bytes, action: str) -> Wire:
        """POST a SOAP 1.1 envelope with its SOAPAction."""
        return self.request(
            "POST",
            url,
            content=envelope,
            headers={
                "Content-Type": 'text/xml; charset="utf-8"',
                "SOAPAction": f'"{action}"',
            },
        )


def _connect_problem(exc: httpx.ConnectError) -> str:
    text = str(exc)
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return f"TLS failure: {getattr(cause, 'reason', None) or cause}"
        cause = cause.__cause__ or cause.__context__
    if "SSL" in text or "certificate" in text.lower() or "TLS" in text:
        return f"TLS failure: {text}"
    return f"unreachable: {text or 'connection failed'}"


def read_soap(wire: Wire, limits: XmlLimits) -> tuple[Envelope | None, str | None]:
    """The answer as a strictly parsed SOAP envelope, or why it is not one."""
    if wire.problem:
        return None, wire.problem
    if not wire.response:
        return None, f"HTTP {wire.status} with an empty body, not a SOAP message"
    try:
        return parse_envelope(wire.response, limits, understood=frozenset()), None
    except GatewayError as exc:
        return None, f"HTTP {wire.status}, not a usable SOAP message: {exc.code}: {exc.message}"


def soap_fault(envelope: Envelope) -> tuple[str | None, etree._Element | None]:
    """(the stable code of ``detail/c:ErrorDetail``, the ErrorDetail) if the answer is a
    fault, else (None, None). A fault without an ErrorDetail has code ``""``."""
    if envelope.body.tag != f"{{{SOAP_ENV}}}Fault":
        return None, None
    detail = envelope.body.find(f"detail/{{{COMMON}}}ErrorDetail")
    if detail is None:
        return "", None
    return (detail.findtext(f"{{{COMMON}}}Code") or "").strip(), detail


def compare_wsdl(
    ours: dict[str, list[WsdlOperation]], port_type: str, raw: bytes
) -> tuple[list[str], str | None]:
    """Differences between our ``port_type`` and the same portType of a fetched WSDL.

    Returns (differences, problem): ``problem`` when the document is not a usable WSDL.
    Operations missing or extra, and input or output elements that differ, are listed.
    """
    try:
        theirs_all = read_wsdl_operations(parse_xml(raw))
    except GatewayError as exc:
        return [], f"the WSDL is not well-formed XML: {exc.code}"
    if not theirs_all:
        return [], "the document has no wsdl:portType (not a WSDL 1.1 document)"
    theirs = theirs_all.get(port_type)
    if theirs is None:
        return [f"portType {port_type} is missing (found: {', '.join(sorted(theirs_all))})"], None
    mine = {op.name: op for op in ours.get(port_type, [])}
    found = {op.name: op for op in theirs}
    diff = [f"operation {name} is missing" for name in sorted(mine.keys() - found.keys())]
    diff += [
        f"operation {name} is not in our contract" for name in sorted(found.keys() - mine.keys())
    ]
    for name in sorted(mine.keys() & found.keys()):
        a, b = mine[name], found[name]
        for part in ("input", "output"):
            if getattr(a, part) != getattr(b, part):
                diff.append(
                    f"operation {name}: {part} element is {getattr(b, part)}, "
                    f"ours is {getattr(a, part)}"
                )
    return diff, None
