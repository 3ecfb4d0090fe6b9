"""The conformance harness: contract-derived checks of a partner endpoint, a gateway, or the
local JSON API, with JUnit XML and HTML reports, and the partner kit (docs/HARNESS.md).

One module per job: :mod:`~gateway.harness.cases` (cases from the contract),
:mod:`~gateway.harness.runner` (runs the modes with progress; the SOAP machinery and the
signature negatives both SOAP directions share),
:mod:`~gateway.harness.transport` (the wire, bounded and mapped to report entries),
:mod:`~gateway.harness.partner`, :mod:`~gateway.harness.gatewaymode` and
:mod:`~gateway.harness.localapi` (the three directions), :mod:`~gateway.harness.environment`
(``--sim``: our simulators and gateway on loopback), :mod:`~gateway.harness.report`
(results, coverage, JUnit, HTML), :mod:`~gateway.harness.kit` (the partner kit) and
:mod:`~gateway.harness.command` (``plus-gateway harness``).
"""
