"""Overhead of reaching an institution through the E-case platform simulator vs directly.

``python -m bench.channels`` (also the last phase of ``python -m bench.run``) measures, in one
run on loopback, the delivery latency of the same message type (``execution_notification``)
to the same simulated institution (TIS, its own simulator keys and configuration) over its two
channels:

* **ecase**: TIS behind the E-case platform simulator (``plus-gateway sim ecase``, a separate
  process): the platform parses the request, reads the header blocks and routes by the
  ``service`` header to the simulated TIS in the same process;
* **direct**: TIS served alone by its own institution app (``plus-gateway sim tis`` with
  ``institutions.tis.channel: direct``, a separate process).

The client is the delivery worker's own code path: ``Channels.client_for(...)`` (a zeep
``PartnerClient`` over a pooled keep-alive session), ``Channels.header_for(...)`` and the
verification of the institution's signed receipt against its trust store, posting a
payload signed beforehand (outside the timed section) with a fresh MessageId, one message at a
time. The two channels alternate message by message (ABBA order), so that load from anything
else on the machine hits both alike, and each pair gives one paired difference. Latency is per
``PartnerClient.send``: header built, envelope posted, signed receipt verified and parsed. The
simulators' CPU per message comes from /proc; an in-process breakdown shows what the platform
adds to the institution's own receive path.

It is a benchmark, not a test: it never fails on a slow result.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS,
    SAMPLES,
    BenchEnv,
    Proc,
    free_port,
    latency_summary,
    machine,
    make_env,
    quiet_logging,
    sim_proc,
)

MESSAGE_TYPE = "execution_notification"
INSTITUTION = "tis"


@dataclass
class _Channel:
    """One way of reaching the institution: its client, header maker and simulator process."""

    name: str
    proc: Proc
    settings: Any
    channels: Any
    session: Any
    latencies: list[float]
    limits: Any
    cpu: float = 0.0
    errors: int = 0


def _payloads(settings: Any, count: int) -> tuple[str, list[tuple[str, bytes]]]:
    """``count`` signed execution notifications with fresh MessageIds: the operation and
    (id, payload) pairs."""
    from gateway.mapping import MappingRegistry
    from gateway.signing import Signer
    from gateway.xml import SchemaRegistry, serialize

    mapping = MappingRegistry.load(settings.paths.mappings).get(MESSAGE_TYPE)
    schemas = SchemaRegistry(settings.paths.xsd)
    signer = Signer.from_files(
        settings.signing.key, settings.signing.certificate, settings.signing.algorithm
    )
    sample = json.loads((SAMPLES / MESSAGE_TYPE / "valid.json").read_text("utf-8"))
    out: list[tuple[str, bytes]] = []
    for _ in range(count):
        canonical = dict(sample)
        canonical["message_id"] = f"PLUS-{uuid.uuid4()}"
        canonical["sent_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        document = mapping.to_xml(canonical)
        if not out:  # the first one proves the sample still fits the schema
            schemas.validate(document, mapping.schema)
        out.append((canonical["message_id"], serialize(signer.sign(document), declaration=False)))
    return mapping.operation, out


def _channels(settings: Any) -> tuple[Any, Any]:
    """The gateway's Channels (as the delivery worker has them) for ``settings``."""
    from gateway.channels.ecase import Channels
    from gateway.channels.institutions import Directory
    from gateway.mapping import MappingRegistry
    from gateway.soap.client import pooled_session

    mappings = MappingRegistry.load(settings.paths.mappings)
    directory = Directory.from_settings(
        settings, known_types=frozenset(m.message_type for m in mappings.all())
    )
    session = pooled_session()
    return Channels(settings, directory, session), session


def _send(channel: _Channel, operation: str, message_id: str, payload: bytes) -> float:
    """One delivery as the worker makes it; its wall time (errors counted, not raised)."""
    from gateway.errors import GatewayError

    t0 = time.perf_counter()
    try:
        client = channel.channels.client_for(INSTITUTION)
        header = channel.channels.header_for(INSTITUTION, operation, message_id)
        # As the worker does: the acknowledgement must be the institution's signed receipt.
        ack = client.send(
            operation,
            payload,
            header=header.serialize(),
            message_id=message_id,
            trust=channel.channels.directory.get(INSTITUTION).trust,
            limits=channel.limits,
        )
        ok = (ack or {}).get("Status") == "ACCEPTED"
    except GatewayError:
        ok = False
    elapsed = time.perf_counter() - t0
    if not ok:
        channel.errors += 1
    return elapsed


