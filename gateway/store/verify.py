"""Verifying the journal: hash chain, stored payloads, and signed anchors kept outside the store.

The chain alone proves that nobody changed, inserted or deleted an entry *without recomputing
every later hash and the head row*; anyone with write access to the database can do that
recomputation, and can also cut the tail and rewind the head. Anchors close that gap: each is a
checkpoint of the chain head (entry id, entry hash, entry count, time) signed with the gateway's
key and written outside the database (gateway/store/anchor.py). An entry that an anchor vouches
for must still exist, with the same hash and the same number of entries up to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, func, select

from gateway.store.chain import GENESIS, entry_hash
from gateway.store.schema import journal, journal_chain

__all__ = ["AnchorPoint", "ChainVerdict", "verify_journal"]

# Payload bytes held in memory at once while checking payload hashes (at least one payload).
_PAYLOAD_BUDGET = 32 * 1024 * 1024


class AnchorPoint(Protocol):
    """What verification needs of a signed checkpoint (already signature-checked)."""

    @property
    def entry_id(self) -> int:
        """Id of the chain head when the checkpoint was taken (0: empty journal)."""
        ...

    @property
    def entry_hash(self) -> str | None:
        """``entry_hash`` of that entry."""
        ...

    @property
    def count(self) -> int:
        """Number of journal entries at the time."""
        ...

    @property
    def at(self) -> str:
        """When the checkpoint was taken (ISO 8601, UTC)."""
        ...


@dataclass(frozen=True)
class ChainVerdict:
    """What :func:`verify_journal` found: ok, or the first entry that does not fit.

    ``bad_id`` is None when the problem is not one entry (an anchor that fails its signature).
    ``payloads`` counts payloads compared with their hash, ``anchors`` the signed anchors
    checked, ``anchored_id`` is the newest entry an anchor vouches for.
    """

    ok: bool
    checked: int
    head_id: int
    head_hash: str | None
    bad_id: int | None = None
    problem: str | None = None
    payloads: int = 0
    anchors: int = 0
    anchored_id: int | None = None
    #: Incremental verification: the anchored entry the walk started after (None: full).
    since_id: int | None = None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_journal(
    engine: Engine,
    *,
    anchors: Sequence[AnchorPoint] = (),
    anchor_problems: Sequence[str] = (),
    batch: int = 5000,
    since: AnchorPoint | None = None,
) -> ChainVerdict:
    """Walk the chain from the first entry; name the first entry that does not fit.

    With ``since`` (a signed checkpoint, already signature-checked: the newest one in
    practice), the walk is incremental: the checkpoint's entry must still carry the hash it
    vouched for, and the chain, payloads and later anchors are checked from the entry after it
    to the head; ``checked`` counts the checkpoint's entries as verified. What lies before it
    is left to a full verification (a deleted or changed earlier entry shows only there), so
    run one periodically; the incremental walk costs the entries since the checkpoint, not ten
    years of them.

    Checks, in entry order: each entry's ``prev_hash`` links to the entry before (a deleted
    entry breaks it and leaves a gap in the ids, an inserted one does not fit), its own
    ``entry_hash`` (a changed field), its stored payload against ``payload_sha256`` (a changed
    byte), and every anchor on it (same hash, same count of entries up to it). At the end the
    head row must be the last entry, and no anchor may vouch for an entry past it (a deleted
    tail with a rewound head, or everything deleted). ``anchor_problems`` are anchors that
    failed their signature check; any of them fails the verdict.
    """
    by_entry: dict[int, list[AnchorPoint]] = {}
    for anchor in anchors:
        if anchor.entry_id > 0:
            by_entry.setdefault(anchor.entry_id, []).append(anchor)
    newest = max((a for a in anchors if a.entry_id > 0), key=lambda a: a.entry_id, default=None)
    anchored_id = newest.entry_id if newest else None
    cols = [c for c in journal.c if c.name != "payload"]
    size = func.length(journal.c.payload).label("payload_size")
    prev_hash, prev_id, checked, payloads = GENESIS, 0, 0, 0

    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        # One snapshot for the whole walk: entries committed meanwhile are neither half seen
        # nor mistaken for entries past the head read at the start. (SQLite's read
        # transaction is a snapshot already.)
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    with conn:
        head = conn.execute(
            select(journal_chain.c.last_id, journal_chain.c.last_hash).where(
                journal_chain.c.id == 1
            )
        ).first()
        head_id = int(head.last_id) if head else 0
        head_hash = head.last_hash if head else None

        def verdict(entry_id: int | None, problem: str) -> ChainVerdict:
            return ChainVerdict(
                False,
                checked,
                head_id,
                head_hash,
                entry_id,
                problem,
                payloads,
                len(anchors),
                anchored_id,
                since.entry_id if since is not None else None,
            )

        if anchor_problems:
            more = f" (and {len(anchor_problems) - 1} more)" if len(anchor_problems) > 1 else ""
            return verdict(None, f"anchor store: {anchor_problems[0]}{more}")

        after = 0
        if since is not None and since.entry_id > 0:
            start = conn.execute(
                select(journal.c.entry_hash).where(journal.c.id == since.entry_id)
            ).first()
            if start is None or start.entry_hash != since.entry_hash:
                what = "deleted" if start is None else "rewritten"
                return verdict(
                    since.entry_id,
                    f"{what}: entry {since.entry_id} does not match the signed anchor of "
                    f"{since.at} the incremental verification starts from",
                )
            prev_hash, prev_id, checked = since.entry_hash or GENESIS, since.entry_id, since.count
            after = since.entry_id
            # Older anchors vouch for entries this walk does not read.
            by_entry = {i: a for i, a in by_entry.items() if i > since.entry_id}
        while True:
            rows = [
                dict(r._mapping)
                for r in conn.execute(
                    select(*cols, size)
                    .where(journal.c.id > after)
                    .order_by(journal.c.id)
                    .limit(batch)
                )
            ]
            if not rows:
                break
            changed_payloads = _changed_payloads(conn, rows)
            for entry in rows:
                entry_id = int(entry["id"])
                if entry["prev_hash"] != prev_hash:
                    if entry_id > prev_id + 1:
                        missing = (
                            f"{prev_id + 1}"
                            if entry_id == prev_id + 2
                            else f"{prev_id + 1}..{entry_id - 1}"
                        )
                        return verdict(prev_id + 1, f"entry {missing} deleted (chain breaks)")
                    return verdict(entry_id, "inserted: prev_hash does not match the entry before")
                if entry_hash(entry) != entry["entry_hash"]:
                    return verdict(entry_id, "changed: fields do not match entry_hash")
                if entry_id in changed_payloads:
                    return verdict(
                        entry_id, "payload changed: its SHA-256 does not match payload_sha256"
                    )
                if entry_id > head_id:
                    return verdict(entry_id, f"inserted after the chain head (entry {head_id})")
                checked += 1
                payloads += entry["payload_size"] is not None
                for anchor in by_entry.get(entry_id, ()):
                    if anchor.entry_hash != entry["entry_hash"]:
                        return verdict(
                            entry_id,
                            f"rewritten: entry {entry_id} does not match the signed anchor of "
                            f"{anchor.at} (the journal up to it was recomputed)",
                        )
                    if anchor.count != checked:
                        return verdict(
                            entry_id,
                            f"the signed anchor of {anchor.at} counted {anchor.count} entries "
                            f"up to entry {entry_id}, the journal has {checked}",
                        )
                prev_hash, prev_id = entry["entry_hash"], entry_id
            after = prev_id

    if checked and (prev_id != head_id or prev_hash != head_hash):
        return verdict(prev_id + 1, f"entry {prev_id + 1}..{head_id} deleted (chain head lost)")
    if not checked and head_id:
        return verdict(1, f"entries 1..{head_id} deleted")
    if newest is not None and newest.entry_id > prev_id:
        what = "every entry" if not checked else f"entries {prev_id + 1}..{newest.entry_id}"
        return verdict(
            prev_id + 1,
            f"{what} deleted: the signed anchor of {newest.at} vouches for entry "
            f"{newest.entry_id}, the journal ends at entry {prev_id} (tail cut, head rewound)",
        )
    return ChainVerdict(
        True,
        checked,
        head_id,
        head_hash,
        None,
        None,
        payloads,
        len(anchors),
        anchored_id,
        since.entry_id if since is not None else None,
    )


def _changed_payloads(conn: Any, rows: list[dict[str, Any]]) -> set[int]:
    """Ids among ``rows`` whose stored payload does not hash to their ``payload_sha256``.

    Payloads are fetched in groups of at most ``_PAYLOAD_BUDGET`` bytes, so a batch of large
    messages is never held in memory at once.
    """
    changed: set[int] = set()
    group: list[int] = []
    held = 0

    def check(ids: list[int]) -> None:
        wanted = set(ids)
        expected = {int(r["id"]): r["payload_sha256"] for r in rows if int(r["id"]) in wanted}
        for entry_id, payload in conn.execute(
            select(journal.c.id, journal.c.payload).where(journal.c.id.in_(ids))
        ):
            if payload is not None and _sha256(bytes(payload)) != expected[int(entry_id)]:
                changed.add(int(entry_id))

    for r in rows:
        if r["payload_size"] is None:
            continue
        if group and held + int(r["payload_size"]) > _PAYLOAD_BUDGET:
            check(group)
            group, held = [], 0
        group.append(int(r["id"]))
        held += int(r["payload_size"])
    if group:
        check(group)
    return changed
