"""The volunteer-platform facade: REST under ``/v1/volunteering`` on the gateway's store.

=================  =============================================================================
``api.py``         the routes (public reads; token-authenticated writes), OpenAPI-described
``service.py``     :class:`Facade`: everything loaded once (keys, fonts, verifier) + the rules
``auth.py``        bearer tokens: issuer, audience, JWKS (PyJWT); roles; dev minting
``models.py``      request and response bodies (bounded strings, field paths in errors)
``certificate.py`` the certificate PDF (fpdf2) and its PAdES seal and validation (pyHanko)
``syndication.py`` the list as iCalendar and schema.org JSON-LD
``imports.py``     bulk import of opportunities from CSV or JSON, with line numbers
``statistics.py``  cuts for policy makers, organisers and volunteers; small-cell suppression
``archive.py``     archiving postings after their deadline (a loop in ``serve`` for now)
``keys.py``        the seal and issuer demo key names for ``plus-gateway keys init``
=================  =============================================================================

Modules are imported by name; this package imports nothing at load, so the store area
(gateway/store/facade/) can use :mod:`gateway.facade.errors` without a cycle.
"""
