"""Giving back every lease one worker holds, outbox and push alike (graceful stop).

A stopping gateway must not leave rows leased to itself: another instance (or this one after a
restart) would wait for the lease to run out before sending them. A row given back may have
been sent already (the process is stopping mid-send); it is sent again with the same message
id, which the partner drops as a duplicate, as after any crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.store.schema import utcnow

if TYPE_CHECKING:
    from gateway.store import Store

__all__ = ["Released", "release_leases"]


@dataclass(frozen=True)
class Released:
    """How many leases were given back."""

    outbox: int
    push: int


def release_leases(store: Store, owner: str) -> Released:
    """Return every outbox and push row leased to ``owner`` to the queue, due now."""
    now = utcnow()
    with store.db.transaction() as conn:
        sent = store.outbox.release_leases_in(conn, owner, now)
        pushed = store.inbox.release_push_leases_in(conn, owner, now)
    return Released(outbox=sent, push=pushed)
