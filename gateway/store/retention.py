"""Retention per class of data (SEC-07): what is kept how long, applied and journaled.

Each class is one statement over the tables of its area and one journal entry in the same
transaction, so the journal says what was removed, when and by whom. Nothing removed is
covered by the journal's hash chain: payloads are hashed separately (``payload_sha256``), so
``journal verify`` and the signed anchors still hold after a purge.

==========================  ====================================================================
class (``retention:``)      what happens after the age
==========================  ====================================================================
``outbox_delivered_days``   the signed payload of a delivered message is emptied (hash stays)
``inbox_acked_days``        the canonical JSON of an acknowledged message becomes ``{}``
``journal_payload_days``    journal payloads are nulled (as ``journal purge`` does)
``rejected_payload_days``   kept prefixes of refused requests are nulled
``extracts_days``           statistics extracts lose their rows (the newest one stays)
``audit_pseudonymise_years`` registry audit rows: the personal code becomes a keyed pseudonym
``eservice_requests_days``  answered e-service requests are deleted (requester, e-address owner)
==========================  ====================================================================
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from gateway.store.queue_stats import checkpoint_in
from gateway.store.rejections import enforce_rejected_retention
from gateway.store.schema import utcnow
from gateway.store.statistics import Extracts

if TYPE_CHECKING:
    from gateway.store import Store

__all__ = ["PSEUDONYM_PREFIX", "apply_retention", "pseudonym"]

#: Pseudonymised personal codes start with this (a real code never does).
PSEUDONYM_PREFIX = "P:"


def pseudonym(key: bytes, personal_code: str) -> str:
    """The keyed pseudonym of a personal code: the same code always gives the same one, so
    "who looked at this person" stays answerable by whoever holds the key."""
    digest = hmac.new(key, personal_code.encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:14]


def apply_retention(
    store: Store,
    retention: Any,
    *,
    actor: str,
    pseudonym_key: bytes,
    rejected_retention_bytes: int,
    now: datetime | None = None,
    check: Callable[[], None] = lambda: None,
) -> dict[str, int]:
    """Apply every class of ``retention`` (RetentionSettings); counts per class.

    ``check`` is called between classes (a job's lease check). A class set to 0 is skipped.
    """
    now = now or utcnow()
    done: dict[str, int] = {}
    extracts = Extracts(store.db, store.journal)

    def cutoff(days: float) -> datetime:
        return now - timedelta(days=days)

    def journaled(name: str, days: float, work: Callable[[Connection, datetime], int]) -> None:
        check()
        if days <= 0:
            return
        limit = cutoff(days)
        with store.db.transaction() as conn:
            count = work(conn, limit)
            done[name] = count
            if not count:
                return  # nothing removed: nothing to journal (a nightly no-op stays quiet)
            store.journal.append_in(
                conn,
                direction="local",
                partner="gateway",
                operation="retention",
                status="retention_applied",
                actor=actor,
                detail=f"{name}: {count} before {limit.isoformat()}",
            )

    # Each class is its area's purge, inside the transaction that journals it.
    def outbox_payloads(conn: Connection, limit: datetime) -> int:
        return store.outbox.empty_delivered_payloads_in(conn, limit)

    def inbox_canonical(conn: Connection, limit: datetime) -> int:
        return store.inbox.empty_acked_in(conn, limit)

    def rejected(conn: Connection, limit: datetime) -> int:
        return store.journal.purge_payloads_in(conn, limit, status="rejected")

    def journal_payloads(conn: Connection, limit: datetime) -> int:
        # As Journal.purge_payloads (``journal purge``), on the retention's clock.
        return store.journal.purge_payloads_in(conn, limit)

    def extract_rows(conn: Connection, limit: datetime) -> int:
        return extracts.purge_in(conn, extracts.purge_before(limit))

    def audit_codes(conn: Connection, limit: datetime) -> int:
        return store.audit.pseudonymise_in(
            conn, limit, lambda code: pseudonym(pseudonym_key, code), prefix=PSEUDONYM_PREFIX
        )

    def eservice_requests(conn: Connection, limit: datetime) -> int:
        return store.eservices.delete_answered_in(conn, limit)

    journaled("outbox_delivered", retention.outbox_delivered_days, outbox_payloads)
    journaled("inbox_acked", retention.inbox_acked_days, inbox_canonical)
    journaled("rejected_payloads", retention.rejected_payload_days, rejected)
    if retention.rejected_payload_days > 0:
        # The running total of kept rejected bytes is recounted after an age-based purge.
        enforce_rejected_retention(store, rejected_retention_bytes)
    journaled("journal_payloads", retention.journal_payload_days, journal_payloads)
    journaled("extracts", retention.extracts_days, extract_rows)
    journaled("audit_pseudonymised", retention.audit_pseudonymise_years * 365.25, audit_codes)
    journaled("eservice_requests", retention.eservice_requests_days, eservice_requests)
    # Not a removal: the queue statistics' checkpoint of rows per partner moves up to the
    # newest rows, so that ``queue stats`` keeps reading only what is recent.
    check()
    with store.db.transaction() as conn:
        checkpoint_in(conn)
    return done
