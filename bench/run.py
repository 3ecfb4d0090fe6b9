"""Throughput and latency of plus-gateway against the floor of its own primitives.

``python -m bench.run`` (or ``make bench``) measures, in one bounded run on loopback:

* the *floor*: the same work as the gateway, in-process, one thread, no HTTP -
  outbound: parse JSON + validate canonical + map to XML + XSD + sign + durable commit;
  inbound: hardened parse + verify + XSD + map + durable commit (``Store.accept_*``,
  SQLite WAL ``synchronous=FULL``, one commit per message);
* the full pipeline in-process (``runtime.routes``), one thread, for attribution;
* the real server (``python -m gateway --config <tmp> serve`` in a subprocess, delivery
  worker disabled) driven by concurrent keep-alive clients: ``POST /v1/outbound/...``
  (execution notifications answering a court ruling already in the inbox, unique
  Idempotency-Keys) and ``POST /soap/ecase`` (court rulings from the simulated TIS, payload
  and header blocks signed and built beforehand by ``InstitutionSim.build``, outside the timed
  section, unique message ids);
* the overhead of reaching an institution through the E-case platform simulator against its
  own direct endpoint (``bench.channels``: the same message type to the same simulated
  institution over both channels, in this run);
* with ``--calendar``: publishing availability of 50 resources over a year to Radicale, full
  and incremental, against a bare CalDAV client's floor (``bench.calendar``);
* with ``--hostile`` (or only that, ``--only-hostile``): the time and memory to refuse each
  class of hostile 10 MB XML, each in a fresh subprocess (``bench.hostile``), with the ratio
  to one valid message.
* with ``--opendata`` (or only that, ``--only-opendata``): a year of the eight open data sets
  from a 17,500-client extract, built and published to the CKAN simulator, against a floor of
  bare counting and uploading (``bench.opendata``);
* with ``--registries`` (or only that, ``--only-registries``): registry latency over a direct
  zeep call, the profile fan-out over its slowest registry, and 32 officers with one registry
  slowed past its timeout (``bench.registries``);
* with ``--growth`` (or only that, ``--only-growth``): ten years of history at
  ``--growth-scale`` (0.1 by default, 1.0 for the full size), then the interactive queries,
  ``journal verify``, a nightly retention run and the size, on SQLite and, with
  ``--growth-postgres``, PostgreSQL (``bench.growth``);
* with ``--drain``, ``--accept``, ``--memory`` (issue 14 parts 1, 4, 5; quick sizes unless
  ``--full``): the backlog drain after an outage against its sequential peer
  (``bench.drain``), HTTP accept with 1 and 2 server processes against floors on 1 and 2
  cores, on SQLite and, with ``--accept-postgres``, PostgreSQL (``bench.accept``), and RSS
  over many messages per flow (``bench.memory``);

It prints every rate with its ratio to the floor and writes ``bench/results/latest.json``.
It is a benchmark, not a test: it never fails on a slow result.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.common import (
    RESULTS,
    ROOT,
    SAMPLES,
    BenchEnv,
    Stopwatch,
    decision_envelope,
    latency_summary,
    machine,
    make_env,
    quiet_logging,
    soap_headers,
    tree_cpu_seconds,
)

OUTBOUND_TYPE = "execution_notification"
INBOUND_TYPE = "court_ruling"
#: The simulated institution that sends the court rulings and receives the notifications.
SENDER = "tis"
#: Where every E-case institution posts to the gateway.
INBOUND_PATH = "/soap/ecase"

# -- floors (in-process, one thread) ----------------------------------------------------------


@dataclass
class Phase:
    """What one measured phase produced."""

    name: str
    count: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Messages per second."""
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def window_short(self, duration: float) -> bool:
        """True when the phase ended before its planned duration (input ran out)."""
        return self.seconds < duration * 0.95

    def as_dict(self) -> dict[str, Any]:
        """JSON form (stage times as mean milliseconds per message)."""
        out: dict[str, Any] = {
            "messages": self.count,
            "seconds": round(self.seconds, 3),
            "rate_per_s": round(self.rate, 1),
            **latency_summary(self.latencies),
        }
        if self.stages and self.count:
            out["stage_mean_ms"] = {
                k: round(v / self.count * 1000, 3) for k, v in self.stages.items()
            }
        out.update(self.extra)
        return out


class _Timer:
    """Adds the time of each ``with timer(stage)`` block to ``stages``."""

    def __init__(self, stages: dict[str, float]) -> None:
        self.stages = stages
        self.name = ""
        self.t0 = 0.0

    def __call__(self, name: str) -> _Timer:
        self.name = name
        return self

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.stages[self.name] = self.stages.get(self.name, 0.0) + time.perf_counter() - self.t0


