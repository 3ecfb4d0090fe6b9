"""Benchmarks of plus-gateway (``make bench`` runs :mod:`bench.run`); not part of the tests."""
