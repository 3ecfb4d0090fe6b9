"""A partner simulator that serves the partner's side of the same WSDL over real HTTP.

It verifies and validates what the gateway sends, records it (queryable over HTTP), drops and
counts duplicates by message id, answers like the partner would, injects faults on demand, and
sends signed partner messages to the gateway.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from gateway.config import Settings
from gateway.errors import ConfigError, GatewayError, PartnerServerFaultError, PermanentError
from gateway.mapping import MappingRegistry, MessageMapping
from gateway.signing import Signer, TrustStore
from gateway.soap.client import PartnerClient, pooled_session
from gateway.soap.envelope import build_ack, build_fault, parse_envelope
from gateway.soap.wsdl import served_wsdl
from gateway.xml import SchemaRegistry, XmlLimits, parse_xml, serialize

__all__ = ["FaultPlan", "PartnerSimulator", "create_sim_app"]

log = structlog.get_logger(__name__)


class FaultPlan(BaseModel):
    """What the simulator does to the next requests (for outage and resilience tests)."""

    mode: str = Field(
        "none",
        description="none | http_503 | server_fault | client_fault | slow | malformed",
    )
    #: How many requests the fault applies to; 0 means until changed.
    count: int = 0
    #: Seconds to wait before answering (mode slow).
    delay: float = 0.0


@dataclass
class Received:
    """One message the simulator accepted."""

    message_id: str
    operation: str
    message_type: str
    received_at: str
    signature_verified: bool
    canonical: dict[str, Any]
    deliveries: int = 1


@dataclass
class _State:
    received: dict[str, Received] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    fault: FaultPlan = field(default_factory=FaultPlan)
    fault_left: int = 0


class PartnerSimulator:
    """The loaded simulator of one partner (keys, schemas, mappings loaded once)."""

    def __init__(self, settings: Settings, partner: str) -> None:
        if partner not in settings.simulators:
            raise ConfigError(f"simulators.{partner}: no simulator configured")
        self.partner = partner
        self.settings = settings
        self.sim = settings.simulators[partner]
        self.partner_settings = settings.partner(partner)
        self.limits = XmlLimits(max_bytes=settings.xml.max_bytes)
        self.schemas = SchemaRegistry(settings.paths.xsd)
        self.mappings = MappingRegistry.load(settings.paths.mappings)
        for mapping in self.mappings.all():
            self.schemas.load(mapping.schema)
        self.signer = Signer.from_files(self.sim.key, self.sim.certificate)
        self.trust = TrustStore.from_files(list(self.sim.trust.certificates), self.sim.trust.ca)
        self.wsdl = served_wsdl(
            self.partner_settings.wsdl,
            service=self.partner_settings.service,
            port=self.partner_settings.port,
            address=f"http://{self.sim.host}:{self.sim.port}/soap/{partner}",
        )
        self._lock = threading.Lock()
        self.state = _State()
        self._client: PartnerClient | None = None

    # -- receiving (gateway -> partner) ------------------------------------------------

    def receive(self, raw: bytes) -> tuple[int, bytes]:
        """Handle one SOAP request; returns HTTP status and response body."""
        try:
            body = parse_envelope(raw, self.limits).body
            mapping = self.mappings.by_root(body.tag)
            if mapping.direction != "outbound":
                raise PermanentError(f"{self.partner} does not receive {mapping.operation}")
            signed = self.trust.verify(body)
            self.schemas.validate(signed, mapping.schema)
            canonical = mapping.to_canonical(signed)
        except GatewayError as exc:
            with self._lock:
                self.state.rejected.append({"code": exc.code, "message": exc.message})
            return 500, build_fault(exc)
        message_id = str(mapping.get_path(canonical, mapping.partner_message_id))
        with self._lock:
            seen = self.state.received.get(message_id)
            if seen is not None:
                # At-least-once delivery: a resend carries the same id and is only counted.
                seen.deliveries += 1
                self.state.duplicates += 1
                status = "DUPLICATE"
            else:
                self.state.received[message_id] = Received(
                    message_id=message_id,
                    operation=mapping.operation,
                    message_type=mapping.message_type,
                    received_at=datetime.now(UTC).isoformat(),
                    signature_verified=True,
                    canonical=canonical,
                )
                self.state.order.append(message_id)
                status = "ACCEPTED"
        namespace = mapping.root.split("}")[0].lstrip("{")
        reference = f"{self.partner.upper()}-{uuid.uuid5(uuid.NAMESPACE_URL, message_id).hex[:12]}"
        return 200, build_ack(namespace, message_id=message_id, status=status, reference=reference)

    def take_fault(self) -> FaultPlan | None:
        """The fault to apply to this request, if any."""
        with self._lock:
            plan = self.state.fault
            if plan.mode == "none":
                return None
            if plan.count:
                self.state.fault_left -= 1
                if self.state.fault_left < 0:
                    self.state.fault = FaultPlan()
                    return None
            return plan

    def set_fault(self, plan: FaultPlan) -> None:
        """Change the fault plan."""
        with self._lock:
            self.state.fault = plan
            self.state.fault_left = plan.count

    def reset(self) -> None:
        """Forget everything received."""
        with self._lock:
            self.state = _State()

    def snapshot(self) -> dict[str, Any]:
        """Everything received, in arrival order, with counters."""
        with self._lock:
            return {
                "partner": self.partner,
                "received": [vars(self.state.received[i]) for i in self.state.order],
                "duplicates": self.state.duplicates,
                "rejected": list(self.state.rejected),
            }

    # -- sending (partner -> gateway) --------------------------------------------------

    @property
    def client(self) -> PartnerClient:
        """zeep client of the gateway's inbound service (created once)."""
        if self._client is None:
            p = self.partner_settings
            if not (p.inbound_service and p.inbound_port):
                raise ConfigError(f"partners.{self.partner}: no inbound_service to send to")
            self._client = PartnerClient(
                partner="gateway",
                wsdl=p.wsdl,
                service=p.inbound_service,
                port=p.inbound_port,
                endpoint=self.sim.gateway_url,
                connect_timeout=p.connect_timeout,
                operation_timeout=p.operation_timeout,
                session=pooled_session(),
            )
        return self._client

    def sample_path(self, mapping: MessageMapping) -> Path:
        """The default sample for a message type."""
        folder = mapping.message_type.split(".", 1)[-1]
        return Path(self.settings.paths.samples) / self.partner / folder / "valid.xml"

    def build(
        self, operation: str, sample: Path | None = None, *, keep_id: bool = False
    ) -> tuple[str, bytes]:
        """A signed payload for ``operation`` from a sample (XML payload or canonical JSON).

        A fresh message id and send time are stamped unless ``keep_id``; returns (id, payload).
        """
        import json

        mapping = self.mappings.by_operation(operation, contract=self.partner)
        if mapping.direction != "inbound":
            raise ConfigError(f"{operation} is sent by the gateway, not by {self.partner}")
        path = sample or self.sample_path(mapping)
        if path.suffix == ".json":
            canonical = json.loads(path.read_text(encoding="utf-8"))
        else:
            canonical = mapping.to_canonical(parse_xml(path.read_bytes(), self.limits))
        if not keep_id:
            _set_path(
                canonical, mapping.partner_message_id, f"{self.partner.upper()}-{uuid.uuid4()}"
            )
            if "sent_at" in canonical:
                canonical["sent_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        message_id = str(mapping.get_path(canonical, mapping.partner_message_id))
        document = self.signer.sign(mapping.to_xml(canonical))
        return message_id, serialize(document, declaration=False)

    def send(
        self, operation: str, sample: Path | None = None, *, keep_id: bool = False
    ) -> dict[str, Any]:
        """Sign and send one message to the gateway; returns its Acknowledgement."""
        message_id, payload = self.build(operation, sample, keep_id=keep_id)
        ack = self.client.send(operation, payload, message_id=message_id)
        return dict(ack or {})


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data.setdefault(key, {})
    data[last] = value


def create_sim_app(sim: PartnerSimulator) -> FastAPI:
    """The simulator's HTTP application: SOAP endpoint, WSDL, records and fault control."""
    app = FastAPI(title=f"{sim.partner.upper()} simulator", version="1")
    partner = sim.partner

    @app.get(f"/soap/{partner}")
    def wsdl() -> Response:
        return Response(sim.wsdl, media_type="text/xml; charset=utf-8")

    @app.post(f"/soap/{partner}")
    async def soap(request: Request) -> Response:
        plan = sim.take_fault()
        if plan is not None:
            if plan.mode == "slow":
                await run_in_threadpool(time.sleep, plan.delay)
            elif plan.mode == "http_503":
                return Response("service unavailable", status_code=503)
            elif plan.mode == "server_fault":
                fault = build_fault(PartnerServerFaultError("simulated outage"))
                return Response(fault, status_code=500, media_type="text/xml")
            elif plan.mode == "client_fault":
                fault = build_fault(PermanentError("simulated rejection"))
                fault = fault.replace(b"soap:Server", b"soap:Client")
                return Response(fault, status_code=500, media_type="text/xml")
            elif plan.mode == "malformed":
                return Response(b"<not-xml", status_code=200, media_type="text/xml")
        status, body = await run_in_threadpool(sim.receive, await request.body())
        return Response(body, status_code=status, media_type="text/xml; charset=utf-8")

    @app.get(f"/sim/{partner}/received")
    def received() -> dict[str, Any]:
        return sim.snapshot()

    @app.get(f"/sim/{partner}/received/{{message_id}}")
    def received_one(message_id: str) -> Any:
        for item in sim.snapshot()["received"]:
            if item["message_id"] == message_id:
                return item
        return JSONResponse({"error": {"code": "NOT_FOUND"}}, status_code=404)

    @app.delete(f"/sim/{partner}/received")
    def reset() -> dict[str, str]:
        sim.reset()
        return {"status": "reset"}

    @app.put(f"/sim/{partner}/faults")
    def faults(plan: FaultPlan) -> FaultPlan:
        sim.set_fault(plan)
        return plan

    @app.post(f"/sim/{partner}/send/{{operation}}")
    async def send(operation: str) -> Any:
        try:
            return await run_in_threadpool(sim.send, operation)
        except GatewayError as exc:
            return JSONResponse({"error": exc.as_dict()}, status_code=502)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
