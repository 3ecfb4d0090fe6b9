"""plus-gateway: the integration layer between PLUS and the institutions it exchanges data with."""

__version__ = "0.1.0"