def floor_outbound(runtime: Any, body: bytes, seconds: float) -> Phase:
    """Outbound primitives for ``seconds``: JSON -> validated, addressed, mapped, XSD, signed,
    committed. Addressing is reply routing: the inbox is asked who sent the decision the
    notification names (so that decision must be in the inbox)."""
    from gateway.pipeline import new_id
    from gateway.pipeline.steps import canonical_sha256
    from gateway.store import OutboundRecord
    from gateway.xml import serialize

    mapping = runtime.mappings.get(OUTBOUND_TYPE)
    stages: dict[str, float] = {}
    timer = _Timer(stages)
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        with timer("parse_json"):
            canonical = json.loads(body)
        message_id = new_id()
        # What the Stamp step fills in (the gateway owns message_id and sent_at).
        canonical["message_id"] = message_id
        canonical["sent_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        with timer("validate_json"):
            mapping.validate_canonical(canonical)
        with timer("address"):
            addressee = runtime.router.resolve(mapping, canonical, canonical.pop("addressee", None))
        with timer("map_to_xml"):
            document = mapping.to_xml(canonical)
        with timer("xsd"):
            runtime.schemas.validate(document, mapping.schema)
        with timer("sign"):
            payload = serialize(runtime.signer.sign(document), declaration=False)
        ordering = mapping.get_path(canonical, mapping.ordering_key)
        with timer("commit"):
            runtime.store.outbox.accept(
                OutboundRecord(
                    message_id=message_id,
                    partner=addressee,
                    operation=mapping.operation,
                    message_type=mapping.message_type,
                    payload=payload,
                    ordering_key=str(ordering),
                    correlation_id=str(ordering),
                    idempotency_key=uuid.uuid4().hex,
                    request_sha256=canonical_sha256({"type": OUTBOUND_TYPE, "body": canonical}),
                )
            )
        latencies.append(time.perf_counter() - t0)
    return Phase("floor_outbound", len(latencies), time.perf_counter() - start, latencies, stages)


def floor_inbound(runtime: Any, envelopes: list[bytes], seconds: float) -> Phase:
    """Inbound primitives: hardened parse, header blocks read (XSD) and the sender looked up,
    verify with its trust store, XSD, map, commit (stops when out of input)."""
    from gateway.channels.ecase import ECASE_HEADER_PROFILE
    from gateway.channels.header import read_header
    from gateway.pipeline import new_id
    from gateway.soap.envelope import parse_envelope
    from gateway.store import InboundRecord

    stages: dict[str, float] = {}
    timer = _Timer(stages)
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    for raw in envelopes:
        if time.perf_counter() >= deadline:
            break
        t0 = time.perf_counter()
        with timer("parse"):
            envelope = parse_envelope(raw, runtime.limits)
        with timer("header"):
            header = read_header(envelope.header, ECASE_HEADER_PROFILE, runtime.schemas)
            sender = runtime.directory.by_member(header.client)
        mapping = runtime.mappings.by_root(envelope.body.tag)
        with timer("verify"):
            document = sender.trust.verify(envelope.body)
        with timer("xsd"):
            runtime.schemas.validate(document, mapping.schema)
        with timer("map_to_canonical"):
            canonical = mapping.to_canonical(document)
        partner_id = str(mapping.get_path(canonical, mapping.partner_message_id))
        with timer("commit"):
            runtime.store.inbox.accept(
                InboundRecord(
                    message_id=new_id(),
                    partner=sender.name,
                    operation=mapping.operation,
                    message_type=mapping.message_type,
                    partner_message_id=partner_id,
                    correlation_id=partner_id,
                    canonical=canonical,
                    payload=raw,
                )
            )
        latencies.append(time.perf_counter() - t0)
    return Phase("floor_inbound", len(latencies), time.perf_counter() - start, latencies, stages)


def pipeline_outbound(runtime: Any, body: bytes, seconds: float) -> Phase:
    """The gateway's own outbound route in-process (what the HTTP handler runs), one thread."""
    from gateway.pipeline import Exchange

    mapping = runtime.mappings.get(OUTBOUND_TYPE)
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        exchange = Exchange(
            direction="out",
            partner="",  # resolved by the route's address step
            mapping=mapping,
            canonical=json.loads(body),
            idempotency_key=uuid.uuid4().hex,
        )
        exchange = runtime.routes.outbound(exchange)
        latencies.append(time.perf_counter() - t0)
    return Phase("pipeline_outbound", len(latencies), time.perf_counter() - start, latencies)


def pipeline_inbound(runtime: Any, envelopes: list[bytes], seconds: float) -> Phase:
    """The gateway's own inbound route in-process (parse ... persist with duplicate check)."""
    from gateway.pipeline import Exchange

    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    for raw in envelopes:
        if time.perf_counter() >= deadline:
            break
        t0 = time.perf_counter()
        runtime.routes.inbound(
            Exchange(direction="in", partner="", endpoint=INBOUND_PATH.rsplit("/", 1)[1], raw=raw)
        )
        latencies.append(time.perf_counter() - t0)
    return Phase("pipeline_inbound", len(latencies), time.perf_counter() - start, latencies)


def institution_sim(env: BenchEnv) -> Any:
    """The simulated sender (TIS, on the E-case channel, with its own temp key)."""
    from gateway.sim import InstitutionSim

    return InstitutionSim(env.settings, SENDER)


def build_envelopes(sim: Any, count: int, budget: float) -> tuple[list[bytes], float]:
    """Signed court rulings with unique MessageIds, each with its header blocks, as the
    simulated institution posts them to ``/soap/ecase`` (``InstitutionSim.build``)."""
    from gateway.soap.envelope import build_envelope

    envelopes: list[bytes] = []
    start = time.perf_counter()
    while len(envelopes) < count and time.perf_counter() - start < budget:
        _, _, payload, header = sim.build(INBOUND_TYPE)
        envelopes.append(build_envelope(payload, header.serialize()))
    sim.records.reset()  # the simulator's own log of what it sent; not needed here
    return envelopes, time.perf_counter() - start


# -- the server ------------------------------------------------------------------------------


class Server:
    """The gateway in a subprocess: ``python -m gateway serve`` or uvicorn with N workers."""

    def __init__(self, env: BenchEnv, workers: int) -> None:
        self.env = env
        self.workers = workers
        self.base = f"http://127.0.0.1:{env.settings.api.port}"
        self.log_path = env.tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """What is started."""
        if self.workers <= 1:
            return [sys.executable, "-m", "gateway", "--config", str(self.env.config), "serve"]
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.common:server_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.env.settings.api.port),
            "--workers",
            str(self.workers),
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "2048",
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until /health answers."""
        if self.workers > 1:
            # Workers skip migrations (they would race); the schema is created here, once.
            from gateway.store import create_store_engine, migrate

            engine = create_store_engine(self.env.settings.store.url)
            migrate(engine)
            engine.dispose()
        env = {**os.environ, "PLUSGW_CONFIG": str(self.env.config)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.env.tmp, env=env
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    tail = self.log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{tail}")
                try:
                    if client.get(f"{self.base}/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"gateway did not answer on {self.base} within {timeout}s")

    @property
    def pid(self) -> int:
        """Process id of the server (the uvicorn master with several workers)."""
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the server and its workers."""
        return tree_cpu_seconds(self.pid) if self.proc else 0.0

    def stop(self) -> None:
        """Ask for a graceful stop (SIGINT), then insist; only our own process."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- HTTP load -------------------------------------------------------------------------------

Request = tuple[str, bytes, dict[str, str]]
CLIENTS = ("raw", "httpx")


class RawHttp:
    """One keep-alive HTTP/1.1 connection that writes the request's bytes and reads just the
    status line, the head and ``Content-Length`` bytes of body (or a chunked body to its end).

    A load generator for a server on the same two cores: httpx spends 0.5-1 ms of Python per
    request, a share of the machine the server under test then does not get. This client
    spends a few tens of microseconds and leaves the parsing of answers to the tests.
    """

    def __init__(self, base: str, timeout: float = 60.0) -> None:
        url = urlsplit(base)
        self.address = (str(url.hostname), int(url.port or 80))
        self.host = f"{url.hostname}:{url.port}"
        self.timeout = timeout
        self.sock = self._connect()
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        """Send one request and read its whole answer; the HTTP status."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        status = int(head[9:12])
        fields = head.lower()
        if b"\r\ntransfer-encoding: chunked" in fields:
            while b"\r\n0\r\n\r\n" not in b"\r\n" + rest:
                rest += self._recv()
            end = (b"\r\n" + rest).index(b"\r\n0\r\n\r\n") + 5
        else:
            at = fields.find(b"\r\ncontent-length:")
            length = int(fields[at + 17 : fields.index(b"\r\n", at + 2)]) if at >= 0 else 0
            while len(rest) < length:
                rest += self._recv()
            end = length
        self.buffer = rest[end:]
        return status

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def _read(self) -> None:
        self.buffer += self._recv()

    def reconnect(self) -> None:
        """A fresh connection after an error (the old one may hold half an answer)."""
        self.sock.close()
        self.buffer = b""
        self.sock = self._connect()

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()


