"""What the delivery worker needs from a partner that is not reached by a SOAP client."""

from __future__ import annotations

from typing import Any, Protocol

from gateway.config import RetrySettings

__all__ = ["OutboxTransport"]


class OutboxTransport(Protocol):
    """Delivers one claimed outbox row (the calendar's CalDAV answers, for one)."""

    #: Backoff of this partner's rows.
    retry: RetrySettings
    #: (connect, operation) seconds: a claim is sent only if its lease outlasts them.
    timeouts: tuple[float, float]

    def deliver(self, row: dict[str, Any]) -> dict[str, Any]:
        """Send ``row``; the returned dict is recorded as the acknowledgement.

        Raises a :class:`~gateway.errors.GatewayError`: retryable ones are retried with
        backoff, permanent ones dead-lettered.
        """
        ...