def in_process(settings_ecase: Any, settings_direct: Any, payloads: list[tuple[str, bytes]]) -> Any:
    """What the platform adds in process: routing (parse + header read + lookup) against the
    direct app's parse, and the institution's own receive, per message (p50, ms)."""
    from gateway.channels.ecase import Channels
    from gateway.sim import EcasePlatformSim, InstitutionSim
    from gateway.soap.envelope import build_envelope, parse_envelope

    platform = EcasePlatformSim(settings_ecase, institutions=[INSTITUTION])
    direct = InstitutionSim(settings_direct, INSTITUTION, platform.contract)
    channels, session = _channels(settings_ecase)
    assert isinstance(channels, Channels)
    operation = platform.contract.mapping(MESSAGE_TYPE).operation
    raws = [
        build_envelope(payload, channels.header_for(INSTITUTION, operation, message_id).serialize())
        for message_id, payload in payloads
    ]
    session.close()
    limits = platform.contract.limits
    times: dict[str, list[float]] = {"route": [], "parse": [], "receive": []}
    for raw in raws:
        t0 = time.perf_counter()
        platform.route(raw)
        t1 = time.perf_counter()
        envelope = parse_envelope(raw, limits)
        t2 = time.perf_counter()
        status, _ = direct.receive_envelope(envelope)
        t3 = time.perf_counter()
        assert status == 200
        times["route"].append(t1 - t0)
        times["parse"].append(t2 - t1)
        times["receive"].append(t3 - t2)
    p50 = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return {
        "messages": len(raws),
        "platform_route_p50_ms": round(p50["route"], 3),
        "direct_parse_p50_ms": round(p50["parse"], 3),
        "platform_extra_p50_ms": round(p50["route"] - p50["parse"], 3),
        "institution_receive_p50_ms": round(p50["receive"], 3),
    }


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run(env: BenchEnv, messages: int, warmup: int = 30) -> dict[str, Any]:
    """Measure both channels in this run (each its own simulator process); the figures."""
    direct_port = free_port()
    direct_config, direct_settings = env.variant(
        "config-direct",
        institutions={
            INSTITUTION: {
                "channel": "direct",
                "endpoint": f"http://127.0.0.1:{direct_port}/soap/{INSTITUTION}",
            }
        },
        simulators={INSTITUTION: {"host": "127.0.0.1", "port": direct_port}},
    )
    operation, payloads = _payloads(env.settings, 2 * (messages + warmup) + 200)
    # The two simulator processes run side by side for the whole measurement.
    procs = {
        "ecase": sim_proc(env.config, "ecase", "channels-sim-ecase"),
        "direct": sim_proc(direct_config, INSTITUTION, "channels-sim-direct"),
    }
    from gateway.xml import XmlLimits

    made: list[_Channel] = []
    load_before = _loadavg()
    try:
        for proc in procs.values():
            proc.start()
        for name, settings in (("ecase", env.settings), ("direct", direct_settings)):
            channels, session = _channels(settings)
            limits = XmlLimits(max_bytes=settings.xml.max_bytes)
            made.append(_Channel(name, procs[name], settings, channels, session, [], limits))
        it = iter(payloads)
        for channel in made:  # warm both: connections, zeep's caches, the simulators' code
            for _ in range(warmup):
                _send(channel, operation, *next(it))
            channel.errors = 0
        cpu0 = [channel.proc.cpu_seconds() for channel in made]
        started = time.perf_counter()
        for i in range(messages):
            # ABBA: e, d, d, e, e, d, ... so neither channel always goes first.
            order = made if i % 2 == 0 else list(reversed(made))
            for channel in order:
                channel.latencies.append(_send(channel, operation, *next(it)))
        for channel, before in zip(made, cpu0, strict=True):
            channel.cpu = channel.proc.cpu_seconds() - before
        seconds = time.perf_counter() - started
        breakdown = in_process(env.settings, direct_settings, payloads[-200:])
    finally:
        for channel in made:
            channel.session.close()
        for proc in procs.values():
            proc.stop()
    out: dict[str, Any] = {
        "message_type": MESSAGE_TYPE,
        "institution": INSTITUTION,
        "messages_per_channel": messages,
        "order": "alternating message by message (ABBA)",
        "warmup_per_channel": warmup,
        "seconds": round(seconds, 1),
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
        "client": "Channels.client_for/header_for + PartnerClient.send, sequential, keep-alive",
    }
    for channel in made:
        n = len(channel.latencies)
        out[channel.name] = {
            **latency_summary(channel.latencies),
            "mean_ms": round(statistics.fmean(channel.latencies) * 1000, 2),
            "errors": channel.errors,
            "sim_cpu_per_msg_ms": round(channel.cpu / max(1, n) * 1000, 3),
            "endpoint": channel.channels.client_for(INSTITUTION).endpoint,
        }
    ecase, direct = out["ecase"], out["direct"]
    by_name = {channel.name: channel.latencies for channel in made}
    paired = sorted(e - d for e, d in zip(by_name["ecase"], by_name["direct"], strict=True))
    out["overhead"] = {
        "p50_ms": round(ecase["p50_ms"] - direct["p50_ms"], 2),
        "paired_median_ms": round(statistics.median(paired) * 1000, 2),
        "p99_ms": round(ecase["p99_ms"] - direct["p99_ms"], 2),
        "mean_ms": round(ecase["mean_ms"] - direct["mean_ms"], 2),
        "ratio_p50": round(ecase["p50_ms"] / direct["p50_ms"], 3) if direct["p50_ms"] else None,
        "ratio_p99": round(ecase["p99_ms"] / direct["p99_ms"], 3) if direct["p99_ms"] else None,
        "ratio_mean": round(ecase["mean_ms"] / direct["mean_ms"], 3) if direct["mean_ms"] else None,
        "sim_cpu_per_msg_ms": round(ecase["sim_cpu_per_msg_ms"] - direct["sim_cpu_per_msg_ms"], 3),
    }
    out["in_process"] = breakdown
    return out