class HttpxPoster:
    """The same interface over one httpx keep-alive connection (the earlier runs' client)."""

    def __init__(self, base: str) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.http = httpx.Client(base_url=base, timeout=60, limits=limits)
        self.http.get("/health")  # open the keep-alive connection now

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        """Send one request; the HTTP status."""
        return self.http.post(path, content=body, headers=headers).status_code

    def reconnect(self) -> None:
        """httpx opens a new connection by itself after an error."""

    def close(self) -> None:
        """Close the client."""
        self.http.close()


def http_load(
    server: Server,
    name: str,
    next_request: Callable[[], Request | None],
    *,
    clients: int,
    seconds: float,
    warmup: float,
    expect: int,
    profile_dir: Path | None = None,
    client: str = "httpx",
) -> Phase:
    """Closed-loop load: ``clients`` threads, one keep-alive connection each.

    Throughput counts successful responses completed inside the window after ``warmup``;
    if the requests run out (``next_request`` returns None) the window ends at the last
    response. ``client``: ``httpx``, or ``raw`` (:class:`RawHttp`, the cheap one).
    """
    if client not in CLIENTS:
        raise ValueError(f"client must be one of {CLIENTS}")
    records: list[tuple[float, float, int]] = []
    barrier = threading.Barrier(clients + 1)

    def worker() -> None:
        # Connected (and, for httpx, the keep-alive connection opened) before the clock starts.
        conn: RawHttp | HttpxPoster = (
            RawHttp(server.base) if client == "raw" else HttpxPoster(server.base)
        )
        try:
            barrier.wait()
            while time.perf_counter() < deadline:
                request = next_request()
                if request is None:
                    return
                path, body, headers = request
                t0 = time.perf_counter()
                try:
                    status = conn.post(path, body, headers)
                except (OSError, ValueError, httpx.HTTPError):
                    status = 0
                    conn.reconnect()
                records.append((t0, time.perf_counter(), status))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    deadline = time.perf_counter() + 3600  # replaced just before the clients are released
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    deadline = start + warmup + seconds
    barrier.wait()
    window_start = start + warmup
    clock = Stopwatch()
    cpu0 = server.cpu_seconds()
    spy = _start_profiler(server, name, warmup, seconds, profile_dir)
    # Sample the server's CPU at the start of the window, not of the warm-up.
    time.sleep(max(0.0, window_start - time.perf_counter()))
    cpu_window0 = server.cpu_seconds()
    for thread in threads:
        thread.join()
    cpu_end = server.cpu_seconds()
    _, client_cpu = clock.stop()
    if spy is not None:
        spy.wait(timeout=seconds + 30)

    in_window = [r for r in records if r[1] >= window_start]
    window_end = min(deadline, max((r[1] for r in records), default=deadline))
    window = max(1e-9, window_end - window_start)
    ok = [r for r in in_window if r[2] == expect]
    statuses = Counter(r[2] for r in in_window)
    phase = Phase(name, len(ok), window, [r[1] - r[0] for r in ok])
    phase.extra = {
        "clients": clients,
        "warmup_s": warmup,
        "errors": sum(n for s, n in statuses.items() if s != expect),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_cpu_s": round(cpu_end - cpu_window0, 2),
        "server_cpu_per_msg_ms": round((cpu_end - cpu_window0) / max(1, len(ok)) * 1000, 3),
        "server_cpu_util": round((cpu_end - cpu_window0) / window, 2),
        "client": client,
        "client_cpu_util": round(client_cpu / (window + warmup), 2),
        "server_cpu_total_s": round(cpu_end - cpu0, 2),
    }
    return phase


