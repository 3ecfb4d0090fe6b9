"""The VISS header profile: the shared X-Road style header plus VISS's own blocks.

Every registry request names the case (``issue``), the ``purpose`` and the ``legalBasis``
besides the common blocks; see :mod:`gateway.channels.header` for the implementation.
"""

from __future__ import annotations

from gateway.channels.header import HeaderProfile, XRoadHeader, parse_identifier, read_header
from gateway.ns import VISS

__all__ = ["HEADER_SCHEMA", "VISS_HEADER", "parse_identifier", "read_header", "viss_header"]

HEADER_SCHEMA = "viss/viss.xsd"

VISS_HEADER = HeaderProfile(
    channel="VISS",
    namespace=VISS,
    schema=HEADER_SCHEMA,
    extras=("issue", "purpose", "legalBasis"),
)


def viss_header(
    *,
    client: tuple[str, ...],
    service: tuple[str, ...],
    user_id: str,
    id: str,
    protocol_version: str,
    issue: str,
    purpose: str,
    legal_basis: str,
) -> XRoadHeader:
    """The header of one VISS message."""
    return XRoadHeader(
        VISS_HEADER,
        client,
        service,
        user_id,
        id,
        protocol_version,
        (("issue", issue), ("purpose", purpose), ("legalBasis", legal_basis)),
    )
