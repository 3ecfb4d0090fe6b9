"""HTTP applications of the simulators: the E-case platform, and a direct institution.

Both serve the universal contract's institution side (``EcaseService``) with a WSDL whose
schema imports resolve (``/xsd/...`` is served from the schema tree), plus control routes to
read what was received, inject faults and make an institution send::

    E-case platform                                   direct institution <name>
    GET|POST /soap/ecase  (?wsdl)                     GET|POST /soap/<name>  (?wsdl)
    GET  /sim/ecase/received[/{institution}]          GET  /sim/<name>/received
    DELETE /sim/ecase/received                        DELETE /sim/<name>/received
    PUT  /sim/ecase/faults[/{institution}]            PUT  /sim/<name>/faults
    POST /sim/ecase/send/{institution}/{type}         POST /sim/<name>/send/{type}
    POST /sim/ecase/hold/{institution}/{type}         POST /sim/<name>/hold/{type}
    GET|PUT /sim/ecase/polls/{institution}            GET|PUT /sim/<name>/polls
    GET  /xsd/{path}, /health                         GET  /xsd/{path}, /health

The platform app also carries the simulated E-case shared-classifier service (``/classifiers``
and its ``/sim/classifiers`` control routes). ``hold`` keeps a message for a poll-only
institution's next poll (``?tamper=true``: altered after signing); ``polls`` shows what is
pending and what the gateway said of each message taken, and ``PUT`` makes the next
acknowledgements fail (``{"fail_acks": 1}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from gateway.channels.ecase import ECASE_ENDPOINT
from gateway.config import Settings
from gateway.errors import GatewayError, PartnerRejectedError, RetryableError
from gateway.sim.faults import FaultPlan, fault_response
from gateway.sim.institution import InstitutionSim
from gateway.sim.platform import EcasePlatformSim

__all__ = [
    "create_institution_app",
    "create_platform_app",
    "served_simulators",
    "simulator_app",
    "simulator_url",
    "xsd_router",
]

_XML = "text/xml; charset=utf-8"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def xsd_router(root: Path) -> APIRouter:
    """``GET /xsd/{path}``: the schema tree under ``root``, so a served WSDL's imports resolve."""
    router = APIRouter()
    base = Path(root).resolve()

    @router.get("/xsd/{path:path}", summary="Schemas imported by the served WSDL")
    def xsd_file(path: str) -> Response:
        # Only .xsd files inside the schema tree: no traversal, nothing else on disk.
        target = (base / path).resolve()
        if not target.is_relative_to(base) or target.suffix != ".xsd" or not target.is_file():
            return _error(404, "NOT_FOUND", "no such schema")
        return Response(target.read_bytes(), media_type=_XML)

    return router


def _add_common(app: FastAPI, settings: Settings) -> None:
    """``/xsd/{path}`` (the served WSDL's schema imports) and ``/health``."""
    app.include_router(xsd_router(settings.paths.xsd))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}


async def _send(
    sim: InstitutionSim, message_type: str, canonical: dict[str, Any] | None, keep_id: bool
) -> Any:
    """Make ``sim`` send; the gateway's refusal or absence is a 502 carrying its error."""
    try:
        return await run_in_threadpool(
            lambda: sim.send(message_type, canonical=canonical, keep_id=keep_id)
        )
    except (PartnerRejectedError, RetryableError) as exc:
        return JSONResponse({"error": exc.as_dict()}, status_code=502)
    except GatewayError as exc:
        # Our side: an unknown type, one the institution does not send, a bad body.
        return JSONResponse({"error": exc.as_dict()}, status_code=400)


class PollFaults(BaseModel):
    """Faults of a poll-only institution's acknowledgements."""

    #: The next N AcknowledgePolledMessages answer with a Server fault (nothing removed).
    fail_acks: int = Field(0, ge=0)


async def _hold(
    sim: InstitutionSim,
    message_type: str,
    canonical: dict[str, Any] | None,
    keep_id: bool,
    tamper: bool,
    any_type: bool,
) -> Any:
    """Make a poll-only ``sim`` hold a message for the gateway's next poll."""
    try:
        message_id = await run_in_threadpool(
            lambda: sim.hold(
                message_type,
                canonical=canonical,
                keep_id=keep_id,
                tamper=tamper,
                any_type=any_type,
            )
        )
    except GatewayError as exc:
        return JSONResponse({"error": exc.as_dict()}, status_code=400)
    return {"message_id": message_id, "pending": len(sim.polls.snapshot()["pending"])}


