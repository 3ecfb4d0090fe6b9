"""Messages as the gateway would send them to a simulated institution, built in-process."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.channels.ecase import ECASE_HEADER_PROFILE
from gateway.channels.header import XRoadHeader, parse_identifier
from gateway.signing import Signer
from gateway.sim import SimContract
from gateway.soap.envelope import build_envelope
from gateway.xml import parse_xml, serialize

MEMBERS = {
    "tis": "LV/GOV/90001672698/TIS",
    "prois": "LV/GOV/90000022399/PROIS",
    "ievp": "LV/GOV/90000026235/IEVPIS",
    "em": "LV/GOV/90000026235/EMIS",
}


def signer(keys_dir: Path, name: str = "gateway") -> Signer:
    """The demo signer ``name`` (gateway, tis-sim, intruder, ...)."""
    return Signer.from_files(keys_dir / f"{name}-key.pem", keys_dir / f"{name}-cert.pem")


def from_gateway(
    contract: SimContract,
    by: Signer,
    *,
    to: str,
    message_type: str,
    canonical: dict[str, Any] | None = None,
    message_id: str | None = None,
    header_id: str | None = None,
    operation: str | None = None,
    client: str | None = None,
) -> tuple[bytes, str]:
    """A signed SOAP request of ``message_type`` from the gateway to institution ``to``."""
    mapping = contract.mapping(message_type)
    data = dict(canonical) if canonical is not None else contract.sample(mapping)
    data.pop("addressee", None)
    message_id = message_id or f"PLUS-{uuid.uuid4().hex}"
    for name, source in mapping.gateway_fields.items():
        data[name] = message_id if source == "message_id" else "2026-01-05T10:00:00+02:00"
    data[mapping.partner_message_id] = message_id
    payload = serialize(by.sign(mapping.to_xml(data)), declaration=False)
    header = XRoadHeader(
        ECASE_HEADER_PROFILE,
        client=parse_identifier(client or contract.ecase.client_id, service=False, key="client"),
        service=(
            *parse_identifier(MEMBERS[to], service=False, key="member"),
            operation or mapping.operation,
            contract.ecase.service_version,
        ),
        user_id="OFFICER-7",
        id=header_id or message_id,
        protocol_version=contract.ecase.protocol_version,
    )
    return build_envelope(payload, header.serialize()), message_id


def body_of(raw: bytes) -> etree._Element:
    """The single element in a SOAP response's Body."""
    root = parse_xml(raw)
    body = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert body is not None
    return next(iter(body))


def header_id(raw: bytes) -> str | None:
    """The echoed ``id`` header block of a SOAP response."""
    root = parse_xml(raw)
    return root.findtext("{*}Header/{urn:lv:ecase:header:v1}id")


def fault_code(raw: bytes) -> str | None:
    """The stable error code in a SOAP fault's ErrorDetail."""
    return body_of(raw).findtext("detail/{*}ErrorDetail/{*}Code")


def field(element: etree._Element, local: str) -> str | None:
    """Text of the child ``local`` (any namespace)."""
    return element.findtext(f"{{*}}{local}")
