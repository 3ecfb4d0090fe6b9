"""The four E-case portal e-services (REQUIREMENTS.md ES-01 to ES-35, docs/ESERVICES*.md).

One module per job; import what you need from the module itself (this package re-exports
nothing, so modules added side by side never edit a shared file).
"""