def report(result: dict[str, Any]) -> None:
    """Print the figures."""
    n = result["messages_per_channel"]
    print(
        f"\n{result['message_type']} to simulated {result['institution']}, {n} per channel, "
        f"sequential, alternating message by message ({result['seconds']} s)"
    )
    head = f"{'':36s}{'p50 ms':>9s}{'p90 ms':>9s}{'p99 ms':>9s}{'mean ms':>9s}{'sim CPU':>9s}"
    print(head + f"{'errors':>8s}")
    for name, label in (("direct", "direct (institution app)"), ("ecase", "E-case (platform sim)")):
        r = result[name]
        print(
            f"{label:36s}{r['p50_ms']:9.2f}{r['p90_ms']:9.2f}{r['p99_ms']:9.2f}{r['mean_ms']:9.2f}"
            f"{r['sim_cpu_per_msg_ms']:9.2f}{r['errors']:8d}"
        )
    o = result["overhead"]
    print(
        f"{'E-case - direct':36s}{o['p50_ms']:+9.2f}{'':9s}{o['p99_ms']:+9.2f}{o['mean_ms']:+9.2f}"
        f"{o['sim_cpu_per_msg_ms']:+9.2f}"
    )
    print(f"{'median of paired differences':36s}{o['paired_median_ms']:+9.2f}")
    print(
        f"{'E-case / direct':36s}{o['ratio_p50']:9.3f}{'':9s}{o['ratio_p99']:9.3f}"
        f"{o['ratio_mean']:9.3f}"
    )
    b = result["in_process"]
    print(
        f"in process (p50): platform route {b['platform_route_p50_ms']:.3f} ms vs direct parse "
        f"{b['direct_parse_p50_ms']:.3f} ms (extra {b['platform_extra_p50_ms']:+.3f} ms); "
        f"institution receive {b['institution_receive_p50_ms']:.3f} ms"
    )
    print("sim CPU = the simulator process's CPU per message (ms)")


def main(argv: list[str] | None = None) -> int:
    """Run alone: ``python -m bench.channels [--messages N]``."""
    p = argparse.ArgumentParser(prog="python -m bench.channels", description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=1000, help="messages per channel")
    p.add_argument("--keep", action="store_true", help="keep the temp directory (logs)")
    args = p.parse_args(argv)
    quiet_logging()
    tmp = Path(tempfile.mkdtemp(prefix="plusgw-bench-channels-"))
    try:
        result = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            **run(make_env(tmp), args.messages),
        }
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    report(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "channels.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
