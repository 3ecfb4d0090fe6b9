"""One pipeline: a message crosses a route's list of small steps."""

from gateway.pipeline.exchange import Exchange, new_id
from gateway.pipeline.routes import DEFAULT_STEPS, Route, RouteTable, run

__all__ = ["DEFAULT_STEPS", "Exchange", "Route", "RouteTable", "new_id", "run"]
