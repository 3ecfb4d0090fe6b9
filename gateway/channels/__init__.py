"""Channels and institutions: E-case and direct SOAP, X-Road style headers, reply routing."""