def _start_profiler(
    server: Server, name: str, warmup: float, seconds: float, profile_dir: Path | None
) -> subprocess.Popen[bytes] | None:
    if profile_dir is None:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("  (py-spy not found; pip install py-spy to profile)", file=sys.stderr)
        return None
    time.sleep(warmup)
    out = profile_dir / f"profile-{name}.txt"
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(server.pid),
            "--subprocesses",
            "--gil",
            "--nonblocking",
            "--rate",
            "250",
            "--duration",
            str(max(1, int(seconds - 1))),
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarize_profile(path: Path, top: int = 16) -> dict[str, list[tuple[str, float]]]:
    """Where the server's GIL time goes: gateway functions (inclusive) and packages (self).

    py-spy runs with ``--gil``: only the thread holding the GIL is sampled, so the shares say
    where the server's Python CPU goes (time blocked in fsync or on SQLite's lock is absent).
    """
    wrappers = {"<module>", "main", "cmd_serve", "serve", "run"}
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    samples = 0
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")[1:]  # the first entry names the process
        seen = set()
        for frame in frames:
            func, _, where = frame.partition(" (")
            where = where.rsplit(":", 1)[0]
            if where.startswith("gateway/") and func not in wrappers:
                key = f"{func} ({where})"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += count
        if frames:
            where = frames[-1].partition(" (")[2].rsplit(":", 1)[0]
            packages[where.split("/")[0] if "/" in where else where.split(".")[0]] += count
    if not samples:
        return {}
    return {
        "gateway_inclusive": [(k, v / samples) for k, v in inclusive.most_common(top)],
        "package_self": [(k, v / samples) for k, v in packages.most_common(10)],
    }


