"""A simulated poll-only institution's side of PollMessages / AcknowledgePolledMessages.

A :class:`PollQueue` holds the messages the institution has for the gateway, each a whole SOAP
envelope exactly as it would have pushed it. A poll returns the oldest ones without removing
them; an acknowledgement removes the items it lists, and remembers what the gateway said of
each (ACCEPTED with its reference, DUPLICATE, REFUSED with the code). ``fail_acks`` makes the
next acknowledgements fail (a Server fault), for tests of a failure half-way.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from gateway.channels.polling import PollItem
from gateway.sim.records import now

__all__ = ["Held", "PollQueue"]


@dataclass
class Held:
    """One message waiting to be polled."""

    message_id: str
    message_type: str
    envelope: bytes
    held_at: str
    #: How many poll answers carried it so far.
    offered: int = 0


class PollQueue:
    """Thread-safe pending messages and acknowledgement outcomes of one institution."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, Held] = {}
        self._outcomes: list[dict[str, Any]] = []
        self._polls = 0
        self._fail_acks = 0

    def hold(self, message_id: str, message_type: str, envelope: bytes) -> None:
        """Keep ``envelope`` for the gateway's next poll (a MessageId held twice: replaced)."""
        with self._lock:
            self._pending[message_id] = Held(message_id, message_type, envelope, now())

    def take(self, max_messages: int) -> tuple[list[Held], bool]:
        """The oldest ``max_messages`` pending (not removed), and whether more wait."""
        with self._lock:
            self._polls += 1
            batch = list(self._pending.values())[:max_messages]
            for held in batch:
                held.offered += 1
            return batch, len(self._pending) > len(batch)

    def acknowledge(self, items: list[PollItem]) -> bool:
        """Remove what the gateway took; False when told to fail this acknowledgement."""
        with self._lock:
            if self._fail_acks > 0:
                self._fail_acks -= 1
                return False
            for item in items:
                if self._pending.pop(item.message_id, None) is None:
                    continue  # acknowledged twice (a retry after a lost answer): once is enough
                self._outcomes.append({**asdict(item), "at": now()})
            return True

    def fail_next_acks(self, count: int) -> None:
        """The next ``count`` acknowledgements answer with a Server fault."""
        with self._lock:
            self._fail_acks = count

    def snapshot(self) -> dict[str, Any]:
        """Pending ids, outcomes by message, and how many polls were answered."""
        with self._lock:
            return {
                "pending": [
                    {
                        "message_id": h.message_id,
                        "message_type": h.message_type,
                        "offered": h.offered,
                    }
                    for h in self._pending.values()
                ],
                "outcomes": list(self._outcomes),
                "polls": self._polls,
            }

    def reset(self) -> None:
        """Forget everything."""
        with self._lock:
            self._pending.clear()
            self._outcomes.clear()
            self._polls = 0
            self._fail_acks = 0
