"""plus-gateway: the integration layer between PLUS and its partners (TIS, ProIS, IeVP IS, VISS)."""

__version__ = "0.1.0"