# -- the run ---------------------------------------------------------------------------------


def outbound_requests(body: bytes) -> Callable[[], Request]:
    """Valid execution notifications, each with a fresh Idempotency-Key."""
    path = f"/v1/outbound/{OUTBOUND_TYPE}"

    def make() -> Request:
        return path, body, {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}

    return make


def inbound_requests(
    envelopes: list[bytes], headers: dict[str, str]
) -> Callable[[], Request | None]:
    """The pre-built envelopes, each posted once; None when they are used up."""
    lock = threading.Lock()
    it = iter(envelopes)

    def make() -> Request | None:
        with lock:
            raw = next(it, None)
        return None if raw is None else (INBOUND_PATH, raw, headers)

    return make


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="about 30 s in all (smoke run)")
    p.add_argument(
        "--duration", type=float, default=None, help="seconds per HTTP phase (default 20)"
    )
    p.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (default 8)")
    p.add_argument(
        "--server-workers",
        type=int,
        default=1,
        help="1 = `python -m gateway serve` (what ships); N>1 = uvicorn --workers N",
    )
    p.add_argument("--profile", action="store_true", help="py-spy the server during HTTP phases")
    p.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    p.add_argument("--keep", action="store_true", help="keep the temp directory (logs, DBs)")
    p.add_argument(
        "--hostile", action="store_true", help="also measure refusing hostile XML (bench.hostile)"
    )
    p.add_argument("--only-hostile", action="store_true", help="only the hostile-XML classes")
    p.add_argument(
        "--opendata",
        action="store_true",
        help="also a year of the eight open data sets, built and published (bench.opendata)",
    )
    p.add_argument("--only-opendata", action="store_true", help="only the open data year")
    p.add_argument(
        "--facade", action="store_true", help="also the volunteer facade's list (bench.facade)"
    )
    p.add_argument("--only-facade", action="store_true", help="only the volunteer facade's list")
    p.add_argument(
        "--calendar",
        action="store_true",
        help="also measure publishing availability to Radicale (bench.calendar)",
    )
    p.add_argument(
        "--registries",
        action="store_true",
        help="also registry latency, fan-out and 32 officers with one registry slowed",
    )
    p.add_argument("--only-registries", action="store_true", help="only bench.registries")
    p.add_argument("--growth", action="store_true", help="also ten years of growth (bench.growth)")
    p.add_argument("--only-growth", action="store_true", help="only bench.growth")
    p.add_argument(
        "--growth-scale",
        type=float,
        default=0.1,
        help="share of ten years' volume for --growth (1.0: 1.2 M messages; default 0.1)",
    )
    p.add_argument(
        "--growth-postgres",
        default=None,
        help="admin URL: --growth also on PostgreSQL (database plusgw_growth, dropped after)",
    )
    p.add_argument("--drain", action="store_true", help="also the backlog drain (bench.drain)")
    p.add_argument(
        "--accept", action="store_true", help="also accept on 1 and 2 processes (bench.accept)"
    )
    p.add_argument("--memory", action="store_true", help="also RSS per flow (bench.memory)")
    p.add_argument(
        "--full",
        action="store_true",
        help="--drain/--accept/--memory at full size (18,488 messages, 20 s, 100,000)",
    )
    p.add_argument(
        "--accept-postgres", default=None, help="database URL: --accept also on PostgreSQL"
    )
    p.add_argument(
        "--channel-messages",
        type=int,
        default=None,
        help="deliveries per channel, E-case vs direct (default 1000, --quick 200; 0 = skip)",
    )
    return p.parse_args(argv)


def hostile_phase(quick: bool) -> dict[str, Any]:
    """bench.hostile: time and RSS to refuse each hostile-XML class, a subprocess each."""
    from bench import hostile

    print("\n[hostile] refusing 10 MB of hostile XML per class, one subprocess each ...")
    results = hostile.run(timeout=60.0 if quick else 120.0)
    hostile.report(results)
    path = RESULTS / "hostile.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return results


