"""Group commit of deliveries: the outcomes of many sending threads in one transaction.

On SQLite every commit is an fsync of the WAL (``synchronous=FULL``), and writers take turns,
so one transaction per delivered message caps a concurrent drain at the disk's fsync rate.
Here the first thread to arrive commits everything queued so far in one transaction while
the others wait; those arriving during that commit go together in the next one. Each thread
returns only once its own row is committed, so nothing is reported delivered before it is
durable, and a failed commit fails every row in it (their leases run out and they are sent
again with the same message id, as after a crash).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.store import Store

__all__ = ["DeliveryRecorder"]


@dataclass
class _Item:
    row: dict[str, Any]
    ack: dict[str, Any]
    done: bool = False
    result: bool = False
    error: BaseException | None = None


class DeliveryRecorder:
    """Leader/follower group commit of ``Outbox.mark_delivered_many`` for one lease owner."""

    def __init__(self, store: Store, owner: str) -> None:
        self._store = store
        self._owner = owner
        self._cond = threading.Condition()
        self._queue: list[_Item] = []
        self._committing = False
        #: Transactions and rows recorded (for the benchmark's figures).
        self.commits = 0
        self.rows = 0

    def delivered(self, row: dict[str, Any], ack: dict[str, Any]) -> bool:
        """Record ``row`` as delivered with ``ack``; False if our lease was lost meanwhile."""
        item = _Item(row, ack)
        with self._cond:
            self._queue.append(item)
            while not item.done and self._committing:
                self._cond.wait()
            if item.done:
                return self._outcome(item)
            # Nobody is committing: lead, taking every row queued so far (ours included).
            self._committing = True
            batch, self._queue = self._queue, []
        try:
            results = self._store.outbox.mark_delivered_many(
                [(i.row, i.ack) for i in batch], self._owner
            )
            for i, result in zip(batch, results, strict=True):
                i.result = result
        except BaseException as exc:
            for i in batch:
                i.error = exc
        finally:
            with self._cond:
                for i in batch:
                    i.done = True
                self.commits += 1
                self.rows += len(batch)
                self._committing = False
                self._cond.notify_all()
        return self._outcome(item)

    @staticmethod
    def _outcome(item: _Item) -> bool:
        if item.error is not None:
            raise item.error
        return item.result
