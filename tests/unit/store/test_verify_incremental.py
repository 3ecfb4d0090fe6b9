"""Incremental journal verification: from the newest signed anchor to the head.

It reads only the entries after the anchor, trusts the anchor (signature-checked) for those up
to it, and still names a changed anchored entry, a changed or deleted later entry, a changed
payload and a cut tail. A change before the anchor is the full verification's to find.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from gateway.delivery.operator import _verify
from gateway.store import Store
from gateway.store.anchor import AnchorSigner, AnchorVerifier, FileSink, load_anchors
from gateway.store.schema import journal
from gateway.store.verify import ChainVerdict, verify_journal
from tests.conftest import build_settings
from tests.unit.store.test_anchor import anchor, fill, rehash_from, set_head, signer, verifier

__all__ = ["signer", "verifier"]  # fixtures, imported for pytest


def incremental(store: Store, sink: FileSink, verifier: AnchorVerifier) -> ChainVerdict:
    anchors, problems = load_anchors(sink, verifier)
    newest = max(anchors, key=lambda a: a.entry_id)
    return verify_journal(store.engine, anchors=anchors, anchor_problems=problems, since=newest)


def _setup(store: Store, signer: AnchorSigner, sink: FileSink) -> None:
    fill(store, 6)
    anchor(store, signer, sink)  # vouches for entries 1..6
    fill(store, 4)  # entries 7..10, after the newest anchor


def test_reads_only_what_follows_the_newest_anchor(
    store: Store, signer: AnchorSigner, tmp_path: Path, verifier: AnchorVerifier
) -> None:
    sink = FileSink(tmp_path / "anchors")
    _setup(store, signer, sink)
    verdict = incremental(store, sink, verifier)
    assert verdict.ok, verdict
    assert verdict.since_id == 6 and verdict.checked == 10 and verdict.head_id == 10
    # Only the payloads after the anchor were read (fill accepts a message every other entry).
    assert verdict.payloads == 2
    full = store.journal.verify(anchors=load_anchors(sink, verifier)[0])
    assert full.ok and full.checked == 10 and full.since_id is None


def test_names_changes_after_the_anchor_and_of_the_anchored_entry(
    store: Store, signer: AnchorSigner, tmp_path: Path, verifier: AnchorVerifier
) -> None:
    sink = FileSink(tmp_path / "anchors")
    _setup(store, signer, sink)
    with store.engine.begin() as conn:
        conn.execute(update(journal).where(journal.c.id == 8).values(detail="edited"))
    verdict = incremental(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id == 8 and "changed" in (verdict.problem or "")
    rehash_from(store, 8)  # hides it from the chain: still after the anchor, still read
    assert incremental(store, sink, verifier).ok  # (nothing anchors entries 7..10 yet)
    with store.engine.begin() as conn:  # an edit before the anchor, every hash recomputed
        conn.execute(update(journal).where(journal.c.id == 5).values(detail="edited"))
    rehash_from(store, 5)  # the rewrite reaches the anchored entry 6
    verdict = incremental(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id == 6 and "rewritten" in (verdict.problem or "")


def test_names_a_deleted_entry_a_changed_payload_and_a_cut_tail(
    store: Store, signer: AnchorSigner, tmp_path: Path, verifier: AnchorVerifier
) -> None:
    sink = FileSink(tmp_path / "anchors")
    _setup(store, signer, sink)
    with store.engine.begin() as conn:
        conn.execute(update(journal).where(journal.c.id == 7).values(payload=b"<forged/>"))
    verdict = incremental(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id == 7 and "payload" in (verdict.problem or "")
    with store.engine.begin() as conn:
        conn.execute(delete(journal).where(journal.c.id == 7))
    verdict = incremental(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id == 7 and "deleted" in (verdict.problem or "")
    with store.engine.begin() as conn:
        conn.execute(delete(journal).where(journal.c.id >= 6))
    set_head(store, 5)
    verdict = incremental(store, sink, verifier)
    assert not verdict.ok and verdict.bad_id == 6


def test_a_change_before_the_anchor_is_left_to_the_full_verification(
    store: Store, signer: AnchorSigner, tmp_path: Path, verifier: AnchorVerifier
) -> None:
    sink = FileSink(tmp_path / "anchors")
    _setup(store, signer, sink)
    with store.engine.begin() as conn:
        conn.execute(update(journal).where(journal.c.id == 3).values(detail="edited"))
    assert incremental(store, sink, verifier).ok  # not read: the documented limit
    full = store.journal.verify(anchors=load_anchors(sink, verifier)[0])
    assert not full.ok and full.bad_id == 3


def test_cli_incremental_flag(
    store: Store,
    signer: AnchorSigner,
    tmp_path: Path,
    keys_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = FileSink(tmp_path / "anchors")
    _setup(store, signer, sink)
    settings = build_settings(tmp_path / "cfg", keys_dir)  # the anchors' certificates
    args = argparse.Namespace(anchors=sink.directory, no_anchors=False, incremental=True)
    assert _verify(args, store, settings) == 0
    out, err = capsys.readouterr()
    assert "journal intact: 10 entries" in out and "entries after 6 read" in err
    with store.engine.begin() as conn:
        conn.execute(update(journal).where(journal.c.id == 9).values(detail="edited"))
    assert _verify(args, store, settings) == 1
    assert "TAMPERED at entry 9" in capsys.readouterr().out
