"""Anchored journal: payload hashes, signed checkpoints outside the store, and every tamper case.

Each tamper test first shows what the chain alone cannot see (where that is a hole), then that
verification with anchors names it.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from gateway.signing.keys import load_certificates, load_private_key
from gateway.store import OutboundRecord, Store
from gateway.store.anchor import (
    AnchorError,
    AnchorSigner,
    AnchorVerifier,
    FileSink,
    HttpSink,
    load_anchors,
    write_anchor,
)
from gateway.store.chain import GENESIS, entry_hash
from gateway.store.schema import journal, journal_chain
from gateway.store.verify import ChainVerdict


@pytest.fixture
def signer(keys_dir: Path) -> AnchorSigner:
    return AnchorSigner(
        load_private_key(keys_dir / "gateway-key.pem"),
        load_certificates(keys_dir / "gateway-cert.pem")[0],
        "rsa-sha256",
    )


@pytest.fixture
def verifier(keys_dir: Path) -> AnchorVerifier:
    return AnchorVerifier(load_certificates(keys_dir / "gateway-cert.pem"))


@pytest.fixture
def sink(tmp_path: Path) -> FileSink:
    return FileSink(tmp_path / "anchors")


def fill(store: Store, n: int) -> None:
    """``n`` entries: outbound accepts (with payloads) and notes (without)."""
    for i in range(n):
        if i % 2 == 0:
            mid = uuid.uuid4().hex
            store.outbox.accept(
                OutboundRecord(
                    message_id=mid,
                    partner="tis",
                    operation="SubmitExecutionNotification",
                    message_type="tis.execution_notification",
                    payload=f"<signed n='{i}'/>".encode(),
                    ordering_key=None,
                    correlation_id=None,
                    idempotency_key=mid,
                    request_sha256=mid,
                )
            )
        else:
            store.journal.append(
                direction="local", partner="tis", status="note", detail=f"note {i}"
            )


def check(store: Store, sink: FileSink, verifier: AnchorVerifier) -> ChainVerdict:
    anchors, problems = load_anchors(sink, verifier)
    return store.journal.verify(anchors=anchors, anchor_problems=problems)


def anchor(store: Store, signer: AnchorSigner, sink: Any) -> dict[str, Any]:
    return write_anchor(store, signer, sink, "test-gateway")


def set_head(store: Store, last_id: int) -> None:
    """Rewind (or advance) the one-row chain head to entry ``last_id`` with its hash."""
    with store.engine.begin() as conn:
        last_hash = conn.execute(
            select(journal.c.entry_hash).where(journal.c.id == last_id)
        ).scalar()
        conn.execute(
            update(journal_chain)
            .where(journal_chain.c.id == 1)
            .values(last_id=last_id, last_hash=last_hash)
        )


def rehash_from(store: Store, first: int) -> None:
    """What an attacker with write access does: recompute every hash from ``first`` on."""
    cols = [c for c in journal.c if c.name != "payload"]
    with store.engine.begin() as conn:
        prev = (
            conn.execute(select(journal.c.entry_hash).where(journal.c.id == first - 1)).scalar()
            or GENESIS
        )
        last = 0
        for row in conn.execute(select(*cols).where(journal.c.id >= first).order_by(journal.c.id)):
            entry = dict(row._mapping)
            entry["prev_hash"] = prev
            digest = entry_hash(entry)
            conn.execute(
                update(journal)
                .where(journal.c.id == entry["id"])
                .values(prev_hash=prev, entry_hash=digest)
            )
            prev, last = digest, int(entry["id"])
        conn.execute(
            update(journal_chain)
            .where(journal_chain.c.id == 1)
            .values(last_id=last, last_hash=prev)
        )


# -- payloads ------------------------------------------------------------------------------


def test_changed_payload_byte_is_named(store: Store) -> None:
    fill(store, 5)
    verdict = store.journal.verify()
    assert verdict.ok and verdict.payloads == 3
    with store.engine.begin() as conn:
        conn.execute(update(journal).where(journal.c.id == 3).values(payload=b"<signed n='X'/>"))
    verdict = store.journal.verify()
    assert not verdict.ok and verdict.bad_id == 3
    assert "payload changed" in (verdict.problem or "")


def test_payload_check_reads_payloads_in_small_batches(store: Store) -> None:
    fill(store, 9)
    with store.engine.begin() as conn:
        conn.execute(update(journal).where(journal.c.id == 9).values(payload=b"other"))
    verdict = store.journal.verify(batch=2)
    assert not verdict.ok and verdict.bad_id == 9 and verdict.checked == 8


# -- anchors -------------------------------------------------------------------------------


def test_anchored_journal_verifies_and_entries_after_the_anchor_too(
    store: Store, signer: AnchorSigner, sink: FileSink, verifier: AnchorVerifier
) -> None:
    fill(store, 3)
    first = anchor(store, signer, sink)
    assert first["entry_id"] == 3 and first["count"] == 3 and first["key"] == signer.key_id
    fill(store, 2)
    anchor(store, signer, sink)
    fill(store, 1)  # not anchored yet: still fine
    verdict = check(store, sink, verifier)
    assert verdict.ok, verdict
    assert verdict.anchors == 2 and verdict.anchored_id == 5 and verdict.checked == 6
    lines = list((sink.directory).glob("anchors-*.jsonl"))
    assert len(lines) == 1 and len(lines[0].read_text().splitlines()) == 2


def test_tail_cut_and_head_rewound(
    store: Store, signer: AnchorSigner, sink: FileSink, verifier: AnchorVerifier
) -> None:
    fill(store, 5)
    anchor(store, signer, sink)
    with store.engine.begin() as conn:
        conn.execute(delete(journal).where(journal.c.id > 3))
    set_head(store, 3)
    assert store.journal.verify().ok  # the chain alone cannot see it
    verdict = check(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id == 4
    assert "entries 4..5 deleted" in (verdict.problem or "")


def test_anchored_entry_gone_with_head_kept(
    store: Store, signer: AnchorSigner, sink: FileSink, verifier: AnchorVerifier
) -> None:
    fill(store, 5)
    anchor(store, signer, sink)
    with store.engine.begin() as conn:
        conn.execute(delete(journal).where(journal.c.id == 5))
    verdict = check(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id == 5 and "deleted" in (verdict.problem or "")


def test_head_row_rewound_alone(
    store: Store, signer: AnchorSigner, sink: FileSink, verifier: AnchorVerifier
) -> None:
    fill(store, 5)
    anchor(store, signer, sink)
    set_head(store, 2)
    verdict = check(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id == 3


def test_everything_deleted(
    store: Store, signer: AnchorSigner, sink: FileSink, verifier: AnchorVerifier
) -> None:
    fill(store, 4)
    anchor(store, signer, sink)
    with store.engine.begin() as conn:
        conn.execute(delete(journal))
        conn.execute(
            update(journal_chain).where(journal_chain.c.id == 1).values(last_id=0, last_hash=None)
        )
    assert store.journal.verify().ok  # an empty journal is a valid chain
    verdict = check(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id == 1
    assert "every entry deleted" in (verdict.problem or "")


def test_full_rewrite_with_recomputed_hashes(
    store: Store, signer: AnchorSigner, sink: FileSink, verifier: AnchorVerifier
) -> None:
    fill(store, 6)
    anchor(store, signer, sink)
    with store.engine.begin() as conn:
        conn.execute(update(journal).where(journal.c.id == 2).values(detail="nothing happened"))
    rehash_from(store, 2)
    assert store.journal.verify().ok  # the chain alone cannot see it
    verdict = check(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id == 6
    assert "rewritten" in (verdict.problem or "")


def test_rewrite_of_entries_before_an_older_anchor_is_caught_by_that_anchor(
    store: Store, signer: AnchorSigner, sink: FileSink, verifier: AnchorVerifier
) -> None:
    fill(store, 3)
    anchor(store, signer, sink)
    fill(store, 3)
    with store.engine.begin() as conn:
        conn.execute(update(journal).where(journal.c.id == 1).values(status="rejected"))
    rehash_from(store, 1)
    anchor(store, signer, sink)  # the loop anchors the forged head later: the older one still holds
    verdict = check(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id == 3 and "rewritten" in (verdict.problem or "")


def test_tail_cut_and_regrown_to_the_anchored_length(
    store: Store, signer: AnchorSigner, sink: FileSink, verifier: AnchorVerifier
) -> None:
    fill(store, 4)
    anchor(store, signer, sink)
    with store.engine.begin() as conn:
        conn.execute(delete(journal).where(journal.c.id > 2))
    set_head(store, 2)
    store.journal.append(direction="local", partner="tis", status="note", detail="forged 3")
    store.journal.append(direction="local", partner="tis", status="note", detail="forged 4")
    assert store.journal.verify().ok
    verdict = check(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id == 4 and "rewritten" in (verdict.problem or "")


def test_forged_and_altered_anchors_fail(
    store: Store,
    signer: AnchorSigner,
    sink: FileSink,
    verifier: AnchorVerifier,
    keys_dir: Path,
) -> None:
    fill(store, 2)
    intruder = AnchorSigner(
        load_private_key(keys_dir / "intruder-key.pem"),
        load_certificates(keys_dir / "intruder-cert.pem")[0],
        "rsa-sha256",
    )
    anchor(store, intruder, sink)
    verdict = check(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id is None
    assert "unknown key" in (verdict.problem or "")

    other = FileSink(sink.directory.parent / "other")
    document = anchor(store, signer, other)
    document["count"] = 1
    path = next(other.directory.glob("*.jsonl"))
    path.write_text(json.dumps(document) + "\n")
    verdict = check(store, other, verifier)
    assert not verdict.ok and "signature invalid" in (verdict.problem or "")


def test_anchors_survive_payload_purge(
    store: Store, signer: AnchorSigner, sink: FileSink, verifier: AnchorVerifier
) -> None:
    from datetime import timedelta

    fill(store, 3)
    anchor(store, signer, sink)
    store.journal.purge_payloads(timedelta(0), actor="retention")
    verdict = check(store, sink, verifier)
    assert verdict.ok and verdict.payloads == 0 and verdict.checked == 4


def test_file_sink_skips_a_torn_last_line_and_refuses_a_corrupt_one(
    store: Store, signer: AnchorSigner, sink: FileSink, verifier: AnchorVerifier
) -> None:
    fill(store, 1)
    anchor(store, signer, sink)
    path = next(sink.directory.glob("*.jsonl"))
    with path.open("a") as fh:
        fh.write('{"v": 1, "entry_id"')  # the crash came mid-append
    assert check(store, sink, verifier).ok
    with path.open("a") as fh:
        fh.write("\n")
    anchor(store, signer, sink)
    with pytest.raises(AnchorError, match="not a JSON anchor"):
        sink.read()


# -- the HTTP sink, against a tiny real receiver ----------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    stored: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.stored.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(201)
        self.end_headers()

    def do_GET(self) -> None:
        data = json.dumps({"anchors": self.server.stored}).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.stored = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/anchors", server.stored  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def test_http_sink_round_trip_and_tamper(
    store: Store,
    signer: AnchorSigner,
    verifier: AnchorVerifier,
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, stored = receiver
    sink = HttpSink(url, timeout=5)
    fill(store, 4)
    anchor(store, signer, sink)
    assert len(stored) == 1 and stored[0]["entry_id"] == 4
    anchors, problems = load_anchors(sink, verifier)
    assert problems == [] and store.journal.verify(anchors=anchors).ok
    with store.engine.begin() as conn:
        conn.execute(delete(journal).where(journal.c.id > 1))
    set_head(store, 1)
    anchors, problems = load_anchors(sink, verifier)
    verdict = store.journal.verify(anchors=anchors, anchor_problems=problems)
    assert not verdict.ok and verdict.bad_id == 2


def test_http_sink_refusal_and_outage_are_errors(store: Store, signer: AnchorSigner) -> None:
    from tests.conftest import free_port

    sink = HttpSink(f"http://127.0.0.1:{free_port()}/anchors", timeout=2)
    with pytest.raises(AnchorError, match="unreachable"):
        anchor(store, signer, sink)
    with pytest.raises(AnchorError, match="cannot read"):
        sink.read()
