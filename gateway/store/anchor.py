"""Signed checkpoints of the journal's chain head, kept outside the database (anchors).

A checkpoint says "at time T the journal had N entries and its head was entry I with hash H",
signed with the gateway's own key (``signing.key``; verified with ``signing.certificate`` and
any earlier certificates in ``journal.anchor_certificates``). It is written to an anchor sink,
somewhere an attacker who can write the database cannot (see docs/DELIVERY.md, "Anchored
journal"). ``journal verify`` reads the anchors back and checks each against the journal
(gateway/store/verify.py): an anchored entry must still exist with the same hash and the same
number of entries up to it, and the journal must reach the newest anchored entry.

Sinks implement :class:`AnchorSink`; two come with the gateway:

- :class:`FileSink`: append-only JSON lines, one file per month (``anchors-YYYY-MM.jsonl``) in a
  directory (default ``var/anchors``), each line fsynced. Point it at storage the database's
  users cannot rewrite (another host's mount, an append-only or WORM volume).
- :class:`HttpSink`: ``POST`` of each checkpoint as JSON to a URL (2xx = stored); ``GET`` on the
  same URL returns every stored checkpoint (a JSON array, or ``{"anchors": [...]}``). A
  timestamping or log service fronted by that small contract fits.

A checkpoint document (``v`` 1)::

    {"v": 1, "gateway": "plus-gateway", "entry_id": 42, "entry_hash": "…", "count": 42,
     "at": "2027-01-18T10:00:00.000000+00:00", "alg": "rsa-sha256", "key": "<cert sha256>",
     "sig": "<base64 signature over the canonical JSON of every other field>"}
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import requests
import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from gateway.errors import GatewayError, StoreUnavailableError
from gateway.signing.keys import PrivateKey, fingerprint, load_certificates, load_private_key
from gateway.store.schema import utcnow
from gateway.store.verify import ChainVerdict

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.store import Store

__all__ = [
    "AnchorError",
    "AnchorLoop",
    "AnchorSigner",
    "AnchorSink",
    "AnchorVerifier",
    "Checkpoint",
    "FileSink",
    "HttpSink",
    "current_checkpoint",
    "load_anchors",
    "sink_from_settings",
    "verify_anchored",
    "write_anchor",
]

log = structlog.get_logger(__name__)

VERSION = 1


class AnchorError(StoreUnavailableError):
    """An anchor could not be written or read, or one fails its checks.

    A store-unavailable error (HTTP 503 on the admin API): without its anchors the journal
    cannot be vouched for, whatever the database says.
    """

    code = "ANCHOR_FAILED"


@dataclass(frozen=True)
class Checkpoint:
    """The chain head at one moment (unsigned)."""

    entry_id: int
    entry_hash: str | None
    count: int
    at: str
    gateway: str


def _canonical(document: dict[str, Any]) -> bytes:
    body = {k: v for k, v in document.items() if k != "sig"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- signing -------------------------------------------------------------------------------


class AnchorSigner:
    """Signs checkpoints with the gateway's key (loaded once)."""

    def __init__(self, key: PrivateKey, certificate: x509.Certificate, algorithm: str) -> None:
        self._key = key
        self.algorithm = algorithm
        self.key_id = fingerprint(certificate)

    @classmethod
    def from_settings(cls, settings: Settings) -> AnchorSigner:
        """The signer of ``signing.key`` / ``signing.certificate``."""
        s = settings.signing
        return cls(
            load_private_key(s.key, s.algorithm), load_certificates(s.certificate)[0], s.algorithm
        )

    def sign(self, checkpoint: Checkpoint) -> dict[str, Any]:
        """The checkpoint as a signed JSON document."""
        document: dict[str, Any] = {"v": VERSION, **asdict(checkpoint)}
        document.update(alg=self.algorithm, key=self.key_id)
        data = _canonical(document)
        if isinstance(self._key, rsa.RSAPrivateKey):
            signature = self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        else:
            signature = self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        document["sig"] = base64.b64encode(signature).decode("ascii")
        return document


