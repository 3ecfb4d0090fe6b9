"""Optional push of inbox messages to a PLUS webhook, with the outbox's guarantees.

Each message is POSTed as JSON (its id in the body and in ``Idempotency-Key``) in cursor order,
one at a time, until the webhook answers 2xx, which counts as PLUS's ack. Connection errors,
timeouts, 408, 429 and 5xx back off with the configured full-jitter schedule; other answers and
an exhausted schedule leave the message ``dead`` for push, and it holds later pushes until PLUS
acks it by pull (``POST /v1/inbox/{id}/ack``), which also works at any time.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import requests
import structlog

from gateway.delivery.backoff import next_attempt
from gateway.errors import (
    GatewayError,
    PartnerRejectedError,
    PartnerTimeoutError,
    PartnerUnavailableError,
)
from gateway.pipeline.steps import is_urgent
from gateway.store.schema import utcnow

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = ["InboxPusher", "push_body"]

log = structlog.get_logger(__name__)

_RETRY_STATUSES = {408, 425, 429}


def push_body(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON document pushed for one inbox row (the same shape as a pulled item)."""
    return {
        "id": row["message_id"],
        "cursor": row["id"],
        "institution": row["partner"],
        "operation": row["operation"],
        "message_type": row["message_type"],
        "partner_message_id": row["partner_message_id"],
        "received_at": row["received_at"].isoformat(),
        "message": json.loads(row["canonical"]),
    }


class InboxPusher:
    """Pushes due inbox messages; driven by the delivery worker's loop."""

    def __init__(self, runtime: Runtime, owner: str, session: requests.Session) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.push
        self.owner = owner
        self.session = session
        self.lease_seconds = runtime.settings.delivery.lease_seconds

    def run_once(self) -> int:
        """Push the due messages (at most one, the oldest); returns how many were tried."""
        rows = self.runtime.store.inbox.claim_push(self.owner, 1, self.lease_seconds)
        for row in rows:
            self.push(row)
        return len(rows)

    def _observe_age(self, row: dict[str, Any]) -> None:
        mappings = self.runtime.mappings
        mapping = mappings.get(row["message_type"]) if row["message_type"] in mappings else None
        urgent = bool(mapping and is_urgent(mapping, json.loads(row["canonical"])))
        age = (utcnow() - row["received_at"]).total_seconds()
        self.runtime.metrics.push_age.labels(row["message_type"], str(urgent).lower()).observe(age)

    def push(self, row: dict[str, Any]) -> None:
        """POST one message and record the outcome."""
        url = self.settings.url
        assert url is not None
        store = self.runtime.store
        mid = row["message_id"]
        error: GatewayError
        try:
            response = self.session.post(
                url,
                json=push_body(row),
                headers={"Idempotency-Key": row["message_id"], "X-Message-Id": row["message_id"]},
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
            )
        except requests.Timeout as exc:
            error = PartnerTimeoutError(
                "PLUS webhook did not answer in time",
                partner="plus",
                operation="push",
                message_id=mid,
            )
            error.__cause__ = exc
        except requests.RequestException as exc:
            error = PartnerUnavailableError(
                f"PLUS webhook unreachable: {type(exc).__name__}",
                partner="plus",
                operation="push",
                message_id=mid,
            )
            error.__cause__ = exc
        else:
            code = response.status_code
            if 200 <= code < 300:
                store.inbox.mark_pushed(row, self.owner, f"HTTP {code}")
                self.runtime.metrics.pushes.labels("delivered").inc()
                self._observe_age(row)
                return
            if code >= 500 or code in _RETRY_STATUSES:
                error = PartnerUnavailableError(
                    f"PLUS webhook answered HTTP {code}",
                    partner="plus",
                    operation="push",
                    message_id=mid,
                )
            else:
                error = PartnerRejectedError(
                    f"PLUS webhook answered HTTP {code}",
                    partner="plus",
                    operation="push",
                    message_id=mid,
                )
        when = next_attempt(
            error,
            attempts_done=row["push_attempts"] + 1,
            created_at=row["received_at"],
            now=utcnow(),
            policy=self.settings.retry,
        )
        store.inbox.mark_push_failed(
            row, owner=self.owner, code=error.code, error=error.message, next_at=when
        )
        outcome = "retry" if when else "dead"
        self.runtime.metrics.pushes.labels(outcome).inc()
        log.warning("push failed", message_id=row["message_id"], code=error.code, outcome=outcome)
