"""SOAP 1.1: envelopes and faults, served WSDLs, outbound zeep clients."""
