"""What a simulated institution received, answered and sent, in memory, in arrival order.

Duplicates (the same ``MessageId`` again: at-least-once delivery) are counted, not recorded
twice. A global sequence number lets the platform merge several institutions' records back
into arrival order.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Received", "Records"]

# One counter for every institution in the process: the platform's merged view sorts by it.
_SEQUENCE = itertools.count(1)


def now() -> str:
    """The current time as the contract writes it (UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Received:
    """One message the simulated institution accepted."""

    institution: str
    message_id: str
    operation: str
    message_type: str
    received_at: str
    #: The userId header: on whose behalf the gateway sent it.
    user_id: str
    canonical: dict[str, Any]
    deliveries: int = 1
    seq: int = field(default_factory=lambda: next(_SEQUENCE))


@dataclass
class _State:
    received: dict[str, Received] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)


class Records:
    """Thread-safe records of one institution."""

    def __init__(self, institution: str) -> None:
        self.institution = institution
        self._lock = threading.Lock()
        self._state = _State()

    def accept(
        self,
        *,
        message_id: str,
        operation: str,
        message_type: str,
        user_id: str,
        canonical: dict[str, Any],
    ) -> str:
        """Record a message; ``ACCEPTED`` the first time, ``DUPLICATE`` (counted) after."""
        with self._lock:
            seen = self._state.received.get(message_id)
            if seen is not None:
                seen.deliveries += 1
                self._state.duplicates += 1
                return "DUPLICATE"
            self._state.received[message_id] = Received(
                institution=self.institution,
                message_id=message_id,
                operation=operation,
                message_type=message_type,
                received_at=now(),
                user_id=user_id,
                canonical=canonical,
            )
            self._state.order.append(message_id)
            return "ACCEPTED"

    def reject(self, code: str, message: str) -> None:
        """Remember a refused request (its error code and text, which carry no personal data)."""
        with self._lock:
            self._state.rejected.append(
                {"institution": self.institution, "code": code, "message": message, "at": now()}
            )

    def answered(self, entry: dict[str, Any]) -> None:
        """Remember an answered query (ids, query name, result)."""
        with self._lock:
            self._state.queries.append({"institution": self.institution, **entry})

    def sent(self, entry: dict[str, Any]) -> None:
        """Remember a message this institution sent to the gateway."""
        with self._lock:
            self._state.sent.append({"institution": self.institution, **entry})

    def received(self) -> list[Received]:
        """Accepted messages in arrival order."""
        with self._lock:
            return [self._state.received[i] for i in self._state.order]

    def sent_messages(self) -> list[dict[str, Any]]:
        """Messages sent to the gateway, oldest first."""
        with self._lock:
            return list(self._state.sent)

    def reset(self) -> None:
        """Forget everything."""
        with self._lock:
            self._state = _State()

    def snapshot(self) -> dict[str, Any]:
        """Everything recorded, JSON-ready, with the duplicate count."""
        with self._lock:
            return {
                "institution": self.institution,
                "received": [asdict(self._state.received[i]) for i in self._state.order],
                "duplicates": self._state.duplicates,
                "rejected": list(self._state.rejected),
                "queries": list(self._state.queries),
                "sent": list(self._state.sent),
            }