class AnchorVerifier:
    """Checks anchor signatures against the gateway's certificates (current and earlier)."""

    def __init__(self, certificates: Sequence[x509.Certificate]) -> None:
        self._by_id = {fingerprint(c): c for c in certificates}

    @classmethod
    def from_settings(cls, settings: Settings) -> AnchorVerifier:
        """``signing.certificate`` plus ``journal.anchor_certificates`` (key rotation)."""
        paths = [settings.signing.certificate, *settings.journal.anchor_certificates]
        return cls([c for p in paths for c in load_certificates(p)])

    def verify(self, document: dict[str, Any]) -> Checkpoint:
        """The checkpoint of a signed document; AnchorError saying what is wrong."""
        try:
            checkpoint = Checkpoint(
                entry_id=int(document["entry_id"]),
                entry_hash=document["entry_hash"],
                count=int(document["count"]),
                at=str(document["at"]),
                gateway=str(document["gateway"]),
            )
            key_id, signature = str(document["key"]), base64.b64decode(document["sig"])
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise AnchorError(f"malformed anchor ({type(exc).__name__}: {exc})") from exc
        what = f"anchor of {checkpoint.at} (entry {checkpoint.entry_id})"
        if document.get("v") != VERSION:
            raise AnchorError(f"{what}: unknown version {document.get('v')!r}")
        certificate = self._by_id.get(key_id)
        if certificate is None:
            raise AnchorError(
                f"{what}: signed by an unknown key {key_id[:16]}… (not signing.certificate nor "
                "journal.anchor_certificates)"
            )
        public = certificate.public_key()
        data = _canonical(document)
        try:
            if isinstance(public, rsa.RSAPublicKey):
                public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(public, ec.EllipticCurvePublicKey):
                public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            else:
                raise AnchorError(f"{what}: unsupported key type {type(public).__name__}")
        except InvalidSignature:
            raise AnchorError(f"{what}: signature invalid (the anchor was altered)") from None
        return checkpoint


# -- sinks ---------------------------------------------------------------------------------


class AnchorSink(Protocol):
    """Where signed checkpoints are kept, outside the database."""

    #: Where, for messages ("file /var/anchors", "http https://...").
    description: str

    def append(self, document: dict[str, Any], *, timeout: float | None = None) -> None:
        """Store one signed checkpoint durably; AnchorError if it was not stored."""
        ...

    def read(self) -> list[dict[str, Any]]:
        """Every stored checkpoint; AnchorError if the store cannot be read."""
        ...


class FileSink:
    """Append-only JSON lines, one file per month, in a directory outside the database."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.description = f"file {self.directory}"

    def append(self, document: dict[str, Any], *, timeout: float | None = None) -> None:
        """Append one line and fsync it (and the directory when the file is new)."""
        line = json.dumps(document, sort_keys=True, ensure_ascii=False) + "\n"
        name = f"anchors-{str(document.get('at', ''))[:7] or 'undated'}.jsonl"
        path = self.directory / name
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            new = not path.exists()
            # O_APPEND: one write() per line, so concurrent writers (several instances on one
            # share) never interleave inside a line.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            if new:
                dir_fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as exc:
            raise AnchorError(f"cannot write anchor to {path}: {exc.strerror or exc}") from exc

    def read(self) -> list[dict[str, Any]]:
        """Every anchor in every ``anchors-*.jsonl``; skips a torn last line (crash mid-append)."""
        out: list[dict[str, Any]] = []
        if not self.directory.exists():
            return out
        for path in sorted(self.directory.glob("anchors-*.jsonl")):
            try:
                text = path.read_text("utf-8")
            except OSError as exc:
                raise AnchorError(f"cannot read {path}: {exc.strerror or exc}") from exc
            lines = text.split("\n")
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    document = json.loads(line)
                except json.JSONDecodeError:
                    if number == len(lines):  # no newline after it: a torn append
                        continue
                    raise AnchorError(f"{path}:{number}: not a JSON anchor") from None
                if not isinstance(document, dict):
                    raise AnchorError(f"{path}:{number}: not a JSON anchor")
                out.append(document)
        return out


class HttpSink:
    """POST each checkpoint as JSON to a URL; GET on the same URL lists them."""

    def __init__(self, url: str, timeout: float, session: requests.Session | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.session = session or requests.Session()
        self.description = f"http {url}"

    def append(self, document: dict[str, Any], *, timeout: float | None = None) -> None:
        """POST the document; anything but 2xx is an AnchorError."""
        try:
            response = self.session.post(self.url, json=document, timeout=timeout or self.timeout)
        except requests.RequestException as exc:
            raise AnchorError(f"anchor sink {self.url} unreachable: {type(exc).__name__}") from exc
        if not 200 <= response.status_code < 300:
            raise AnchorError(f"anchor sink {self.url} answered HTTP {response.status_code}")

    def read(self) -> list[dict[str, Any]]:
        """GET the stored checkpoints (a JSON array or ``{"anchors": [...]}``)."""
        try:
            response = self.session.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise AnchorError(f"cannot read anchors from {self.url}: {exc}") from exc
        items = data.get("anchors") if isinstance(data, dict) else data
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise AnchorError(f"{self.url} did not answer a list of anchors")
        return items


def sink_from_settings(settings: Settings) -> AnchorSink | None:
    """The sink configured under ``journal:`` (None when ``anchor_sink: none``)."""
    j = settings.journal
    if j.anchor_sink == "file":
        return FileSink(j.anchor_path)
    if j.anchor_sink == "http":
        assert j.anchor_url is not None  # the settings validator requires it
        return HttpSink(j.anchor_url, j.anchor_timeout)
    return None


# -- writing and reading -------------------------------------------------------------------


def current_checkpoint(store: Store, gateway: str) -> Checkpoint:
    """The chain head and the number of entries, read in one snapshot."""
    head = store.journal.head()
    return Checkpoint(
        entry_id=head.entry_id,
        entry_hash=head.entry_hash,
        count=head.count,
        at=utcnow().isoformat(timespec="microseconds"),
        gateway=gateway,
    )


def write_anchor(
    store: Store,
    signer: AnchorSigner,
    sink: AnchorSink,
    gateway: str,
    *,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Checkpoint the chain head, sign it and store it in ``sink``; the signed document."""
    document = signer.sign(current_checkpoint(store, gateway))
    sink.append(document, timeout=timeout)
    return document


