"""The local HTTP API for PLUS, the inbound SOAP endpoints and the operations endpoints."""

from gateway.api.app import create_app

__all__ = ["create_app"]
