"""The VISS simulator: VIIS, IIS, VID and RD over real HTTP, from a synthetic population.

It serves ``/soap/viss/<registry>`` (WSDL on GET), validates the X-Road style header and the
request against the XSDs, answers from :class:`~gateway.registries.population.Population`
with a body signed by its own key and the header echoed, and injects faults on demand::

    POST /control/fault   {"registry": "viis" | "*", "mode": ..., "count": 0, "delay": 0}
    POST /control/reset   clear faults and counters
    GET  /control/stats   requests received per registry

Fault modes: latency (answer after ``delay``), timeout (answer after ``delay``, default 30 s),
server_fault, client_fault, malformed (not XML), bad_signature (content altered after
signing), untrusted_signature (signed by a key nobody trusts), wrong_header (another message
id echoed), http_503.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from gateway.config import Settings
from gateway.errors import BadInputError, ConfigError, GatewayError, PartnerServerFaultError
from gateway.mapping import MappingRegistry, MessageMapping
from gateway.ns import DS
from gateway.registries.contract import REGISTRIES
from gateway.registries.header import VISS_HEADER, read_header
from gateway.registries.population import DEFAULT_SEED, DEFAULT_SIZE, Population
from gateway.signing import Signer
from gateway.soap.envelope import build_envelope, build_fault, parse_envelope
from gateway.soap.wsdl import served_wsdl
from gateway.xml import SchemaRegistry, XmlLimits, serialize

__all__ = ["FaultPlan", "VissSimulator", "create_viss_app"]

log = structlog.get_logger(__name__)

FaultMode = Literal[
    "none",
    "latency",
    "timeout",
    "server_fault",
    "client_fault",
    "malformed",
    "bad_signature",
    "untrusted_signature",
    "wrong_header",
    "http_503",
]


class FaultPlan(BaseModel):
    """What the simulator does to the next requests of one registry (or all: ``*``)."""

    registry: str = Field("*", description="viis, iis, vid, rd, or * for all")
    mode: FaultMode = "none"
    #: How many requests the fault applies to; 0 means until changed.
    count: int = Field(0, ge=0)
    #: Seconds to wait before answering (latency, timeout).
    delay: float = Field(0.0, ge=0)


class VissSimulator:
    """Keys, schemas, mappings and the population, loaded once."""

    def __init__(
        self, settings: Settings, *, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED
    ) -> None:
        if "viss" not in settings.simulators:
            raise ConfigError("simulators.viss: no VISS simulator configured")
        self.settings = settings
        self.sim = settings.simulators["viss"]
        self.limits = XmlLimits(max_bytes=settings.xml.max_bytes)
        self.schemas = SchemaRegistry(settings.paths.xsd)
        mappings = MappingRegistry.load(settings.paths.mappings)
        self.mappings: dict[str, MessageMapping] = {}
        for name, contract in REGISTRIES.items():
            self.schemas.load(contract.schema)
            self.mappings[name] = mappings.get(contract.message_type)
        if self.sim.key is None or self.sim.certificate is None:
            raise ConfigError("simulators.viss: key and certificate are required")
        self.signer = Signer.from_files(self.sim.key, self.sim.certificate)
        self._intruder: Signer | None = None
        self.population = Population(size, seed)
        self.base_url = f"http://{self.sim.host}:{self.sim.port}/soap/viss"
        self.wsdl = {
            name: served_wsdl(
                settings.registries.wsdl,
                service=c.service,
                port=c.port,
                address=f"{self.base_url}/{name}",
            )
            for name, c in REGISTRIES.items()
        }
        self._lock = threading.Lock()
        self._faults: dict[str, tuple[FaultPlan, int]] = {}
        self.requests: dict[str, int] = dict.fromkeys(REGISTRIES, 0)
        self._answers = 0

    # -- control -------------------------------------------------------------------------

    def set_fault(self, plan: FaultPlan) -> None:
        """Apply ``plan`` to its registry (``*``: every registry)."""
        if plan.registry != "*" and plan.registry not in REGISTRIES:
            raise ConfigError(f"unknown registry {plan.registry!r}")
        with self._lock:
            if plan.registry == "*":
                self._faults.clear()
            self._faults[plan.registry] = (plan, plan.count)

    def take_fault(self, registry: str) -> FaultPlan | None:
        """The fault for this request, if any (counts down limited plans)."""
        with self._lock:
            self.requests[registry] = self.requests.get(registry, 0) + 1
            key = registry if registry in self._faults else "*"
            if key not in self._faults:
                return None
            plan, left = self._faults[key]
            if plan.mode == "none":
                return None
            if plan.count:
                if left <= 0:
                    del self._faults[key]
                    return None
                self._faults[key] = (plan, left - 1)
            return plan

    def reset(self) -> None:
        """Clear faults and counters."""
        with self._lock:
            self._faults.clear()
            self.requests = dict.fromkeys(REGISTRIES, 0)

    def stats(self) -> dict[str, Any]:
        """Requests received per registry."""
        with self._lock:
            return {"requests": dict(self.requests), "total": sum(self.requests.values())}

    # -- answering -----------------------------------------------------------------------

    def _intruder_signer(self) -> Signer:
        if self._intruder is None:
            from gateway.signing.keys import new_key, self_signed

            key = new_key("rsa-sha256")
            self._intruder = Signer(key, self_signed("viss-intruder", key), "rsa-sha256")
        return self._intruder

    def answer(
        self, registry: str, raw: bytes, fault: FaultPlan | None = None
    ) -> tuple[int, bytes]:
        """Answer one SOAP request; returns HTTP status and body."""
        mode = fault.mode if fault else "none"
        if mode == "server_fault":
            err: GatewayError = PartnerServerFaultError("registry database unavailable")
            err.code = "VISS_INTERNAL"
            return 500, build_fault(err)
        if mode == "malformed":
            return 200, b"<soap:Envelope><soap:Body><broken"
        try:
            envelope = parse_envelope(raw, self.limits)
            header = read_header(envelope.header, VISS_HEADER, self.schemas)
            contract = REGISTRIES[registry]
            if header.service[-2] != contract.operation:
                raise BadInputError(f"service {header.service[-2]} is not served at {registry}")
            if envelope.body.tag != contract.request_tag:
                raise BadInputError(f"expected {contract.request_root}")
            self.schemas.validate(envelope.body, contract.schema)
            if mode == "client_fault":
                raise BadInputError("request refused by the registry (simulated)")
        except GatewayError as exc:
            bad = BadInputError(exc.message)
            bad.code = exc.code
            return 500, build_fault(bad)
        code = envelope.body.findtext(f"{{{contract.namespace}}}PersonalCode") or ""
        request_id = "wrong-id" if mode == "wrong_header" else header.id
        echoed = header.replace_id(request_id)
        signer = self._intruder_signer() if mode == "untrusted_signature" else self.signer
        body = self._body(registry, code, header.id, signer, tamper=mode == "bad_signature")
        return 200, build_envelope(body, echoed.serialize())

    def _body(
        self, registry: str, personal_code: str, request_id: str, signer: Signer, *, tamper: bool
    ) -> bytes:
        person = self.population.get(personal_code)
        record = person.record(registry) if person else None
        with self._lock:
            self._answers += 1
            serial = self._answers
        canonical: dict[str, Any] = {
            "request_id": request_id,
            "response_id": f"{registry.upper()}-{serial:08d}-{uuid.uuid4().hex[:8]}",
            "answered_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "personal_code": personal_code,
            "result": "FOUND" if record is not None else "NOT_FOUND",
            **(record or {}),
        }
        signed = signer.sign(self.mappings[registry].to_xml(canonical))
        if tamper:
            # Change one signed value after signing: the digest no longer matches.
            target = signed.find(f"{{{REGISTRIES[registry].namespace}}}AnsweredAt")
            assert target is not None
            target.text = "2000-01-01T00:00:00Z"
        assert signed.find(f"{{{DS}}}Signature") is not None
        return serialize(signed, declaration=False)


def create_viss_app(sim: VissSimulator) -> FastAPI:
    """The simulator's HTTP application: four SOAP endpoints, WSDLs and fault control."""
    app = FastAPI(title="VISS simulator (VIIS, IIS, VID, RD)", version="1")

    @app.get("/soap/viss/{registry}")
    def wsdl(registry: str) -> Response:
        document = sim.wsdl.get(registry)
        if document is None:
            return JSONResponse({"error": f"no registry {registry}"}, status_code=404)
        return Response(document, media_type="text/xml; charset=utf-8")

    @app.post("/soap/viss/{registry}")
    async def soap(registry: str, request: Request) -> Response:
        if registry not in REGISTRIES:
            return JSONResponse({"error": f"no registry {registry}"}, status_code=404)
        raw = await request.body()
        fault = sim.take_fault(registry)
        if fault is not None:
            if fault.mode == "http_503":
                return Response(b"Service Unavailable", status_code=503, media_type="text/plain")
            if fault.mode in ("latency", "timeout"):
                await asyncio.sleep(fault.delay or (30.0 if fault.mode == "timeout" else 0.2))
        status, body = await run_in_threadpool(sim.answer, registry, raw, fault)
        return Response(body, status_code=status, media_type="text/xml; charset=utf-8")

    @app.post("/control/fault")
    def set_fault(plan: FaultPlan) -> dict[str, Any]:
        sim.set_fault(plan)
        return {"ok": True, "fault": plan.model_dump()}

    @app.post("/control/reset")
    def reset() -> dict[str, Any]:
        sim.reset()
        return {"ok": True}

    @app.get("/control/stats")
    def stats() -> dict[str, Any]:
        return sim.stats()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    # The served WSDLs import /xsd/...: serve the schema tree so clients can resolve them.
    from gateway.sim.apps import xsd_router

    app.include_router(xsd_router(sim.settings.paths.xsd))
    return app