def load_anchors(sink: AnchorSink, verifier: AnchorVerifier) -> tuple[list[Checkpoint], list[str]]:
    """The anchors whose signatures hold, and a description of each one that does not."""
    good: list[Checkpoint] = []
    bad: list[str] = []
    for document in sink.read():
        try:
            good.append(verifier.verify(document))
        except AnchorError as exc:
            bad.append(exc.message)
    return good, bad


def verify_anchored(store: Store, settings: Settings) -> ChainVerdict:
    """``journal verify``: chain, payload hashes and the configured sink's anchors."""
    sink = sink_from_settings(settings)
    if sink is None:
        return store.journal.verify()
    anchors, problems = load_anchors(sink, AnchorVerifier.from_settings(settings))
    return store.journal.verify(anchors=anchors, anchor_problems=problems)


class AnchorLoop:
    """Writes a checkpoint every ``journal.anchor_interval`` seconds in a background thread.

    The first is written at start and a last one when stopping, so entries written up to a
    graceful stop are anchored. A checkpoint equal to the previous one (no new entries) is
    skipped. A sink that is down is logged and tried again at the next interval.
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.interval = settings.journal.anchor_interval
        self.gateway = settings.instance_name
        self.sink = sink_from_settings(settings)
        self.signer = AnchorSigner.from_settings(settings) if self.sink else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: tuple[int, str | None] | None = None

    @property
    def enabled(self) -> bool:
        """True when a sink is configured and the interval is positive."""
        return self.sink is not None and self.interval > 0

    def start(self) -> None:
        """Start the thread (nothing happens when anchoring is disabled)."""
        if not self.enabled:
            return
        self._thread = threading.Thread(target=self._run, name="journal-anchor", daemon=True)
        self._thread.start()

    def anchor_once(self, *, timeout: float | None = None) -> bool:
        """Write one checkpoint unless the head is unchanged; False when it failed."""
        assert self.sink is not None and self.signer is not None
        try:
            checkpoint = current_checkpoint(self.store, self.gateway)
            if (checkpoint.entry_id, checkpoint.entry_hash) == self._last:
                return True
            self.sink.append(self.signer.sign(checkpoint), timeout=timeout)
        except GatewayError as exc:
            log.warning("journal anchor not written", code=exc.code, error=exc.message)
            return False
        self._last = (checkpoint.entry_id, checkpoint.entry_hash)
        log.info("journal anchored", entry_id=checkpoint.entry_id, sink=self.sink.description)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self.anchor_once()
            self._stop.wait(self.interval)

    def stop(self, timeout: float) -> None:
        """Stop the thread and write a last checkpoint, all within ``timeout`` seconds."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._thread.join(timeout)
        left = deadline - time.monotonic()
        # A last checkpoint only if the sink gets a fair chance to answer in the time left.
        if left > 0.2 and not self._thread.is_alive():
            self.anchor_once(timeout=left)
