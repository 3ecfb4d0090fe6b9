"""Retention per class of data, journaled; the chain and the signed anchors still verify."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, update

from gateway.config import Settings
from gateway.jobs.retention import pseudonym_key
from gateway.opendata.extract import dump_rows
from gateway.store import InboundRecord, OutboundRecord, Store
from gateway.store.anchor import AnchorSigner, FileSink, write_anchor
from gateway.store.rejections import journal_rejection
from gateway.store.retention import PSEUDONYM_PREFIX, apply_retention, pseudonym
from gateway.store.schema import inbox, journal, outbox, registry_queries, utcnow
from gateway.store.statistics import Extracts
from tests.unit.opendata.conftest import hand_checked

OLD = utcnow() - timedelta(days=3000)
#: Retention runs "in the future": the journal's times are hashed, so they are not backdated.
LATER = utcnow() + timedelta(days=3000)


def _fill(store: Store) -> None:
    for n in range(3):
        store.outbox.accept(
            OutboundRecord(
                message_id=f"m{n}",
                partner="tis",
                operation="op",
                message_type="t",
                payload=b"<signed/>",
                ordering_key=None,
                correlation_id=None,
                idempotency_key=f"k{n}",
                request_sha256="0" * 64,
            )
        )
        store.inbox.accept(
            InboundRecord(
                message_id=f"i{n}",
                partner="tis",
                operation="op",
                message_type="t",
                partner_message_id=f"p{n}",
                correlation_id=None,
                canonical={"name": "Jānis"},
                payload=b"<in/>",
            )
        )
    journal_rejection(
        store,
        raw=b"<junk/>" * 10,
        prefix_bytes=16,
        retention_bytes=10**6,
        direction="in",
        partner="tis",
        error_code="XML_MALFORMED",
    )
    extracts = Extracts(store.db, store.journal)
    extracts.record(
        period="2019-12",
        fmt="csv",
        rows=9,
        size=1,
        sha256="1" * 64,
        content=dump_rows(hand_checked()),
        errors=[],
        error_count=0,
        actor=None,
    )
    extracts.record(
        period="2026-09",
        fmt="csv",
        rows=9,
        size=1,
        sha256="2" * 64,
        content=dump_rows(hand_checked()),
        errors=[],
        error_count=0,
        actor=None,
    )
    with store.db.transaction() as conn:
        for n, at in enumerate((OLD, LATER)):
            conn.execute(
                insert(registry_queries).values(
                    at=at,
                    registry="vid",
                    officer_id="o1",
                    purpose="check",
                    case_id="K1",
                    personal_code=f"01019{n}-12345",
                    query_id=f"q{n}",
                    status="ok",
                    cached=False,
                )
            )
        # Messages 0 and 1 delivered long ago (1 acked long ago), 2 still fresh.
        conn.execute(
            update(outbox)
            .where(outbox.c.message_id.in_(["m0", "m1"]))
            .values(status="delivered", delivered_at=OLD)
        )
        conn.execute(update(inbox).where(inbox.c.message_id.in_(["i0", "i1"])).values(acked_at=OLD))


def test_every_class_is_applied_journaled_and_the_chain_verifies(
    store: Store,
    settings: Settings,
    tmp_path: Path,
) -> None:
    _fill(store)
    signer = AnchorSigner.from_settings(settings)
    sink = FileSink(tmp_path / "anchors")
    write_anchor(store, signer, sink, "test")
    key = pseudonym_key(settings)
    done = apply_retention(
        store,
        settings.retention,
        actor="job:retention",
        pseudonym_key=key,
        rejected_retention_bytes=10**6,
        now=LATER,
    )
    assert done["outbox_delivered"] == 2
    assert done["inbox_acked"] == 2
    assert done["rejected_payloads"] == 1
    assert done["journal_payloads"] > 0
    assert done["extracts"] == 1
    assert done["audit_pseudonymised"] == 1
    with store.db.connect() as conn:
        payloads = dict(conn.execute(select(outbox.c.message_id, outbox.c.payload)).all())
        canonical = dict(conn.execute(select(inbox.c.message_id, inbox.c.canonical)).all())
        codes = [
            r[0]
            for r in conn.execute(
                select(registry_queries.c.personal_code).order_by(registry_queries.c.id)
            )
        ]
        entries = conn.execute(
            select(journal.c.status, journal.c.detail, journal.c.actor).where(
                journal.c.operation == "retention"
            )
        ).all()
        purged_payloads = conn.execute(
            select(func.count()).select_from(journal).where(journal.c.payload.is_not(None))
        ).scalar_one()
    assert payloads == {"m0": b"", "m1": b"", "m2": b"<signed/>"}
    assert canonical["i0"] == "{}" and "Jānis" in canonical["i2"]
    assert codes == [pseudonym(key, "010190-12345"), "010191-12345"]
    assert codes[0].startswith(PSEUDONYM_PREFIX) and len(codes[0]) == 16
    assert {e.actor for e in entries} == {"job:retention"}
    assert len(entries) == 6  # one per class that removed something
    assert purged_payloads == 0
    extracts = Extracts(store.db, store.journal)
    assert extracts.latest("2019-12") is None and extracts.latest("2026-09") is not None
    # The hash chain, the payload hashes and the anchor written before all still hold.
    from gateway.store.anchor import AnchorVerifier, load_anchors

    anchors, problems = load_anchors(sink, AnchorVerifier.from_settings(settings))
    verdict = store.journal.verify(anchors=anchors, anchor_problems=problems)
    assert verdict.ok, verdict
    # Running again finds nothing and journals nothing.
    before = len(entries)
    again = apply_retention(
        store,
        settings.retention,
        actor="job:retention",
        pseudonym_key=key,
        rejected_retention_bytes=10**6,
        now=LATER,
    )
    assert set(again.values()) == {0}
    with store.db.connect() as conn:
        after = conn.execute(
            select(func.count()).select_from(journal).where(journal.c.operation == "retention")
        ).scalar_one()
    assert after == before


def test_zero_keeps_a_class_for_ever(store: Store, settings: Settings) -> None:
    _fill(store)
    keep = settings.retention.model_copy(
        update={
            "outbox_delivered_days": 0,
            "inbox_acked_days": 0,
            "journal_payload_days": 0,
            "rejected_payload_days": 0,
            "extracts_days": 0,
            "audit_pseudonymise_years": 0,
            "eservice_requests_days": 0,
        }
    )
    assert (
        apply_retention(store, keep, actor="x", pseudonym_key=b"k", rejected_retention_bytes=10**6)
        == {}
    )