def facade_phase(quick: bool) -> dict[str, Any]:
    """bench.facade: the public list with 10,000 postings and 100 concurrent readers."""
    from bench import facade

    result = facade.run(requests=1_000 if quick else 6_000)
    facade.report(result)
    path = RESULTS / "facade.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def registries_phase(quick: bool) -> dict[str, Any]:
    """bench.registries: latency over a direct zeep call, fan-out, 32 officers under load."""
    from bench import registries

    argv = ["--quick"] if quick else []
    registries.main(argv)
    result: dict[str, Any] = json.loads((RESULTS / "registries.json").read_text())
    return result


def growth_phase(scale: float, postgres: str | None) -> dict[str, Any]:
    """bench.growth: ten years of history, then the interactive queries, verify and purge."""
    from bench import growth

    argv = ["run", "--scale", str(scale)]
    if postgres:
        argv += ["--postgres", postgres]
    growth.main(argv)
    result: dict[str, Any] = json.loads((RESULTS / "growth.json").read_text())
    return result


def opendata_phase() -> dict[str, Any]:
    """bench.opendata: a year of the eight sets from a 17,500-client extract, build + publish."""
    from bench import opendata

    result = opendata.run()
    opendata.report(result)
    path = RESULTS / "opendata.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def drain_phase(full: bool) -> dict[str, Any]:
    """bench.drain: a year's outbound queued during an outage, drained against 50 ms answers."""
    from bench import drain

    drain.main([] if full else ["--messages", "3000", "--cases", "1000", "--sequential", "150"])
    result: dict[str, Any] = json.loads((RESULTS / "drain.json").read_text())
    return result


def accept_phase(full: bool, postgres: str | None) -> dict[str, Any]:
    """bench.accept: HTTP accept on 1 and 2 processes against floors on 1 and 2 cores."""
    from bench import accept

    argv = ["--seconds", "20" if full else "5"]
    # Quick: SQLite only (make bench stays near 10 minutes); --full adds PostgreSQL.
    argv += ["--postgres", postgres] if postgres and full else ["--backends", "sqlite"]
    accept.main(argv)
    result: dict[str, Any] = json.loads((RESULTS / "accept.json").read_text())
    return result


def memory_phase(full: bool) -> dict[str, Any]:
    """bench.memory: RSS over many messages per flow."""
    from bench import memory

    memory.main(["--messages", "100000" if full else "5000"])
    result: dict[str, Any] = json.loads((RESULTS / "memory.json").read_text())
    return result


