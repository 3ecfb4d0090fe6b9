"""Cost of refusing hostile XML: time to refusal and memory per class, at about 10 MB each.

``python -m bench.hostile`` (or ``python -m bench.run --hostile``) builds one SOAP request per
hostile class, each close to ``--size`` bytes (default: the 10 MiB request cap), and hands it
to what the gateway runs on every inbound request before anything else: the hardened
``parse_envelope`` and then ``TrustStore.verify`` against a pinned partner certificate. Each
class runs in a **fresh subprocess**, so its memory figures are its own:

* ``seconds``: wall time from the bytes to the refusal (or to acceptance);
* ``peak_mb``: the rise of the process's peak RSS (VmHWM, reset just before) over the RSS
  before the call;
* ``retained_mb``: RSS still held after the refusal and a ``gc.collect()``;
* ``ratio``: ``seconds`` over the time of one valid message (parse + verify), i.e. how many
  valid messages one hostile request costs.

Classes (an attacker needs no key: every request is a captured, validly signed message with
something added):

=============  =============================================================================
attributes     one element carrying ~9.9 MB of attributes (just under libxml2's 10 MB
               single-construct limit, which would refuse a larger one by itself)
namespaces     one element carrying ~9 MB of namespace declarations, over 1,000 elements
elements       ~2.6 million tiny elements (``<a/>``)
depth          ``<a>`` nested 1.5 million deep
certificates   KeyInfo padded with ~16,000 distinct certificates after the signer's own (KeyInfo
               is not covered by the signature, so the message still verifies)
text           one text node of 9.9 MB (just under libxml2's 10 MB text node limit)
=============  =============================================================================

``--code-root DIR`` runs the children against the ``gateway`` package under ``DIR`` (e.g. a
``git worktree`` of an older commit), so before/after figures come from the same harness.
A child still running after ``--timeout`` seconds is killed and reported as such.
It is a benchmark, not a test: it never fails on a slow result.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_SIZE = 10 * 1024 * 1024
# libxml2 refuses a single name, attribute list or text node of 10,000,000 bytes or more on its
# own (without XML_PARSE_HUGE); the worst cases that reach the gateway's own code stay below.
_LIBXML2_SINGLE_LIMIT = 9_900_000

_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
_TIS = "urn:lv:ta:tis:plus:v1"
_COMMON = "urn:lv:vpd:plus:common:v1"

# A court ruling as TIS sends it (about 1.5 KB, personal data included as in real traffic).
_PAYLOAD = f"""<tis:CourtRuling xmlns:tis="{_TIS}" xmlns:c="{_COMMON}">
  <tis:MessageId>c0a8f3e2-4b1d-4f6a-9e2b-7d5c1a3b9f01</tis:MessageId>
  <tis:SentAt>2026-11-22T10:15:00+02:00</tis:SentAt>
  <tis:Case><c:CaseNumber>K30-0412-26/14</c:CaseNumber>
    <c:Court><c:Code>RPT</c:Code><c:Name>Rīgas pilsētas tiesa</c:Name></c:Court></tis:Case>
  <tis:RulingDate>2026-11-02</tis:RulingDate>
  <tis:Judge>Anna Kalniņa</tis:Judge>
  <tis:Person><c:PersonalCode>150390-12345</c:PersonalCode><c:FirstName>Jānis</c:FirstName>
    <c:LastName>Ozoliņš</c:LastName><c:BirthDate>1990-03-15</c:BirthDate></tis:Person>
  <tis:SentenceKind>PD</tis:SentenceKind><tis:Hours>160</tis:Hours>
  <tis:Obligation><c:Code>IERASTIES_VPD</c:Code>
    <c:Text>Ierasties Valsts probācijas dienestā 10 darba dienu laikā.</c:Text></tis:Obligation>
