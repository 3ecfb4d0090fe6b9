"""A year of synthetic e-service usage, written through the real usage counters.

For demonstrations and for testing the reports on a realistic volume: uses spread over the
months (fewer in summer and at New Year), e-services and recipient types as the portal's
audiences would use them, most answered or accepted and a few refused or failed, clients drawn
from a pool of synthetic personal codes turned into keyed pseudonyms exactly as the e-service
flows do (:func:`gateway.eservices.usage.client_key`). The generator knows what it wrote and
returns it (:class:`SyntheticTotals`), so a test can check the reports against it.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.eservices.usage import client_key
from gateway.store import Store
from gateway.store.usage import SERVED, record_eservice_use

__all__ = ["SyntheticTotals", "synthesize_year"]

_RIGA = ZoneInfo("Europe/Riga")
#: Relative use per month: fewer in July, August and at New Year.
_MONTH_WEIGHTS = (0.8, 1.0, 1.1, 1.1, 1.0, 0.9, 0.7, 0.7, 1.1, 1.2, 1.1, 0.9)
#: (e-service, recipient type) -> share of the uses.
_MIX = {
    ("my_probation_data", "client"): 0.58,
    ("information_to_vpd", "client"): 0.22,
    ("probation_client_data", "employer"): 0.07,
    ("probation_client_data", "municipality"): 0.03,
    ("probation_client_data", "volunteer"): 0.02,
    ("employer_information", "employer"): 0.05,
    ("employer_information", "municipality"): 0.02,
    ("employer_information", "volunteer"): 0.01,
}
_ASKS = ("my_probation_data", "probation_client_data")  # answered; submissions are accepted
_BATCH = 500


@dataclass
class SyntheticTotals:
    """What the generator wrote: the figures the reports must show."""

    year: int
    uses: int = 0
    by_outcome: Counter[str] = field(default_factory=Counter)
    by_month: Counter[str] = field(default_factory=Counter)
    by_eservice: Counter[str] = field(default_factory=Counter)
    by_recipient_type: Counter[str] = field(default_factory=Counter)
    #: Clients an e-service served (answered or accepted) at least once in the year.
    distinct_clients: int = 0
    #: The pool the clients were drawn from: the year's active clients.
    active_clients: int = 0

    @property
    def served(self) -> int:
        """Uses answered or accepted."""
        return sum(self.by_outcome[o] for o in SERVED)


def _personal_code(rng: random.Random) -> str:
    # The post-2017 form (32xxxx-xxxxx) carries no birth date: nothing real can collide.
    return f"32{rng.randrange(10**4):04d}-{rng.randrange(10**5):05d}"


def synthesize_year(
    store: Store,
    year: int,
    *,
    key: bytes,
    uses: int = 12_000,
    active_clients: int = 17_500,
    seed: int = 2027,
) -> SyntheticTotals:
    """Write ``uses`` synthetic uses in ``year`` through :func:`record_eservice_use`.

    Clients come from a pool of ``active_clients`` synthetic people (their pseudonyms keyed
    with ``key``); the same ``seed`` writes the same year again. Returns what was written.
    """
    if uses < 0 or active_clients < 1:
        raise ValueError("uses must be >= 0 and active_clients >= 1")
    rng = random.Random(seed)
    pool: list[str] = []
    seen_codes: set[str] = set()
    while len(pool) < active_clients:
        code = _personal_code(rng)
        if code not in seen_codes:
            seen_codes.add(code)
            pool.append(client_key(key, code))
    # A few clients come back often, most once or twice (a skewed draw over the pool).
    weights = [1.0 / (1 + i % 50) for i in range(len(pool))]
    pairs, shares = zip(*_MIX.items(), strict=True)
    months = rng.choices(range(1, 13), weights=_MONTH_WEIGHTS, k=uses)
    totals = SyntheticTotals(year=year, active_clients=active_clients)
    served_clients: set[str] = set()
    pending: list[dict[str, object]] = []

    def flush() -> None:
        with store.db.transaction() as conn:
            for use in pending:
                record_eservice_use(conn, **use)  # type: ignore[arg-type]
        pending.clear()

    for month in months:
        eservice, recipient = rng.choices(pairs, weights=shares)[0]
        roll = rng.random()
        if roll < 0.04:
            outcome = "refused"
        elif roll < 0.06:
            outcome = "failed"
        else:
            outcome = "answered" if eservice in _ASKS else "accepted"
        who = rng.choices(pool, weights=weights)[0] if recipient == "client" else None
        start = datetime(year, month, 1, tzinfo=_RIGA)
        days = ((start + timedelta(days=32)).replace(day=1) - start).days
        at = (start + timedelta(seconds=rng.randrange(days * 86_400))).astimezone(UTC)
        pending.append(
            {
                "at": at,
                "eservice": eservice,
                "recipient_type": recipient,
                "outcome": outcome,
                "client_key": who,
            }
        )
        totals.uses += 1
        totals.by_outcome[outcome] += 1
        totals.by_month[f"{year}-{month:02d}"] += 1
        totals.by_eservice[eservice] += 1
        totals.by_recipient_type[recipient] += 1
        if who is not None and outcome in SERVED:
            served_clients.add(who)
        if len(pending) >= _BATCH:
            flush()
    if pending:
        flush()
    totals.distinct_clients = len(served_clients)
    return totals
