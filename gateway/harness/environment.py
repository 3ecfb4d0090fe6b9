"""``--sim``: our simulators and our gateway, started in this process on loopback.

The same components the integration tests start (tests/integration/conftest.py ``running``):
the E-case platform simulator with every E-case institution behind it, each direct
institution's simulator, the gateway's API with its delivery worker, each a real uvicorn
server on a free loopback port. Keys and certificates are generated into a temporary
directory for the run (never the project's ``var/keys``), and the database is a temporary
SQLite file. The requests that the outbound samples answer are really sent first by the
simulated institutions, so replies route as they do in production.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gateway.config import Settings, deep_merge, load_settings
from gateway.errors import ConfigError, GatewayError
from gateway.signing.keys import init_keys

if TYPE_CHECKING:
    from gateway.harness.cases import ContractModel

__all__ = [
    "Preparer",
    "SimEnvironment",
    "content_preparers",
    "free_port",
    "sim_environment",
    "sim_settings",
]

#: Makes a field's value for a message about to be sent: (canonical, message id) -> value.
Preparer = Callable[[dict[str, Any], str], Any]


def content_preparers(settings: Settings) -> dict[str, Preparer]:
    """What the harness must mint afresh for a valid message, by canonical field name.

    ``identity_assertion`` (e-service requests): the E-case platform's signed assertion of
    the portal user, bound to the request's id and valid for minutes, so a sample can only
    carry a placeholder. Minted with the platform's identity key (``simulators.identity``)
    for the portal simulator's client persona. Only our simulator environment has that key.
    """
    idp = settings.simulators.get("identity")
    if idp is None or idp.key is None or idp.certificate is None:
        return {}
    from gateway.eservices.identity import AssertionIssuer
    from gateway.eservices.portal import PERSONAS
    from gateway.signing import Signer

    issuer = AssertionIssuer(Signer.from_files(idp.key, idp.certificate))
    persona = PERSONAS["client"]

    def identity(_canonical: dict[str, Any], message_id: str) -> Any:
        return issuer.issue(
            request_id=message_id, personal_code=persona.personal_code, role=persona.role
        )

    return {"identity_assertion": identity}


def prepare(preparers: dict[str, Preparer], data: dict[str, Any], message_id: str) -> None:
    """Replace, in place, each top-level field a preparer makes."""
    for name, make in preparers.items():
        if name in data:
            data[name] = make(data, message_id)


#: The ports :func:`free_port` handed out last in this process (not handed out again while
#: their settings may still be starting their servers).
_GIVEN: deque[int] = deque(maxlen=1000)
_GIVEN_LOCK = threading.Lock()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port nobody listens on right now, outside the kernel's ephemeral range.

    A port found with ``bind(0)`` comes from the ephemeral range, from which the kernel also
    takes the source port of every outgoing connection: between finding it free and a server
    binding it, any connection on the machine may take it (``address already in use``, seen
    in CI). Ports below the range are never taken implicitly. Parallel pytest-xdist workers
    take disjoint slices of them, and this process does not hand out one of its last thousand
    again.
    """
    low, high = 20000, _ephemeral_range()[0]
    if high - low < 2000:  # an unusual range: fall back to the kernel's choice
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1))
    index = int(worker[2:]) if worker[:2] == "gw" and worker[2:].isdigit() else 0
    span = (high - low) // count
    start = low + (index % count) * span
    with _GIVEN_LOCK:
        for _ in range(500):
            port = random.randrange(start, start + span)
            if port in _GIVEN:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue  # in use (a server of ours, or a service of the machine)
            _GIVEN.append(port)
            return port
    raise ConfigError(f"no free loopback port in {start}-{start + span}")


