"""Routes as data: which steps a message crosses, by message type and direction.

A mapping file may list its own ``steps:``; otherwise the default for its direction applies.
Step names resolve through :data:`STEP_FACTORIES`, so a route is plain data end to end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from gateway.errors import ConfigError, GatewayError, UnknownOperationError
from gateway.eservices import steps as es
from gateway.pipeline import steps as s
from gateway.pipeline.exchange import Exchange

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = ["DEFAULT_STEPS", "INGRESS_STEPS", "STEP_FACTORIES", "Route", "RouteTable", "run"]

log = structlog.get_logger(__name__)

#: Steps every inbound SOAP request crosses before its route is known.
INGRESS_STEPS: tuple[str, ...] = ("parse", "identify", "route")

#: Default steps after ingress (inbound) or from PLUS's JSON (outbound).
DEFAULT_STEPS: dict[str, tuple[str, ...]] = {
    "inbound": ("verify", "validate", "map_in", "persist_in"),
    "outbound": (
        "idempotency",
        "stamp",
        "validate_json",
        "address",
        "map_out",
        "validate",
        "sign",
        "persist_out",
    ),
}

STEP_FACTORIES: dict[str, Callable[[Runtime], s.Step]] = {
    "parse": lambda rt: s.ParseEnvelope(rt.limits),
    "identify": lambda rt: s.IdentifySender(
        rt.directory, rt.schemas, rt.channels.client_id, rt.settings.ecase.service_version
    ),
    "route": lambda rt: s.ResolveRoute(rt.mappings, rt.directory, rt.soap_actions),
    "verify": lambda rt: s.VerifySignature(rt.directory),
    "validate": lambda rt: s.ValidateXsd(rt.schemas),
    "map_in": lambda rt: s.MapToCanonical(),
    "persist_in": lambda rt: s.PersistInbound(rt.store),
    "validate_json": lambda rt: s.ValidateCanonical(),
    "idempotency": lambda rt: s.CheckIdempotency(rt.store),
    "stamp": lambda rt: s.Stamp(),
    "address": lambda rt: s.AddressOutbound(rt.router),
    "map_out": lambda rt: s.MapToXml(),
    "sign": lambda rt: s.Sign(rt.signer),
    "persist_out": lambda rt: s.PersistOutbound(rt.store, rt.settings.ordered_route),
    # The e-services' own steps (gateway/eservices/steps.py, docs/ESERVICES.md).
    "eservice_identity": lambda rt: es.VerifyIdentity(rt.eservices),
    "eservice_entitlement": lambda rt: es.CheckAccess(rt.eservices),
    "eservice_form": lambda rt: es.CheckForm(rt.eservices),
    "eservice_persist": lambda rt: es.PersistRequest(rt.eservices, rt.store),
    "eservice_answer": lambda rt: es.AnswerScope(rt.eservices),
    "eservice_persist_answer": lambda rt: es.PersistAnswer(
        rt.eservices, rt.store, rt.mappings, rt.schemas, rt.signer
    ),
    "eservice_assign": lambda rt: es.AssignOnSend(rt.eservices, rt.store),
}


@dataclass(frozen=True)
class Route:
    """Steps for one business message type (whoever sends or receives it)."""

    operation: str
    direction: str
    message_type: str
    step_names: tuple[str, ...]
    steps: tuple[s.Step, ...]


def run(steps: Sequence[s.Step], exchange: Exchange) -> Exchange:
    """Run ``steps`` in order; stop early when a step marks the exchange done.

    Every GatewayError leaving a step gets the exchange's partner, operation and message id.
    """
    for step in steps:
        try:
            exchange = step(exchange)
        except GatewayError as exc:
            raise exc.bind(
                partner=exchange.partner,
                operation=exchange.operation,
                message_id=exchange.partner_message_id or exchange.message_id,
            ) from exc.__cause__
        if exchange.done:
            break
    return exchange


class RouteTable:
    """All routes, built once at start from the mapping registry."""

    def __init__(self, runtime: Runtime) -> None:
        self._steps_cache: dict[str, s.Step] = {}
        self._runtime = runtime
        self.ingress = tuple(self._step(name) for name in INGRESS_STEPS)
        self.routes: dict[str, Route] = {}
        for mapping in runtime.mappings.all():
            if mapping.direction not in DEFAULT_STEPS:
                continue  # synchronous queries have no asynchronous route
            names = tuple(mapping.steps or DEFAULT_STEPS[mapping.direction])
            self.routes[mapping.message_type] = Route(
                operation=mapping.operation,
                direction=mapping.direction,
                message_type=mapping.message_type,
                step_names=names,
                steps=tuple(self._step(n) for n in names),
            )

    def _step(self, name: str) -> s.Step:
        if name not in STEP_FACTORIES:
            raise ConfigError(f"unknown pipeline step {name!r}")
        if name not in self._steps_cache:
            self._steps_cache[name] = STEP_FACTORIES[name](self._runtime)
        return self._steps_cache[name]

    def route(self, message_type: str) -> Route:
        """The route of ``message_type``; UnknownOperationError if none."""
        try:
            return self.routes[message_type]
        except KeyError:
            raise UnknownOperationError(f"unknown message type {message_type!r}") from None

    def inbound(self, exchange: Exchange) -> Exchange:
        """Ingress (parse, route) and then the route's own steps."""
        started = time.perf_counter()
        exchange = run(self.ingress, exchange)
        assert exchange.mapping is not None
        exchange = run(self.route(exchange.mapping.message_type).steps, exchange)
        self._runtime.metrics.observe(exchange, time.perf_counter() - started)
        return exchange

    def outbound(self, exchange: Exchange) -> Exchange:
        """The outbound route of ``exchange.mapping``."""
        assert exchange.mapping is not None
        route = self.route(exchange.mapping.message_type)
        if route.direction != "outbound":
            raise UnknownOperationError(f"{route.message_type} is received by PLUS, not sent")
        started = time.perf_counter()
        exchange = run(route.steps, exchange)
        self._runtime.metrics.observe(exchange, time.perf_counter() - started)
        return exchange