</tis:CourtRuling>""".encode()


def envelope(payload: bytes) -> bytes:
    """``payload`` in a SOAP 1.1 Body, as partners post it."""
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<soap:Envelope xmlns:soap="'
        + _SOAP.encode()
        + b'"><soap:Body>'
        + payload
        + b"</soap:Body></soap:Envelope>"
    )


def _inject(signed: bytes, junk: bytes) -> bytes:
    # Right after the payload root's start tag: inside the signed content, so the message
    # reaches signature verification (and fails its digest) unless a limit stops it first.
    end = signed.index(b">") + 1
    return signed[:end] + junk + signed[end:]


def _fill(unit: Callable[[int], bytes], budget: int) -> bytes:
    parts: list[bytes] = []
    size = i = 0
    while True:
        piece = unit(i)
        if size + len(piece) > budget:
            return b"".join(parts)
        parts.append(piece)
        size += len(piece)
        i += 1


def _attributes(signed: bytes, size: int) -> bytes:
    budget = min(size - len(envelope(signed)) - 64, _LIBXML2_SINGLE_LIMIT)
    attrs = _fill(lambda i: b' a%d="x"' % i, budget)
    return envelope(_inject(signed, b"<tis:Junk" + attrs + b"/>"))


def _namespaces(signed: bytes, size: int) -> bytes:
    inner = b"<tis:J/>" * 1000
    budget = min(size - len(envelope(signed)) - len(inner) - 64, _LIBXML2_SINGLE_LIMIT)
    decls = _fill(lambda i: b' xmlns:p%d="urn:p%d"' % (i, i), budget)
    return envelope(_inject(signed, b"<tis:Junk" + decls + b">" + inner + b"</tis:Junk>"))


def _elements(signed: bytes, size: int) -> bytes:
    count = (size - len(envelope(signed)) - 64) // 4
    return envelope(_inject(signed, b"<tis:Junk>" + b"<a/>" * count + b"</tis:Junk>"))


def _depth(signed: bytes, size: int) -> bytes:
    count = (size - len(envelope(signed)) - 64) // 7
    return envelope(_inject(signed, b"<a>" * count + b"</a>" * count))


def _distinct_certificates(budget: int) -> bytes:
    """``<ds:X509Certificate>`` elements of distinct self-signed certificates, ~budget bytes.

    Distinct subjects that issue none of the others are the worst case for finding the leaf
    pairwise; one EC key signs them all, so making ~16,000 takes seconds.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    parts: list[bytes] = []
    size = 0
    while True:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"padding-{len(parts)}")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(len(parts) + 1)
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        piece = b"<ds:X509Certificate>" + base64.b64encode(der) + b"</ds:X509Certificate>"
        if size + len(piece) > budget:
            return b"".join(parts)
        parts.append(piece)
        size += len(piece)


def _certificates(signed: bytes, size: int) -> bytes:
    # KeyInfo is outside what the signature covers: a captured message padded like this still
    # verifies, so nothing but a cap stops the work.
    found = re.search(rb"<ds:X509Certificate>[^<]*</ds:X509Certificate>", signed)
    if found is None:
        raise RuntimeError("the signed payload carries no ds:X509Certificate")
    padding = _distinct_certificates(size - len(envelope(signed)) - 64)
    return envelope(signed[: found.end()] + padding + signed[found.end() :])


def _text(signed: bytes, size: int) -> bytes:
    length = min(size - len(envelope(signed)) - 64, _LIBXML2_SINGLE_LIMIT)
    return envelope(_inject(signed, b"<tis:Junk>" + b"x" * length + b"</tis:Junk>"))


CASES: dict[str, Callable[[bytes, int], bytes]] = {
    "attributes": _attributes,
    "namespaces": _namespaces,
    "elements": _elements,
    "depth": _depth,
    "certificates": _certificates,
    "text": _text,
}


# -- the child: one class, one fresh process ---------------------------------------------------