def create_platform_app(platform: EcasePlatformSim) -> FastAPI:
    """The E-case platform simulator's application."""
    from gateway.sim.classifiers import ClassifierCatalogue, create_classifiers_router

    app = FastAPI(title="E-case platform simulator", version="1")
    app.state.platform = platform
    soap_path = f"/soap/{ECASE_ENDPOINT}"
    control = f"/sim/{ECASE_ENDPOINT}"

    @app.get(soap_path, summary="The platform's WSDL (EcaseService), also at ?wsdl")
    def wsdl() -> Response:
        return Response(platform.wsdl, media_type=_XML)

    @app.post(soap_path, summary="Every message to an institution, routed by the service header")
    async def soap(request: Request) -> Response:
        early = await fault_response(platform.faults.take(), "the E-case platform")
        if early is not None:
            return early
        raw = await request.body()
        try:
            sim, envelope = await run_in_threadpool(platform.route, raw)
        except GatewayError as exc:
            status, body = platform.refuse(exc)
            return Response(body, status_code=status, media_type=_XML)
        late = await fault_response(sim.faults.take(), sim.name)
        if late is not None:
            return late
        status, body = await run_in_threadpool(sim.receive_envelope, envelope)
        return Response(body, status_code=status, media_type=_XML)

    @app.get(f"{control}/received", summary="Everything received, in arrival order")
    def received() -> dict[str, Any]:
        return platform.snapshot()

    @app.get(f"{control}/received/{{institution}}", response_model=None)
    def received_by(institution: str) -> dict[str, Any] | JSONResponse:
        sim = platform.institutions.get(institution)
        if sim is None:
            return _error(404, "NOT_FOUND", f"no simulated institution {institution!r}")
        return sim.records.snapshot()

    @app.delete(f"{control}/received")
    def reset() -> dict[str, str]:
        platform.reset()
        return {"status": "reset"}

    @app.put(f"{control}/faults", summary="A fault of the platform itself (every addressee)")
    def platform_faults(plan: FaultPlan) -> FaultPlan:
        platform.faults.set(plan)
        return plan

    @app.put(f"{control}/faults/{{institution}}", response_model=None)
    def institution_faults(institution: str, plan: FaultPlan) -> FaultPlan | JSONResponse:
        sim = platform.institutions.get(institution)
        if sim is None:
            return _error(404, "NOT_FOUND", f"no simulated institution {institution!r}")
        sim.faults.set(plan)
        return plan

    @app.post(f"{control}/hold/{{institution}}/{{message_type}}", response_model=None)
    async def hold(
        institution: str,
        message_type: str,
        keep_id: bool = False,
        tamper: bool = False,
        any_type: bool = False,
        canonical: dict[str, Any] | None = Body(None),  # noqa: B008 - FastAPI's idiom
    ) -> Any:
        sim = platform.institutions.get(institution)
        if sim is None:
            return _error(404, "NOT_FOUND", f"no simulated institution {institution!r}")
        return await _hold(sim, message_type, canonical, keep_id, tamper, any_type)

    @app.get(f"{control}/polls/{{institution}}", response_model=None)
    def polls(institution: str) -> dict[str, Any] | JSONResponse:
        sim = platform.institutions.get(institution)
        if sim is None:
            return _error(404, "NOT_FOUND", f"no simulated institution {institution!r}")
        return sim.polls.snapshot()

    @app.put(f"{control}/polls/{{institution}}", response_model=None)
    def poll_faults(institution: str, plan: PollFaults) -> PollFaults | JSONResponse:
        sim = platform.institutions.get(institution)
        if sim is None:
            return _error(404, "NOT_FOUND", f"no simulated institution {institution!r}")
        sim.polls.fail_next_acks(plan.fail_acks)
        return plan

    @app.post(f"{control}/send/{{institution}}/{{message_type}}", response_model=None)
    async def send(
        institution: str,
        message_type: str,
        keep_id: bool = False,
        canonical: dict[str, Any] | None = Body(None),  # noqa: B008 - FastAPI's idiom
    ) -> Any:
        sim = platform.institutions.get(institution)
        if sim is None:
            return _error(404, "NOT_FOUND", f"no simulated institution {institution!r}")
        return await _send(sim, message_type, canonical, keep_id)

    app.include_router(
        create_classifiers_router(
            ClassifierCatalogue.from_mappings(platform.settings.paths.mappings)
        )
    )
    _add_common(app, platform.settings)
    return app