def sim_settings(config: Path | str | None, workdir: Path, **changes: Any) -> Settings:
    """Settings from ``config`` with generated keys, a temp database and free ports;
    ``changes`` are merged last (a test's variant: an institution made poll-only, say)."""
    config_path = Path(config or "config.yaml")
    if not config_path.is_file():
        raise ConfigError(f"config file not found: {config_path}")
    data = yaml.safe_load(config_path.read_text("utf-8")) or {}
    names = sorted((data.get("institutions") or {}).keys())
    keys = workdir / "keys"
    # Every key file the configuration names under its keys folder is made for this run, and
    # the configuration pointed at it: a section added later (a new simulator, a new trust
    # store) needs no change here.
    folder = str((data.get("paths") or {}).get("keys", "var/keys")).rstrip("/") + "/"
    pairs: set[str] = set()
    data = _rekey(data, folder, keys, pairs)
    # The volunteer facade's seal and issuer pairs are found in the folder by name.
    pairs |= {"gateway", *(f"{n}-sim" for n in names), "viss-sim", "facade-seal"}
    init_keys(keys, sorted(pairs | {"facade-issuer"}))
    api_port, ecase_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{api_port}"
    institutions: dict[str, Any] = {}
    simulators: dict[str, Any] = {
        "ecase": {"host": "127.0.0.1", "port": ecase_port},
        "viss": {
            "port": free_port(),
            "key": str(keys / "viss-sim-key.pem"),
            "certificate": str(keys / "viss-sim-cert.pem"),
            "trust": {"certificates": [str(keys / "gateway-cert.pem")]},
        },
    }
    for name in names:
        institutions[name] = {
            "trust": {"certificates": [str(keys / f"{name}-sim-cert.pem")]},
            "retry": {"base_delay": 0.05, "max_delay": 0.5},
        }
        simulators[name] = {
            "key": str(keys / f"{name}-sim-key.pem"),
            "certificate": str(keys / f"{name}-sim-cert.pem"),
            "trust": {"certificates": [str(keys / "gateway-cert.pem")]},
            "gateway_url": gateway_url,
        }
        if (data["institutions"][name] or {}).get("channel") == "direct":
            port = free_port()
            institutions[name].update(
                endpoint=f"http://127.0.0.1:{port}/soap/{name}",
                connect_timeout=2,
                operation_timeout=10,
            )
            simulators[name].update(host="127.0.0.1", port=port)
    overrides: dict[str, Any] = {
        "paths": {"keys": str(keys)},
        "api": {"host": "127.0.0.1", "port": api_port},
        "store": {"url": f"sqlite:///{workdir}/gateway.db"},
        "signing": {
            "key": str(keys / "gateway-key.pem"),
            "certificate": str(keys / "gateway-cert.pem"),
        },
        "ecase": {
            "endpoint": f"http://127.0.0.1:{ecase_port}/soap/ecase",
            "connect_timeout": 2,
            "operation_timeout": 10,
        },
        "institutions": institutions,
        "simulators": simulators,
        "delivery": {"poll_interval": 0.05},
        "journal": {"anchor_path": str(workdir / "anchors")},
        "jobs": {"enabled": False},
        # VISS is not under test here; its simulator keys are the run's own.
        "registries": {"trust": {"certificates": [str(keys / "viss-sim-cert.pem")]}},
        "logging": {"environment": "production", "level": "WARNING"},
    }
    return load_settings(config_path, **deep_merge(deep_merge(data, overrides), changes))


def _rekey(value: Any, folder: str, keys: Path, pairs: set[str]) -> Any:
    """``value`` with every ``<folder>NAME-key.pem``/``-cert.pem`` moved into ``keys``; the
    NAMEs are collected in ``pairs``."""
    if isinstance(value, dict):
        return {k: _rekey(v, folder, keys, pairs) for k, v in value.items()}
    if isinstance(value, list):
        return [_rekey(v, folder, keys, pairs) for v in value]
    if isinstance(value, str) and value.startswith(folder) and value.endswith(".pem"):
        stem = value[len(folder) : -len(".pem")]
        for suffix in ("-key", "-cert"):
            if stem.endswith(suffix) and "/" not in stem:
                pairs.add(stem[: -len(suffix)])
        return str(keys / value[len(folder) :])
    return value


@dataclass
class SimEnvironment:
    """The running simulators and gateway, and where each answers."""

    settings: Settings
    gateway_url: str
    platform: Any  # gateway.sim.EcasePlatformSim
    direct: dict[str, Any]  # name -> gateway.sim.InstitutionSim
    keys: Path
    #: Fresh content a valid message needs from a third party, by canonical field name
    #: (see :func:`content_preparers`).
    preparers: dict[str, Preparer] = field(default_factory=dict)
    #: The inbound types' valid samples by message id (see :func:`_inbound_samples`).
    inbound_samples: dict[str, tuple[Any, dict[str, Any]]] = field(default_factory=dict)

    def fresh_reference(self, reference: str) -> str | None:
        """A new message like the inbound sample ``reference`` names, really sent by its
        institution, so that a reply (one per request, say) has a request of its own; its
        id, or None if ``reference`` names no sample or the send failed."""
        found = self.inbound_samples.get(reference)
        if found is None:
            return None
        prefix = reference.split("-", 1)[0]
        new_id = f"{prefix}-H-{uuid.uuid4().hex[:16]}"
        mapping, sample = found
        return new_id if _send_as_sender(self, mapping, sample, reference, new_id) else None

    def partner_url(self, institution: str) -> str:
        """Where the gateway reaches ``institution``: the platform, or its own endpoint."""
        found = self.settings.institution(institution)
        if found.channel == "direct":
            return str(found.endpoint)
        return str(self.settings.ecase.endpoint)

    def gateway_endpoint(self, institution: str) -> str:
        """Where ``institution`` reaches the gateway: /soap/ecase or /soap/<name>."""
        found = self.settings.institution(institution)
        name = institution if found.channel == "direct" else "ecase"
        return f"{self.gateway_url}/soap/{name}"

    def institution_sim(self, institution: str) -> Any:
        """The simulated institution (behind the platform, or direct)."""
        return self.direct.get(institution) or self.platform.institution(institution)