def _status(field: str) -> float:
    """A VmRSS/VmHWM figure of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> bool:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so the peak
    # measured afterwards is the call's own, not the input building's.
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child(input_path: Path, cert: Path, valid_path: Path) -> dict[str, Any]:
    """Parse and verify ``input_path`` as the gateway does; figures as a dict."""
    from gateway.errors import GatewayError
    from gateway.signing import TrustStore
    from gateway.soap.envelope import parse_envelope
    from gateway.xml import XmlLimits

    trust = TrustStore.from_files([cert])
    limits = XmlLimits()

    def handle(raw: bytes) -> str:
        try:
            trust.verify(parse_envelope(raw, limits).body)
        except GatewayError as exc:
            return exc.code
        return "accepted"

    valid = valid_path.read_bytes()
    timings = []
    for _ in range(20):  # warm-up, and the cost of one valid message for the ratio
        t0 = time.perf_counter()
        outcome = handle(valid)
        timings.append(time.perf_counter() - t0)
        if outcome != "accepted":
            raise RuntimeError(f"the valid message was refused: {outcome}")
    valid_seconds = sorted(timings)[len(timings) // 2]

    raw = input_path.read_bytes()
    gc.collect()
    exact_peak = _reset_peak()
    before = _status("VmRSS")
    cpu0, t0 = time.process_time(), time.perf_counter()
    outcome = handle(raw)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak = _status("VmHWM")
    gc.collect()
    after = _status("VmRSS")
    return {
        "bytes": len(raw),
        "outcome": outcome,
        "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu, 4),
        "rss_before_mb": round(before, 1),
        "peak_mb": round(max(0.0, peak - before), 1),
        "retained_mb": round(max(0.0, after - before), 1),
        "peak_exact": exact_peak,
        "valid_ms": round(valid_seconds * 1000, 3),
        "ratio": round(seconds / valid_seconds, 1) if valid_seconds else None,
    }


# -- the parent --------------------------------------------------------------------------------


def _cpu_and_peak(pid: int) -> tuple[float | None, float | None]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None, None
    # utime and stime are fields 14 and 15 of /proc/PID/stat (1-based, man proc).
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    peak = next((int(x.split()[1]) / 1024 for x in status if x.startswith("VmHWM:")), None)
    return round(cpu, 1), round(peak, 1) if peak is not None else None


def _run_child(
    code_root: Path, input_path: Path, cert: Path, valid_path: Path, timeout: float
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    # Run this file by path so that ``gateway`` comes from code_root (an older checkout has
    # no bench/hostile.py of its own).
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(input_path),
        "--cert",
        str(cert),
        "--valid",
        str(valid_path),
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=code_root, env=env
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # What it had used when stopped: CPU (the machine may be shared) and peak RSS.
        cpu, peak = _cpu_and_peak(proc.pid)
        proc.kill()  # our own child, by its handle
        proc.communicate()
        return {
            "outcome": "timeout",
            "seconds": None,
            "timeout": timeout,
            "cpu_seconds_when_stopped": cpu,
            "peak_rss_mb_when_stopped": peak,
        }
    if proc.returncode != 0:
        return {"outcome": "crashed", "returncode": proc.returncode, "stderr": err.decode()[-800:]}
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def prepare(tmp: Path, code_root: Path) -> tuple[Path, bytes]:
    """A partner key pair under ``tmp`` and the payload signed with it (in a subprocess)."""
    script = (
        "import sys; from pathlib import Path\n"
        "from gateway.signing import Signer, init_keys\n"
        "from gateway.xml import parse_xml, serialize\n"
        "made = init_keys(Path(sys.argv[1]), ['partner'])\n"
        "key, cert = made['partner']\n"
        "signer = Signer.from_files(key, cert)\n"
        "data = serialize(signer.sign(parse_xml(Path(sys.argv[2]).read_bytes())), "
        "declaration=False)\n"
        "Path(sys.argv[3]).write_bytes(data)\n"
        "print(cert)\n"
    )
    payload_path, signed_path = tmp / "payload.xml", tmp / "signed.xml"
    payload_path.write_bytes(_PAYLOAD)
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp / "keys"), str(payload_path), str(signed_path)],
        check=True,
        capture_output=True,
        cwd=code_root,
        env=env,
    )
    return Path(out.stdout.decode().strip()), signed_path.read_bytes()


def run(
    *,
    size: int = DEFAULT_SIZE,
    cases: list[str] | None = None,
    timeout: float = 120.0,
    code_root: Path = ROOT,
) -> dict[str, Any]:
    """Measure every class; returns the figures (also what ``bench.run --hostile`` stores)."""
    names = cases or list(CASES)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_root": str(code_root),
        "commit": _commit(code_root),
        "size": size,
        "timeout_s": timeout,
        "cases": {},
    }
    with tempfile.TemporaryDirectory(prefix="plusgw-hostile-") as name:
        tmp = Path(name)
        cert, signed = prepare(tmp, code_root)
        valid_path = tmp / "valid.xml"
        valid_path.write_bytes(envelope(signed))
        for case in names:
            data = CASES[case](signed, size)
            input_path = tmp / f"{case}.xml"
            input_path.write_bytes(data)
            del data
            print(f"  {case:13s} ...", end="", flush=True)
            figures = _run_child(code_root, input_path, cert, valid_path, timeout)
            input_path.unlink()
            results["cases"][case] = figures
            print(" " + _line(figures))
    return results


def _commit(code_root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(code_root), "rev-parse", "--short", "HEAD"],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.decode().strip()


def _line(f: dict[str, Any]) -> str:
    if f.get("seconds") is None:
        if "timeout" not in f:
            return str(f["outcome"])
        return (
            f"stopped after {f['timeout']:.0f} s ({f.get('cpu_seconds_when_stopped')} s CPU, "
            f"peak RSS {f.get('peak_rss_mb_when_stopped')} MB)"
        )
    return (
        f"{f['outcome']:14s} {f['seconds']:8.3f} s  peak +{f['peak_mb']:7.1f} MB  "
        f"retained +{f['retained_mb']:6.1f} MB  ({f['ratio']:.0f}x a valid message)"
    )


def report(results: dict[str, Any]) -> None:
    """The human-readable table."""
    size_mb = results["size"] / 1024 / 1024
    print(f"\nhostile XML, {size_mb:.1f} MiB per request, code {results.get('commit')}:")
    print(
        f"{'class':14s}{'outcome':>16s}{'seconds':>10s}{'peak MB':>10s}{'kept MB':>9s}{'ratio':>9s}"
    )
    for case, f in results["cases"].items():
        if f.get("seconds") is None:
            print(f"{case:14s}{f['outcome']:>16s}  {_line(f)}")
            continue
        print(
            f"{case:14s}{f['outcome']:>16s}{f['seconds']:10.3f}{f['peak_mb']:10.1f}"
            f"{f['retained_mb']:9.1f}{f['ratio']:9.0f}"
        )
    valid = next((f["valid_ms"] for f in results["cases"].values() if f.get("valid_ms")), None)
    if valid:
        print(f"ratio = refusal time / one valid message ({valid:.2f} ms parse + verify)")
    print("target: under 1 s and under +100 MB each")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=DEFAULT_SIZE, help="bytes per request")
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated classes")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per class")
    p.add_argument("--code-root", type=Path, default=ROOT, help="checkout whose gateway to run")
    p.add_argument("--output", type=Path, default=RESULTS / "hostile.json")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--cert", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--valid", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the classes and report (or, with --child, measure one in this process)."""
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.cert, args.valid)))
        return 0
    unknown = [c for c in args.cases.split(",") if c not in CASES]
    if unknown:
        print(f"unknown class(es): {', '.join(unknown)}; known: {', '.join(CASES)}")
        return 2
    print(f"hostile XML against {args.code_root} ({args.timeout:.0f} s per class at most)")
    results = run(
        size=args.size,
        cases=args.cases.split(","),
        timeout=args.timeout,
        code_root=args.code_root.resolve(),
    )
    report(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