def create_institution_app(sim: InstitutionSim) -> FastAPI:
    """The application of a direct-channel institution: its own endpoint and controls."""
    app = FastAPI(title=f"{sim.name.upper()} simulator (direct channel)", version="1")
    app.state.institution = sim
    host, port = sim.sim.host, sim.sim.port
    wsdl_document = sim.contract.served_wsdl(f"http://{host}:{port}/soap/{sim.name}")
    soap_path = f"/soap/{sim.name}"
    control = f"/sim/{sim.name}"

    @app.get(soap_path, summary="The institution's WSDL (EcaseService), also at ?wsdl")
    def wsdl() -> Response:
        return Response(wsdl_document, media_type=_XML)

    @app.post(soap_path, summary="Messages and queries from the gateway")
    async def soap(request: Request) -> Response:
        early = await fault_response(sim.faults.take(), sim.name)
        if early is not None:
            return early
        status, body = await run_in_threadpool(sim.receive, await request.body())
        return Response(body, status_code=status, media_type=_XML)

    @app.get(f"{control}/received")
    def received() -> dict[str, Any]:
        return sim.records.snapshot()

    @app.delete(f"{control}/received")
    def reset() -> dict[str, str]:
        sim.records.reset()
        return {"status": "reset"}

    @app.put(f"{control}/faults")
    def faults(plan: FaultPlan) -> FaultPlan:
        sim.faults.set(plan)
        return plan

    @app.post(f"{control}/hold/{{message_type}}", response_model=None)
    async def hold(
        message_type: str,
        keep_id: bool = False,
        tamper: bool = False,
        any_type: bool = False,
        canonical: dict[str, Any] | None = Body(None),  # noqa: B008 - FastAPI's idiom
    ) -> Any:
        return await _hold(sim, message_type, canonical, keep_id, tamper, any_type)

    @app.get(f"{control}/polls")
    def polls() -> dict[str, Any]:
        return sim.polls.snapshot()

    @app.put(f"{control}/polls")
    def poll_faults(plan: PollFaults) -> PollFaults:
        sim.polls.fail_next_acks(plan.fail_acks)
        return plan

    @app.post(f"{control}/send/{{message_type}}", response_model=None)
    async def send(
        message_type: str,
        keep_id: bool = False,
        canonical: dict[str, Any] | None = Body(None),  # noqa: B008 - FastAPI's idiom
    ) -> Any:
        return await _send(sim, message_type, canonical, keep_id)

    _add_common(app, sim.settings)
    return app


def served_simulators(settings: Settings) -> list[str]:
    """The simulators ``serve --with-simulators`` starts: the E-case platform (with every
    E-case institution in it), each direct institution's own, and VISS, as configured."""
    from gateway.sim.platform import simulated_institutions

    names = [ECASE_ENDPOINT] if ECASE_ENDPOINT in settings.simulators else []
    names += simulated_institutions(settings, "direct")
    names += ["viss"] if "viss" in settings.simulators else []
    return names


def simulator_url(settings: Settings, name: str) -> str:
    """The SOAP URL simulator ``name`` serves (VISS: one per registry, shown as a pattern)."""
    sim = settings.simulators[name]
    base = f"http://{sim.host}:{sim.port}"
    if name == "viss":
        return f"{base}/soap/viss/{{viis|iis|vid|rd}}"
    return f"{base}/soap/{name}"


def simulator_app(settings: Settings, name: str) -> tuple[FastAPI, str, int, str]:
    """The application of simulator ``name`` (``ecase``, a direct institution, ``viss``):
    (app, host, port, its SOAP URL). ConfigError for anything else."""
    from gateway.errors import ConfigError

    if name == "viss":
        from gateway.registries.sim import VissSimulator, create_viss_app

        viss = VissSimulator(settings)
        app = create_viss_app(viss)
        return app, viss.sim.host, viss.sim.port, simulator_url(settings, name)
    if name == ECASE_ENDPOINT:
        platform = EcasePlatformSim(settings)
        app = create_platform_app(platform)
        return app, platform.sim.host, platform.sim.port, simulator_url(settings, name)
    found = settings.institutions.get(name)
    if found is None or found.channel != "direct":
        raise ConfigError(
            f"no simulator {name!r}: use {ECASE_ENDPOINT}, viss or a direct-channel institution"
        )
    sim = InstitutionSim(settings, name)
    app = create_institution_app(sim)
    return app, sim.sim.host, sim.sim.port, simulator_url(settings, name)
