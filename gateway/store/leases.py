"""Giving back every lease one worker holds, outbox and push alike (graceful stop).

A stopping gateway must not leave rows leased to itself: another instance (or this one after a
restart) would wait for the lease to run out before sending them. A row given back may have
been sent already (the process is stopping mid-send); it is sent again with the same message
id, which the partner drops as a duplicate, as after any crash.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update

from gateway.store.repository import Store
from gateway.store.schema import inbox, outbox, utcnow

__all__ = ["Released", "release_leases"]


@dataclass(frozen=True)
class Released:
    """How many leases were given back."""

    outbox: int
    push: int


def release_leases(store: Store, owner: str) -> Released:
    """Return every outbox and push row leased to ``owner`` to the queue, due now."""
    now = utcnow()
    with store.transaction() as conn:
        sent = conn.execute(
            update(outbox)
            .where(outbox.c.lease_owner == owner, outbox.c.status == "sending")
            .values(status="pending", lease_owner=None, lease_until=None, updated_at=now)
        ).rowcount
        pushed = conn.execute(
            update(inbox)
            .where(inbox.c.push_lease_owner == owner, inbox.c.push_status == "sending")
            .values(
                push_status="pending",
                push_next_at=now,
                push_lease_owner=None,
                push_lease_until=None,
            )
        ).rowcount
    return Released(outbox=int(sent), push=int(pushed))