def main(argv: list[str] | None = None) -> int:
    """Run every phase and report."""
    args = parse_args(argv)
    if args.only_opendata:
        opendata_phase()
        return 0
    if args.only_registries:
        registries_phase(args.quick)
        return 0
    if args.only_growth:
        growth_phase(args.growth_scale, args.growth_postgres)
        return 0
    if args.only_facade:
        facade_phase(args.quick)
        return 0
    if args.only_hostile:
        hostile_phase(args.quick)
        print(f"\nwritten {RESULTS / 'hostile.json'}")
        return 0
    began = time.perf_counter()
    duration = args.duration if args.duration is not None else (5.0 if args.quick else 20.0)
    warmup = 1.0 if args.quick else 2.0
    floor_seconds = max(2.0, duration / 2)
    pipeline_seconds = max(1.5, duration / 4)
    channel_messages = args.channel_messages
    if channel_messages is None:
        channel_messages = 200 if args.quick else 1000
    phases = 5 if channel_messages <= 0 else 6
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "setup": {
            "http_seconds": duration,
            "warmup_seconds": warmup,
            "floor_seconds": floor_seconds,
            "pipeline_seconds": pipeline_seconds,
            "clients": args.clients,
            "client": "one thread per client, httpx.Client with one keep-alive connection each",
            "server_workers": args.server_workers,
            "delivery_worker": "disabled (delivery.enabled=false): acceptance only",
            "store": "SQLite WAL, synchronous=FULL, temp file",
            "logging": "production (JSON lines) at INFO, to a file",
            "outbound_message": OUTBOUND_TYPE,
            "inbound_message": f"{INBOUND_TYPE} from {SENDER} at {INBOUND_PATH}",
        },
    }
    m = results["machine"]
    print(f"machine: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, ", end="")
    print(f"load average at start {m['loadavg_at_start']}")
    quiet_logging()

    tmp = Path(tempfile.mkdtemp(prefix="plusgw-bench-"))
    profile_dir = args.output.parent if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    server: Server | None = None
    runtime = None
    channels: dict[str, Any] | None = None
    try:
        from gateway.pipeline import Exchange
        from gateway.runtime import Runtime

        env = make_env(tmp)
        body = (SAMPLES / OUTBOUND_TYPE / "valid.json").read_bytes()
        runtime = Runtime(env.settings_with_db("floor.db"))
        inbound = runtime.mappings.get(INBOUND_TYPE)
        headers = soap_headers(inbound.root.split("}")[0].lstrip("{"), inbound.operation)
        sim = institution_sim(env)
        # Reply routing: the notifications name a ruling; the floor's inbox gets it first.
        decision = decision_envelope(sim, body, INBOUND_TYPE)
        runtime.routes.inbound(Exchange(direction="in", partner="", endpoint="ecase", raw=decision))

        print(f"\n[1/{phases}] floor, outbound, in-process, 1 thread, {floor_seconds:.0f} s ...")
        f_out = floor_outbound(runtime, body, floor_seconds)
        print(f"      {f_out.rate:7.1f} msg/s")

        # Enough signed envelopes for the floors and for the HTTP phase at up to ~1.5x the
        # floor rate; signing them is not timed. Whatever is left over is not wasted: the
        # server's database is a different one, so the same envelopes are new to it.
        need = math.ceil(
            1.5 * max(f_out.rate, 50) * max(floor_seconds + pipeline_seconds, duration + warmup)
        )
        need = max(need, 400)
        print(f"[2/{phases}] signing {need} court rulings with header blocks (not timed) ...")
        envelopes, built_in = build_envelopes(sim, need, budget=max(20.0, duration * 2))
        print(f"      {len(envelopes)} in {built_in:.1f} s")

        print(f"[3/{phases}] floor, inbound, in-process, 1 thread, {floor_seconds:.0f} s ...")
        f_in = floor_inbound(runtime, envelopes, floor_seconds)
        print(f"      {f_in.rate:7.1f} msg/s")

        print(f"[4/{phases}] full pipeline in-process, 1 thread, {pipeline_seconds:.0f} s each ...")
        p_out = pipeline_outbound(runtime, body, pipeline_seconds)
        p_in = pipeline_inbound(runtime, envelopes[f_in.count :], pipeline_seconds)
        print(f"      outbound {p_out.rate:7.1f} msg/s, inbound {p_in.rate:7.1f} msg/s")
        runtime.close()
        runtime = None

        server = Server(env, args.server_workers)
        print(
            f"[5/{phases}] HTTP: {args.server_workers} server process(es), {args.clients} "
            f"clients, {warmup:.0f} s warm-up + {duration:.0f} s per direction ..."
        )
        server.start()
        # The same ruling reaches the server's inbox over HTTP before the notifications.
        seeded = httpx.post(f"{server.base}{INBOUND_PATH}", content=decision, headers=headers)
        if seeded.status_code != 200:
            raise RuntimeError(f"the decision was refused: {seeded.status_code} {seeded.text}")
        h_out = http_load(
            server,
            "http_outbound",
            outbound_requests(body),
            clients=args.clients,
            seconds=duration,
            warmup=warmup,
            expect=202,
            profile_dir=profile_dir,
        )
        print(f"      outbound {h_out.rate:7.1f} msg/s")
        h_in = http_load(
            server,
            "http_inbound",
            inbound_requests(envelopes, headers),
            clients=args.clients,
            seconds=duration,
            warmup=warmup,
            expect=200,
            profile_dir=profile_dir,
        )
        print(f"      inbound  {h_in.rate:7.1f} msg/s")
        if h_in.window_short(duration):
            print("      (ran out of pre-built envelopes before the end; rate is over the window)")
        server.stop()
        server_log_tail = env.tmp.joinpath("server.log").read_text(errors="replace")[-1500:]

        if channel_messages > 0:
            from bench import channels as channels_bench

            print(
                f"[6/{phases}] E-case platform simulator vs direct institution endpoint, "
                f"{channel_messages} deliveries each, sequential ..."
            )
            channels = channels_bench.run(env, channel_messages)
    finally:
        if server is not None:
            server.stop()
        if runtime is not None:
            runtime.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    results["setup"]["server_command"] = " ".join(
        "<tmp>/config.yaml" if a.endswith("config.yaml") else a for a in server.command()
    ).replace(sys.executable, "python")
    results["setup"]["envelopes_prebuilt"] = len(envelopes)
    results["floor"] = {"outbound": f_out.as_dict(), "inbound": f_in.as_dict()}
    results["pipeline_in_process"] = {"outbound": p_out.as_dict(), "inbound": p_in.as_dict()}
    results["http"] = {"outbound": h_out.as_dict(), "inbound": h_in.as_dict()}
    results["ratio_to_floor"] = {
        "outbound": round(h_out.rate / f_out.rate, 3) if f_out.rate else None,
        "inbound": round(h_in.rate / f_in.rate, 3) if f_in.rate else None,
        "target": 0.5,
    }
    if channels is not None:
        results["channels"] = channels
    if profile_dir:
        results["profile"] = {
            name: {
                kind: [{"name": f, "share": round(share, 3)} for f, share in rows]
                for kind, rows in summary.items()
            }
            for name in ("http_outbound", "http_inbound")
            if (summary := summarize_profile(profile_dir / f"profile-{name}.txt"))
        }
    if h_out.extra["errors"] or h_in.extra["errors"]:
        results["server_log_tail"] = server_log_tail

    report(results)
    if channels is not None:
        from bench import channels as channels_bench

        channels_bench.report(channels)
    if args.hostile:
        results["hostile"] = hostile_phase(args.quick)
    if args.opendata:
        results["opendata"] = opendata_phase()
    if args.facade:
        results["facade"] = facade_phase(args.quick)
    if args.calendar:
        from bench import calendar as calendar_bench

        print("\n[calendar] full and incremental publishing to Radicale on loopback ...")
        results["calendar"] = calendar_bench.run(resources=10 if args.quick else 50)
        calendar_bench.report(results["calendar"])
    if args.registries:
        results["registries"] = registries_phase(args.quick)
    if args.growth:
        results["growth"] = growth_phase(args.growth_scale, args.growth_postgres)
    if args.drain:
        results["drain"] = drain_phase(args.full)
    if args.accept:
        results["accept"] = accept_phase(args.full, args.accept_postgres)
    if args.memory:
        results["memory"] = memory_phase(args.full)
    results["total_seconds"] = round(time.perf_counter() - began, 1)
    print(f"\nwhole run: {results['total_seconds']:.0f} s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"written {args.output}")
    return 0


def report(results: dict[str, Any]) -> None:
    """The human-readable table."""
    floor, pipe, http = results["floor"], results["pipeline_in_process"], results["http"]
    ratio = results["ratio_to_floor"]
    setup = results["setup"]
    print("\n" + "=" * 96)
    print(
        f"plus-gateway benchmark  {results['when']}  "
        f"({results['machine']['nproc']} CPUs, Python {results['machine']['python']})"
    )
    print(
        f"server: {setup['server_workers']} process(es), delivery worker disabled; "
        f"clients: {setup['clients']} threads x 1 keep-alive connection, same machine"
    )
    print("=" * 96)
    head = f"{'':44s}{'msg/s':>9s}{'p50 ms':>9s}{'p99 ms':>9s}{'ratio':>8s}{'srv CPU':>9s}"
    print(head)
    rows = [
        ("outbound floor (in-process, 1 thread)", floor["outbound"], None),
        ("outbound pipeline (in-process, 1 thread)", pipe["outbound"], None),
        ("outbound HTTP POST /v1/outbound/...", http["outbound"], ratio["outbound"]),
        ("inbound floor (in-process, 1 thread)", floor["inbound"], None),
        ("inbound pipeline (in-process, 1 thread)", pipe["inbound"], None),
        ("inbound HTTP POST /soap/ecase", http["inbound"], ratio["inbound"]),
    ]
    for label, r, rat in rows:
        cpu = f"{r['server_cpu_util']:.2f}" if "server_cpu_util" in r else ""
        rat_text = f"{rat:.2f}" if rat is not None else ""
        print(
            f"{label:44s}{r['rate_per_s']:9.1f}{r['p50_ms']:9.2f}{r['p99_ms']:9.2f}"
            f"{rat_text:>8s}{cpu:>9s}"
        )
    print("ratio = HTTP rate / floor rate (target >= 0.5); srv CPU = server cores busy")
    for direction in ("outbound", "inbound"):
        stages = floor[direction].get("stage_mean_ms", {})
        parts = ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
        print(f"floor {direction} per message (ms): {parts}")
    for direction in ("outbound", "inbound"):
        h = http[direction]
        print(
            f"HTTP {direction}: {h['messages']} ok, {h['errors']} errors, "
            f"server CPU {h['server_cpu_per_msg_ms']:.2f} ms/msg, "
            f"client CPU {h['client_cpu_util']:.2f} cores"
        )
    for name, kinds in results.get("profile", {}).items():
        print(f"\nprofile {name}: share of GIL-holding server samples")
        print("  by package (self time):")
        print("    " + ", ".join(f"{r['name']} {r['share']:.0%}" for r in kinds["package_self"]))
        print("  gateway functions (inclusive):")
        for row in kinds["gateway_inclusive"]:
            print(f"    {row['share'] * 100:5.1f}%  {row['name']}")
    low = [d for d in ("outbound", "inbound") if (ratio[d] or 0) < ratio["target"]]
    if low:
        print(f"\nbelow target: {', '.join(low)} (see docs/PERFORMANCE.md; try --profile)")


if __name__ == "__main__":
    raise SystemExit(main())
