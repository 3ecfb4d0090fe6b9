"""The monthly e-service usage report to VRAA's public-service delivery records (T-13, KPI-07).

The job ``eservices.vraa`` (schedule ``schedules/eservices-usage-vraa.yaml``) builds the
month's ``eservice_usage_report`` from the usage counters (:func:`usage_message`) and sends it
down the same outbound route PLUS's messages take (:func:`submit_report`: the instance's
``runtime.routes.outbound``, as ``POST /v1/outbound/eservice_usage_report`` does): mapped,
validated against the XSD, signed, journaled and queued in the outbox in one transaction, then
delivered to VRAA with the delivery engine's retries and circuit breaker. VRAA being down
therefore never fails the job: the report waits in the outbox.

The Idempotency-Key is the period's and the report's hash
(``eservices-usage-vraa:2027-03:<16 hex>``): a rerun with the same figures (a retry, a second
instance, an operator's ``--force``) finds the message already accepted instead of sending a
second one, while changed figures (uses recorded late, then a forced rerun) go to VRAA as a new
report of the period, the latest being the one in force.

Errors are the route's: a report the contract refuses is permanent (``CANONICAL_INVALID``,
``XSD_INVALID``: a person must look), the store unavailable is retryable; missing job params
are a ConfigError.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gateway.errors import ConfigError
from gateway.jobs.context import JobContext
from gateway.store import Store

__all__ = ["MESSAGE_TYPE", "idempotency_key", "submit_report", "usage_message", "vraa_usage_job"]

MESSAGE_TYPE = "eservice_usage_report"


def usage_message(
    store: Store, month: str, *, provider: dict[str, str], service_codes: dict[str, str]
) -> dict[str, Any]:
    """The canonical ``eservice_usage_report`` of ``month`` (``YYYY-MM``) from the counters.

    ``provider``: ``registration_number`` and ``name`` of the institution providing the
    services; ``service_codes``: e-service -> its id in the public-service catalogue (every
    e-service with uses needs one). The gateway fills in message id and time when it accepts.
    """
    rows = store.usage.rows(month, month)
    missing = sorted({r.eservice for r in rows} - set(service_codes))
    if missing:
        raise ConfigError(
            f"no service code for e-service {missing[0]!r} (job params service_codes)"
        )
    return {
        "period": month,
        "provider": dict(provider),
        "usage": [
            {
                "eservice": r.eservice,
                "service_code": service_codes[r.eservice],
                "recipient_type": r.recipient_type,
                "outcome": r.outcome,
                "uses": r.uses,
            }
            for r in rows
        ],
        "total_uses": sum(r.uses for r in rows),
        "distinct_clients": store.usage.distinct_clients(month, month),
    }


def idempotency_key(canonical: dict[str, Any]) -> str:
    """The period and a hash of the report: the same figures are one message however often
    they are sent; changed figures (a forced rerun after a correction) are a new one."""
    digest = hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode("utf-8")
    ).hexdigest()
    return f"eservices-usage-vraa:{canonical['period']}:{digest[:16]}"


def submit_report(runtime: Any, canonical: dict[str, Any], *, user_id: str) -> dict[str, Any]:
    """Send ``canonical`` down the outbound route, as the local API does for PLUS.

    Returns ``{id, institution, created}``; ``created`` is False when the same report was
    accepted before (the earlier message's id is returned).
    """
    from gateway.pipeline.exchange import Exchange

    exchange = Exchange(
        direction="out",
        partner="",  # resolved by the route's address step: the institution receiving the type
        mapping=runtime.mappings.get(MESSAGE_TYPE),
        canonical=canonical,
        idempotency_key=idempotency_key(canonical),
        user_id=user_id[:64],
    )
    exchange = runtime.routes.outbound(exchange)
    institution = exchange.partner
    if not exchange.created:
        # An idempotent repeat stops before routing: the first message says where it went.
        row = runtime.store.outbox.get(exchange.message_id)
        institution = row["partner"] if row else institution
    return {"id": exchange.message_id, "institution": institution, "created": exchange.created}


def vraa_usage_job(ctx: JobContext) -> dict[str, Any]:
    """Report the period's month to VRAA (see the module docstring); idempotent per figures.

    Params (the schedule's ``params:``): ``provider`` {registration_number, name} and
    ``service_codes`` {e-service: catalogue id}.
    """
    params = ctx.params
    provider = params.get("provider")
    codes = params.get("service_codes")
    if not isinstance(provider, dict) or not isinstance(codes, dict):
        raise ConfigError("job params need provider and service_codes")
    month = ctx.period.key
    canonical = usage_message(ctx.store, month, provider=provider, service_codes=codes)
    ctx.check()
    accepted = submit_report(ctx.runtime, canonical, user_id=f"job:{ctx.spec.name}")
    return {
        "period": month,
        "message_id": accepted["id"],
        "institution": accepted["institution"],
        "new_message": accepted["created"],
        "rows": len(canonical["usage"]),
        "total_uses": canonical["total_uses"],
        "distinct_clients": canonical["distinct_clients"],
    }