def _inbound_samples(env: SimEnvironment) -> dict[str, tuple[Any, dict[str, Any]]]:
    """The inbound types' valid samples by their message id: what outbound samples name."""
    from gateway.harness.cases import ContractModel

    contract = ContractModel(env.settings)
    by_id: dict[str, tuple[Any, dict[str, Any]]] = {}
    for mapping in contract.ecase_mappings():
        if mapping.direction != "inbound":
            continue
        try:
            sample = contract.valid_canonical(mapping)
        except (FileNotFoundError, GatewayError):
            continue
        by_id[str(mapping.get_path(sample, mapping.partner_message_id))] = (mapping, sample)
    return by_id


def _send_as_sender(
    env: SimEnvironment, mapping: Any, sample: dict[str, Any], reference: str, message_id: str
) -> bool:
    """Have the institution that sends ``mapping``'s type send ``sample`` as ``message_id``
    (the sender named by the reference's prefix, else the first by name)."""
    senders = sorted(
        n for n, c in env.settings.institutions.items() if mapping.message_type in c.sends
    )
    prefix = reference.split("-", 1)[0].lower()
    sender = prefix if prefix in senders else (senders[0] if senders else None)
    if sender is None:
        return False
    data = dict(sample)
    mapping_id = mapping.partner_message_id
    if "." not in mapping_id:
        data[mapping_id] = message_id
    prepare(env.preparers, data, message_id)
    try:
        env.institution_sim(sender).send(mapping.message_type, canonical=data, keep_id=True)
    except GatewayError:
        return False  # already there (an earlier run on the same database), or refused
    return True


def hold_for_poll(env: SimEnvironment, institution: str, contract: ContractModel) -> list[str]:
    """Have a poll-only simulated institution hold one valid message of each type it sends
    (fresh ids, content prepared as for a send; ``contract``: the run's, loaded once); their
    ids."""
    sim = env.institution_sim(institution)
    held = []
    for message_type in env.settings.institution(institution).sends:
        mapping = contract.mappings.get(message_type)
        try:
            data = contract.valid_canonical(mapping)
        except FileNotFoundError:
            continue
        message_id = f"{institution.upper()}-H-{uuid.uuid4().hex[:16]}"
        if "." not in mapping.partner_message_id:
            data[mapping.partner_message_id] = message_id
        prepare(env.preparers, data, message_id)
        held.append(sim.hold(message_type, canonical=data, keep_id=True))
    return held


def _seed_replies(env: SimEnvironment) -> None:
    """Have the simulated institutions send, with their samples' own ids, the messages the
    outbound samples refer to (an evaluation report names its request, an e-service answer
    its request): found by value, as the samples refer to each other like a real exchange."""
    from gateway.harness.cases import ContractModel
    from gateway.sim.answers import string_leaves

    contract = ContractModel(env.settings)
    by_id = env.inbound_samples
    done: set[str] = set()
    for mapping in contract.ecase_mappings():
        if mapping.direction != "outbound":
            continue
        try:
            sample = contract.valid_canonical(mapping)
        except (FileNotFoundError, GatewayError):
            continue
        for reference in string_leaves(sample):
            if reference in by_id and reference not in done:
                done.add(reference)
                request, request_sample = by_id[reference]
                _send_as_sender(env, request, request_sample, reference, reference)


@contextmanager
def sim_environment(settings: Settings, *, seed: bool = True) -> Iterator[SimEnvironment]:
    """Start the simulators and the gateway of ``settings`` (see :func:`sim_settings`)."""
    from gateway.api import create_app
    from gateway.delivery import DeliveryWorker
    from gateway.runtime import Runtime
    from gateway.server import start_app_thread, stop_app_threads
    from gateway.sim import (
        EcasePlatformSim,
        InstitutionSim,
        create_institution_app,
        create_platform_app,
    )
    from gateway.sim.platform import simulated_institutions

    platform = EcasePlatformSim(settings)

    def serve(app: Any, port: int, name: str) -> Any:
        try:
            return start_app_thread(app, "127.0.0.1", port, f"harness-{name}")
        except RuntimeError as exc:  # a port taken meanwhile: the run cannot start
            raise ConfigError(str(exc)) from exc

    direct = {
        name: InstitutionSim(settings, name, platform.contract)
        for name in simulated_institutions(settings, "direct")
    }
    servers = [serve(create_platform_app(platform), settings.simulators["ecase"].port, "ecase")]
    for name, sim in direct.items():
        servers.append(serve(create_institution_app(sim), sim.sim.port, name))
    runtime = Runtime(settings)
    worker = DeliveryWorker(runtime)
    worker.start()
    servers.append(serve(create_app(runtime, worker), settings.api.port, "gateway"))
    env = SimEnvironment(
        settings=settings,
        gateway_url=f"http://127.0.0.1:{settings.api.port}",
        platform=platform,
        direct=direct,
        keys=Path(settings.signing.key).parent,
        preparers=content_preparers(settings),
    )
    env.inbound_samples = _inbound_samples(env)
    try:
        if seed:
            _seed_replies(env)
        yield env
    finally:
        worker.stop()
        stop_app_threads(*servers)
        runtime.close()
