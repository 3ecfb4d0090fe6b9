"""Ten years of growth: fill a store with a decade of realistic history, then time what users do.

Run from the project root::

    .venv/bin/python -m bench.growth run --scale 0.1                 # SQLite in a temp dir
    .venv/bin/python -m bench.growth run --scale 1.0 --postgres postgresql+psycopg://...
    .venv/bin/python -m bench.growth generate --url sqlite:///var/growth.db --scale 0.1
    .venv/bin/python -m bench.growth measure --url sqlite:///var/growth.db

``generate`` migrates the store at ``--url`` and writes ten years ending now through bulk
inserts shaped like the rows the gateway writes (gateway/store/schema.py and the migrations):
at ``--scale 1.0`` about 560,000 outbound and 640,000 inbound messages (1.2 M), each with its
outbox or inbox row, idempotency key and journal entries (4.1 M in all: accepted, pushed and
acknowledged inbound; accepted, retries and delivered outbound, where 15 % of outbound messages
are caught in partner outages and retried 8-16 times), a hash chain the real ``journal verify``
accepts, 1.4 M registry audit rows (350,000 profile fan-outs of four), and volunteer-facade
postings through the facade's own store area. Retention is applied as the nightly job leaves it
(config.yaml: payloads of delivered messages emptied after 90 days, acknowledged inbox JSON
after 90, journal payloads after 365, audit personal codes pseudonymised after 5 years). Also
the e-service usage area's counters and distinct clients per month (18,000 uses a year).

``measure`` times, on the store at ``--url``: a message status lookup, the inbox page PLUS
pulls, the audit query by person, ``queue stats``, ``journal verify`` (full, and incremental
from a checkpoint one working day back), one nightly retention run and the database size.
``run`` does both on a temp SQLite file and, with ``--postgres``, in a fresh PostgreSQL
database it creates and drops afterwards.
Results go to ``bench/results/growth.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, text, update

from bench.common import RESULTS, machine, quiet_logging
from gateway.store import Store, create_store_engine, migrate
from gateway.store.chain import GENESIS, entry_hash, sha256_hex
from gateway.store.queue_stats import checkpoint_in
from gateway.store.queue_stats import stats as queue_stats
from gateway.store.schema import (
    idempotency_keys,
    inbox,
    journal,
    journal_chain,
    outbox,
    registry_queries,
)

__all__ = ["GrowthPlan", "generate", "main", "measure"]

YEARS = 10
#: At --scale 1.0 (REQUIREMENTS.md 3.2 and the issue: ~1.2 M messages, ~1.4 M audit rows).
OUTBOUND = 560_000
INBOUND = 640_000
PROFILES = 350_000
POSTINGS_PER_YEAR = 2_000
#: Retention as config.yaml sets it (days), applied up to "now" as the nightly job leaves it.
OUTBOX_DELIVERED_DAYS = 90
INBOX_ACKED_DAYS = 90
JOURNAL_PAYLOAD_DAYS = 365
AUDIT_PSEUDONYMISE_DAYS = 5 * 365.25

_OUT_TYPES = [
    ("execution_notification", "SubmitExecutionNotification", ("tis", "prois"), 0.45),
    ("evaluation_report", "SubmitEvaluationReport", ("tis", "prois", "ievp"), 0.30),
    ("evaluation_report_supplement", "SubmitEvaluationReportSupplement", ("tis", "ievp"), 0.05),
    ("mediation_result", "SubmitMediationResult", ("prois",), 0.10),
    ("monitoring_order", "SubmitMonitoringOrder", ("em",), 0.10),
]
_IN_TYPES = [
    ("court_ruling", "SubmitCourtRuling", ("tis",), 0.30),
    ("penal_order", "SubmitPenalOrder", ("prois",), 0.10),
    ("evaluation_report_request", "SubmitEvaluationReportRequest", ("tis", "prois", "ievp"), 0.25),
    ("mediation_proposal", "SubmitMediationProposal", ("tis",), 0.04),
    ("mediation_request", "SubmitMediationRequest", ("prois",), 0.04),
    ("conditional_release", "SubmitConditionalRelease", ("prois",), 0.04),
    ("prison_release", "SubmitPrisonRelease", ("ievp",), 0.05),
    ("monitoring_event", "SubmitMonitoringEvent", ("em",), 0.18),
]
_REGISTRIES = ("viis", "iis", "vid", "rd")
_PURPOSES = (
    "Izvērtēšanas ziņojuma sagatavošana",
    "Uzraudzības plāna sagatavošana",
    "Piespiedu darba izpildes organizēšana",
)


def _payload_template() -> bytes:
    """A signed message of realistic size (the outbound sample, about 3-4 KB)."""
    root = Path(__file__).resolve().parent.parent / "tests" / "samples"
    for candidate in ("court_ruling/valid.xml", "evaluation_report/valid.xml"):
        path = root / candidate
        if path.exists():
            body = path.read_bytes()
            break
    else:
        body = b"<m>" + b"x" * 3000 + b"</m>"
    # Signature-sized tail: a signed payload carries SignedInfo, a value and a certificate.
    return body + b"<!--" + b"S" * 2400 + b"-->"


@dataclass
class GrowthPlan:
    """How much history to write, ending ``end``."""

    scale: float = 1.0
    end: datetime = field(default_factory=lambda: datetime.now(UTC))
    seed: int = 2026
    batch: int = 20_000

    @property
    def start(self) -> datetime:
        """Ten years before ``end``."""
        return self.end - timedelta(days=round(YEARS * 365.25))

    def working_days(self) -> list[date]:
        """Monday to Friday between start and end (holidays ignored)."""
        days, day = [], self.start.date() + timedelta(days=1)
        while day < self.end.date():
            if day.weekday() < 5:
                days.append(day)
            day += timedelta(days=1)
        return days


class _Writer:
    """Buffers rows per table and writes them in bulk inserts of ``batch`` rows."""

    def __init__(self, engine: Engine, batch: int) -> None:
        self.engine = engine
        self.batch = batch
        self.rows: dict[Any, list[dict[str, Any]]] = {}
        self.counts: dict[str, int] = {}

    def add(self, table: Any, row: dict[str, Any]) -> None:
        rows = self.rows.setdefault(table, [])
        rows.append(row)
        if len(rows) >= self.batch:
            self.flush(table)

    def flush(self, table: Any = None) -> None:
        tables = [table] if table is not None else list(self.rows)
        with self.engine.begin() as conn:
            for t in tables:
                rows = self.rows.get(t)
                if rows:
                    conn.execute(insert(t), rows)
                    self.counts[t.name] = self.counts.get(t.name, 0) + len(rows)
                    self.rows[t] = []


class _Chain:
    """Assigns journal ids and hashes in order, exactly as ``Journal.append_in`` does."""

    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        self.last_id = 0
        self.last_hash = GENESIS

    def append(self, **values: Any) -> None:
        payload = values.get("payload")
        if payload is not None and "payload_sha256" not in values:
            values["payload_sha256"] = sha256_hex(payload)
        for name in (
            "operation",
            "message_type",
            "message_id",
            "partner_message_id",
            "correlation_id",
            "error_code",
            "detail",
            "actor",
            "payload_sha256",
            "payload",
            "received_size",
            "received_sha256",
        ):
            values.setdefault(name, None)
        self.last_id += 1
        values["id"] = self.last_id
        values["prev_hash"] = self.last_hash
        values["entry_hash"] = self.last_hash = entry_hash(values)
        self.writer.add(journal, values)


def _pick(rng: random.Random, table: list[tuple[str, str, tuple[str, ...], float]]) -> Any:
    r, acc = rng.random(), 0.0
    for item in table:
        acc += item[3]
        if r <= acc:
            return item
    return table[-1]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _personal_code(rng: random.Random) -> str:
    # Shaped like a code (DDMMYY-NNNNN); never a real person's (no checksum needed here).
    day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(50, 99)
    return f"{day:02d}{month:02d}{year:02d}-1{rng.randint(0, 9999):04d}"


def _spread(total: int, days: int) -> Iterator[int]:
    """``total`` items over ``days``, as evenly as whole numbers allow."""
    done = 0
    for i in range(1, days + 1):
        upto = round(total * i / days)
        yield upto - done
        done = upto


def generate(
    engine: Engine,
    plan: GrowthPlan,
    *,
    progress: bool = True,
    after_first_year: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Write ten years of history into the (migrated, empty) store of ``engine``.

    ``after_first_year`` is called once the first year is written and committed (with the
    chain head in place), so the same run can measure the store at one year as its peer.
    """
    rng = random.Random(plan.seed)
    writer = _Writer(engine, plan.batch)
    chain = _Chain(writer)
    template = _payload_template()
    end = plan.end
    days = plan.working_days()
    outbound = _spread(round(OUTBOUND * plan.scale), len(days))
    inbound_n = _spread(round(INBOUND * plan.scale), len(days))
    profiles = _spread(round(PROFILES * plan.scale), len(days))
    keep_outbox = end - timedelta(days=OUTBOX_DELIVERED_DAYS)
    keep_inbox = end - timedelta(days=INBOX_ACKED_DAYS)
    keep_journal = end - timedelta(days=JOURNAL_PAYLOAD_DAYS)
    pseudonymise = end - timedelta(days=AUDIT_PSEUDONYMISE_DAYS)
    # About 17,500 clients a year, each case a few years long; persons asked about repeatedly.
    clients_per_year = max(50, round(17_500 * plan.scale))
    persons = [_personal_code(rng) for _ in range(clients_per_year * YEARS)]
    cases = [f"VPD-{2016 + i // clients_per_year}-{i:06d}" for i in range(len(persons))]
    began = time.perf_counter()
    audit_id = 0
    for index, (day, n_out, n_in, n_prof) in enumerate(
        zip(days, outbound, inbound_n, profiles, strict=True)
    ):
        year = index * YEARS // len(days)
        window = range(year * clients_per_year, (year + 1) * clients_per_year)
        base = datetime(day.year, day.month, day.day, 6, 0, tzinfo=UTC)  # 08:00 in Riga
        events: list[tuple[datetime, int, dict[str, Any]]] = []
        seq = 0

        # -- inbound: accepted (journal + inbox), pushed to PLUS's webhook, acknowledged
        for _ in range(n_in):
            mtype, op, partners, _w = _pick(rng, _IN_TYPES)
            partner = rng.choice(partners)
            received = base + timedelta(seconds=rng.uniform(0, 9 * 3600))
            pushed = received + timedelta(seconds=rng.uniform(0.05, 2))
            acked = pushed + timedelta(seconds=rng.uniform(1, 600))
            message_id, pmid = _uuid(rng), _uuid(rng)
            case = cases[rng.choice(window)]
            payload = template.replace(b"<!--", f"<!--{message_id}".encode(), 1)
            digest = sha256_hex(payload)
            is_acked = acked < end
            canonical = (
                "{}"
                if is_acked and acked < keep_inbox
                else json.dumps({"case_id": case, "message_type": mtype, "text": "x" * 900})
            )
            writer.add(
                inbox,
                {
                    "message_id": message_id,
                    "partner": partner,
                    "operation": op,
                    "message_type": mtype,
                    "partner_message_id": pmid,
                    "correlation_id": case,
                    "received_at": received,
                    "canonical": canonical,
                    "acked_at": acked if is_acked else None,
                    "push_status": "delivered",
                    "push_attempts": 1,
                    "push_next_at": None,
                    "push_lease_owner": None,
                    "push_lease_until": None,
                    "push_last_error": None,
                    "pushed_at": pushed,
                },
            )
            about = {
                "partner": partner,
                "operation": op,
                "message_type": mtype,
                "message_id": message_id,
                "correlation_id": case,
            }
            events.append(
                (
                    received,
                    (seq := seq + 1),
                    dict(
                        **about,
                        at=received,
                        direction="in",
                        partner_message_id=pmid,
                        status="accepted",
                        payload=payload if received >= keep_journal else None,
                        payload_sha256=digest,
                    ),
                )
            )
            events.append(
                (
                    pushed,
                    (seq := seq + 1),
                    dict(
                        **about,
                        at=pushed,
                        direction="local",
                        status="pushed",
                        actor="plus-webhook",
                        detail="HTTP 200",
                    ),
                )
            )
            if is_acked:
                events.append(
                    (
                        acked,
                        (seq := seq + 1),
                        dict(**about, at=acked, direction="local", status="acked", actor="plus"),
                    )
                )

        # -- outbound: accepted (journal + outbox + idempotency key), retries, delivered
        for _ in range(n_out):
            mtype, op, partners, _w = _pick(rng, _OUT_TYPES)
            partner = rng.choice(partners)
            created = base + timedelta(seconds=rng.uniform(0, 9 * 3600))
            message_id = _uuid(rng)
            case = cases[rng.choice(window)]
            payload = template.replace(b"<!--", f"<!--{message_id}".encode(), 1)
            digest = sha256_hex(payload)
            r = rng.random()
            retries = rng.randint(8, 16) if r < 0.15 else (1 if r < 0.20 else 0)
            retry_times = []
            t = created
            for attempt in range(retries):
                t = t + timedelta(seconds=min(3600, 2 ** (attempt + 1)) + rng.uniform(0, 5))
                retry_times.append(t)
            delivered = t + timedelta(seconds=rng.uniform(0.05, 1.5))
            is_delivered = delivered < end
            ack = json.dumps({"status": "accepted", "partner_message_id": _uuid(rng)})
            writer.add(
                idempotency_keys,
                {
                    "key": f"plus-{message_id}",
                    "message_type": mtype,
                    "request_sha256": hashlib.sha256(message_id.encode()).hexdigest(),
                    "message_id": message_id,
                    "created_at": created,
                },
            )
            writer.add(
                outbox,
                {
                    "message_id": message_id,
                    "partner": partner,
                    "operation": op,
                    "message_type": mtype,
                    "ordering_key": case,
                    "correlation_id": case,
                    "payload": b"" if is_delivered and delivered < keep_outbox else payload,
                    "payload_sha256": digest,
                    "status": "delivered" if is_delivered else "pending",
                    "attempts": retries + (1 if is_delivered else 0),
                    "next_attempt_at": delivered if not is_delivered else created,
                    "lease_owner": None,
                    "lease_until": None,
                    "last_error_code": None,
                    "last_error": None,
                    "ack": ack if is_delivered else None,
                    "created_at": created,
                    "updated_at": delivered if is_delivered else created,
                    "delivered_at": delivered if is_delivered else None,
                    "replayed_at": None,
                    "user_id": f"officer-{rng.randint(1, 400)}",
                },
            )
            about = {
                "partner": partner,
                "operation": op,
                "message_type": mtype,
                "message_id": message_id,
                "correlation_id": case,
            }
            events.append(
                (
                    created,
                    (seq := seq + 1),
                    dict(
                        **about,
                        at=created,
                        direction="out",
                        status="accepted",
                        payload=payload if created >= keep_journal else None,
                        payload_sha256=digest,
                    ),
                )
            )
            for rt in retry_times:
                if rt < end:
                    events.append(
                        (
                            rt,
                            (seq := seq + 1),
                            dict(
                                **about,
                                at=rt,
                                direction="out",
                                status="retry",
                                error_code="PARTNER_UNAVAILABLE",
                                detail=f"{about['partner']} unreachable: ConnectionError",
                            ),
                        )
                    )
            if is_delivered:
                events.append(
                    (
                        delivered,
                        (seq := seq + 1),
                        dict(
                            **about, at=delivered, direction="out", status="delivered", detail=ack
                        ),
                    )
                )

        # -- registry profiles: four audit rows each (no journal entries: the audit is its own)
        for _ in range(n_prof):
            when = base + timedelta(seconds=rng.uniform(0, 9 * 3600))
            i = rng.choice(window)
            code = persons[i]
            if when < pseudonymise:
                code = "P:" + hashlib.sha256(code.encode()).hexdigest()[:14]
            officer = f"officer-{rng.randint(1, 400)}"
            purpose = rng.choice(_PURPOSES)
            for registry in _REGISTRIES:
                audit_id += 1
                found = rng.random() < 0.8
                writer.add(
                    registry_queries,
                    {
                        "at": when,
                        "registry": registry,
                        "officer_id": officer,
                        "purpose": purpose,
                        "case_id": cases[i],
                        "personal_code": code,
                        "query_id": f"PLUS-{uuid.UUID(int=rng.getrandbits(128)).hex}",
                        "response_id": f"{registry.upper()}-{audit_id}",
                        "status": "ok" if found else "not_found",
                        "error_code": None,
                        "answer_sha256": hashlib.sha256(str(audit_id).encode()).hexdigest(),
                        "cached": False,
                        "duration_ms": rng.randint(40, 400),
                    },
                )

        # -- the nightly retention run's own entries (as gateway/store/retention.py writes)
        night = datetime(day.year, day.month, day.day, 1, 30, tzinfo=UTC)
        for name in ("outbox_delivered", "inbox_acked", "journal_payloads"):
            events.append(
                (
                    night,
                    (seq := seq + 1),
                    dict(
                        at=night,
                        direction="local",
                        partner="gateway",
                        operation="retention",
                        status="retention_applied",
                        actor="job:retention",
                        detail=f"{name}: some before {(night - timedelta(days=90)).isoformat()}",
                    ),
                )
            )
        for _when, _seq, values in sorted(events, key=lambda e: (e[0], e[1])):
            chain.append(**values)
        if after_first_year is not None and index + 1 == len(days) // YEARS:
            writer.flush()
            with engine.begin() as conn:
                conn.execute(
                    update(journal_chain)
                    .where(journal_chain.c.id == 1)
                    .values(last_id=chain.last_id, last_hash=chain.last_hash)
                )
            _analyze(engine)
            paused = time.perf_counter()
            after_first_year()
            began += time.perf_counter() - paused  # generation time excludes the measuring
        if progress and index % 250 == 0:
            print(
                f"  {day} journal {chain.last_id:,} entries, {time.perf_counter() - began:.0f} s",
                flush=True,
            )
    writer.flush()
    with engine.begin() as conn:
        conn.execute(
            update(journal_chain)
            .where(journal_chain.c.id == 1)
            .values(last_id=chain.last_id, last_hash=chain.last_hash)
        )
    with engine.begin() as conn:  # as last night's retention run left it
        checkpoint_in(conn)
    facade = _facade_rows(engine, plan, rng)
    facade.update(_eservice_rows(engine, plan, rng))
    seconds = time.perf_counter() - began
    _analyze(engine)
    return {
        "scale": plan.scale,
        "rows": {**writer.counts, **facade},
        "journal_head": chain.last_id,
        "seconds": round(seconds, 1),
    }


def _facade_rows(engine: Engine, plan: GrowthPlan, rng: random.Random) -> dict[str, int]:
    """Ten years of volunteer postings through the facade's store area, then aged in bulk."""
    from gateway.store.facade import FacadeStore
    from gateway.store.facade.tables import opportunities

    facade = FacadeStore(Store(engine).db)
    total = max(50, round(POSTINGS_PER_YEAR * YEARS * plan.scale))
    organisations = max(5, total // 200)
    now = plan.end
    for n in range(organisations):
        number = f"4{n:010d}"
        facade.listings.create_organisation(
            number,
            {
                "registration_number": number,
                "name": f"Biedrība {n}",
                "type": "association",
                "field": "social",
                "contacts": {"email": f"org{n}@example.lv"},
            },
        )
        items = []
        for i in range(total // organisations):
            starts = now + timedelta(days=rng.randint(20, 200))
            items.append(
                {
                    "external_ref": f"g-{i}",
                    "title": f"{rng.choice(['Talka', 'Nometne', 'Koncerts', 'Mentors'])} {n}-{i}",
                    "place": {"city": "Rīga", "municipality": "Rīga", "digital": False},
                    "starts_at": starts,
                    "ends_at": starts + timedelta(hours=4),
                    "expected_hours": 4.0,
                    "duties": "Palīdzēt organizatoriem un dalībniekiem. " * 3,
                    "deadline": now + timedelta(days=rng.randint(1, 19)),
                    "desired_profile": "Atsaucība",
                    "skills": ["komunikācija"],
                    "volunteers_needed": rng.randint(1, 10),
                    "benefits": "Pusdienas",
                    "kind": "one_off",
                }
            )
        facade.listings.import_many(number, items)
    # Age all but the last few weeks' postings into the past ten years, archived as the
    # archiving job leaves them.
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(select(opportunities.c.id).order_by(opportunities.c.id))]
        keep = max(1, len(ids) // (YEARS * 26))
        old = ids[:-keep]
        span = (plan.end - plan.start).total_seconds()
        for start in range(0, len(old), 5000):
            chunk = old[start : start + 5000]
            params = []
            for j, oid in enumerate(chunk, start):
                created = plan.start + timedelta(seconds=span * j / max(1, len(old)))
                params.append(
                    {"oid": oid, "created": created, "deadline": created + timedelta(days=14)}
                )
            for p in params:
                conn.execute(
                    update(opportunities)
                    .where(opportunities.c.id == p["oid"])
                    .values(
                        created_at=p["created"],
                        updated_at=p["deadline"],
                        deadline=p["deadline"],
                        starts_at=p["deadline"] + timedelta(days=3),
                        ends_at=p["deadline"] + timedelta(days=3, hours=4),
                        status="archived",
                        archived_at=p["deadline"],
                    )
                )
    return {"vol_opportunities": len(ids), "vol_organisations": organisations}


def _eservice_rows(engine: Engine, plan: GrowthPlan, rng: random.Random) -> dict[str, int]:
    """The e-service usage area's rows as ten years of ``record_eservice_use`` leave them.

    18,000 uses a year (the target, REQUIREMENTS.md 3.2) spread over the e-services, recipient
    types and outcomes per month; about 6,145 distinct clients a year (35 % of 17,500), each
    month's active ones keyed by pseudonym.
    """
    try:
        from gateway.store.usage import (
            ESERVICES,
            OUTCOMES,
            RECIPIENT_TYPES,
            eservice_usage,
            eservice_usage_clients,
        )
    except ImportError:  # a store without the e-service area
        return {}
    counters: list[dict[str, Any]] = []
    clients: list[dict[str, Any]] = []
    month = plan.start.replace(day=1)
    users = [hashlib.sha256(f"client-{i}".encode()).hexdigest() for i in range(61_450)]
    while month < plan.end:
        key = month.strftime("%Y-%m")
        for eservice in ESERVICES:
            for recipient in RECIPIENT_TYPES:
                for outcome in OUTCOMES:
                    uses = round(18_000 * plan.scale / 12 / 32 * rng.uniform(0.2, 1.8))
                    if uses:
                        counters.append(
                            {
                                "month": key,
                                "eservice": eservice,
                                "recipient_type": recipient,
                                "outcome": outcome,
                                "uses": uses,
                            }
                        )
        year = (month.year - plan.start.year) % YEARS
        active = rng.sample(
            users[year * 6_145 : (year + 1) * 6_145], max(1, round(1_500 * plan.scale))
        )
        clients.extend({"month": key, "client_key": k} for k in active)
        month = (month + timedelta(days=32)).replace(day=1)
    with engine.begin() as conn:
        if counters:
            conn.execute(insert(eservice_usage), counters)
        for start in range(0, len(clients), plan.batch):
            conn.execute(insert(eservice_usage_clients), clients[start : start + plan.batch])
    return {"eservice_usage": len(counters), "eservice_usage_clients": len(clients)}


def _analyze(engine: Engine) -> None:
    """Planner statistics as a production store has them: PostgreSQL's autovacuum analyzes a
    table that grew; nothing in the gateway runs ANALYZE on SQLite, so it plans without."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


# -- measuring ------------------------------------------------------------------------------


def _time(fn: Callable[[], Any], samples: int) -> dict[str, Any]:
    out = []
    for _ in range(3):
        fn()
    for _ in range(samples):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    ordered = sorted(out)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000, 3),
        "n": samples,
    }


def _size(engine: Engine) -> int:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return int(
                conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            )
        page = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        return int(page) * int(pages)


def measure(
    engine: Engine,
    *,
    samples: int = 200,
    verify: bool = True,
    purge: bool = True,
    seed: int = 7,
    without_indexes: bool = False,
) -> dict[str, Any]:
    """Time the interactive queries, ``journal verify`` and a nightly retention run.

    ``without_indexes``: at the end, drop migration 0013's indexes and time ``queue stats``
    again (the store is not usable for the figures after that: the last thing measured).
    """
    from gateway.config import RetentionSettings
    from gateway.store.retention import apply_retention

    store = Store(engine)
    rng = random.Random(seed)
    with engine.connect() as conn:
        max_out = int(conn.execute(select(func.max(outbox.c.id))).scalar_one())
        max_in = int(conn.execute(select(func.max(inbox.c.id))).scalar_one())
        out_ids = [
            r[0]
            for r in conn.execute(
                select(outbox.c.message_id).where(
                    outbox.c.id.in_([rng.randint(1, max_out) for _ in range(samples)])
                )
            )
        ]
        first_unacked = conn.execute(
            select(func.min(inbox.c.id)).where(inbox.c.acked_at.is_(None))
        ).scalar()
        recent = [
            r[0]
            for r in conn.execute(
                select(registry_queries.c.personal_code)
                .where(
                    registry_queries.c.id
                    > conn.execute(select(func.max(registry_queries.c.id))).scalar_one() - 50_000
                )
                .limit(samples * 4)
            )
        ]
        counts = {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (journal, outbox, inbox, registry_queries, idempotency_keys)
        }
    out: dict[str, Any] = {"backend": engine.dialect.name, "rows": counts}
    out_cycle = iter(out_ids * 10)
    codes = iter(recent * 10)
    cursor = (first_unacked or max_in) - 1
    queries: dict[str, Any] = {}
    queries["status lookup (GET /v1/messages/{id})"] = _time(
        lambda: store.outbox.get(next(out_cycle)), samples
    )
    queries["inbox page (GET /v1/inbox?after=, 100 unacked)"] = _time(
        lambda: store.inbox.page(cursor, 100), samples
    )
    queries["inbox page, acked too, anywhere in ten years"] = _time(
        lambda: store.inbox.page(rng.randint(0, max_in), 100, include_acked=True), samples
    )
    queries["audit by person (GET /v1/audit/queries)"] = _time(
        lambda: store.audit.search(next(codes)), samples
    )
    stats_samples = max(10, samples // 10)
    queries["queue stats"] = _time(lambda: queue_stats(store.db), samples)
    # What it was: every row counted at each call (still Outbox.stats), the same run's peer.
    out["queue_stats_counting_every_row"] = _time(lambda: store.outbox.stats(), stats_samples)
    out["queries"] = queries
    if verify:
        started = time.perf_counter()
        verdict = store.journal.verify()
        out["journal_verify_full"] = {
            "seconds": round(time.perf_counter() - started, 1),
            "ok": verdict.ok,
            "checked": verdict.checked,
            "payloads": verdict.payloads,
            "problem": verdict.problem,
        }
    if verify:
        # The anchor loop checkpoints the head every 5 minutes; a scheduled incremental check
        # run daily starts from yesterday's: about one working day of entries back.
        from gateway.store.anchor import Checkpoint
        from gateway.store.verify import verify_journal

        with engine.connect() as conn:
            head = int(conn.execute(select(journal_chain.c.last_id)).scalar_one())
            day = round(head / (YEARS * 261))
            start_id = max(1, head - day)
            start_hash = conn.execute(
                select(journal.c.entry_hash).where(journal.c.id == start_id)
            ).scalar_one()
        since = Checkpoint(start_id, start_hash, start_id, "yesterday", "bench")
        started = time.perf_counter()
        verdict = verify_journal(engine, anchors=[since], since=since)
        out["journal_verify_incremental"] = {
            "seconds": round(time.perf_counter() - started, 3),
            "ok": verdict.ok,
            "entries_read": head - start_id,
            "checked": verdict.checked,
        }
    if purge:
        retention = RetentionSettings(
            outbox_delivered_days=OUTBOX_DELIVERED_DAYS,
            inbox_acked_days=INBOX_ACKED_DAYS,
            journal_payload_days=JOURNAL_PAYLOAD_DAYS,
            rejected_payload_days=30,
            extracts_days=400,
            audit_pseudonymise_years=5,
        )
        # The next night's run: one more day of each class falls out of its window.
        started = time.perf_counter()
        done = apply_retention(
            store,
            retention,
            actor="bench",
            pseudonym_key=b"bench-key",
            rejected_retention_bytes=64 * 1024 * 1024,
            now=datetime.now(UTC) + timedelta(days=1),
        )
        out["retention_nightly"] = {
            "seconds": round(time.perf_counter() - started, 2),
            "done": done,
        }
    out["database_bytes"] = _size(engine)
    if without_indexes:
        with engine.begin() as conn:
            for name in _GROWTH_INDEXES:
                conn.exec_driver_sql(f"DROP INDEX {name}")
        _analyze(engine)
        out["queue_stats_without_0013"] = _time(lambda: store.outbox.stats(), stats_samples)
        out["queue_stats_without_0013"]["what"] = "Outbox.stats, before migration 0013"
    return out


#: Migration 0013_growth_indexes's indexes, to time queue stats without them.
_GROWTH_INDEXES = (
    "ix_outbox_status_partner",
    "ix_outbox_delivered_at",
    "ix_outbox_created_at",
    "ix_journal_payload_at",
)


# -- command line -----------------------------------------------------------------------------


def _report(
    name: str,
    generated: dict[str, Any] | None,
    measured: dict[str, Any],
    one_year: dict[str, Any] | None = None,
) -> None:
    print(f"\n[{name}] {measured['backend']}: rows {measured['rows']}")
    if generated:
        print(f"  generated in {generated['seconds']} s: {generated['rows']}")
    for q, f in measured["queries"].items():
        flag = "" if f["p99_ms"] <= 10 else "   <-- over 10 ms p99"
        peer = ""
        if one_year and q in one_year.get("queries", {}):
            base = one_year["queries"][q]
            peer = f"  (1 year: p99 {base['p99_ms']:.3f} ms, x{f['p99_ms'] / base['p99_ms']:.2f})"
        print(f"  {q:<52} p50 {f['p50_ms']:9.3f} ms  p99 {f['p99_ms']:9.3f} ms{peer}{flag}")
    stats = measured["queries"]["queue stats"]["p50_ms"]
    for key in ("queue_stats_counting_every_row", "queue_stats_without_0013"):
        if key in measured:
            w = measured[key]
            print(
                f"  {key}: p50 {w['p50_ms']} ms p99 {w['p99_ms']} ms (x{w['p50_ms'] / stats:.0f})"
            )
    if one_year and "journal_verify_full" in one_year:
        print(f"  journal verify at one year: {one_year['journal_verify_full']}")
    if "journal_verify_full" in measured:
        print(f"  journal verify (full): {measured['journal_verify_full']}")
    if "journal_verify_incremental" in measured:
        print(f"  journal verify (incremental): {measured['journal_verify_incremental']}")
    if "retention_nightly" in measured:
        print(f"  retention (nightly run): {measured['retention_nightly']}")
    print(f"  database size: {measured['database_bytes'] / 2**20:,.1f} MiB")


def _pg_database(admin_url: str, name: str, *, create: bool) -> str:
    from sqlalchemy import create_engine

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        if create:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _one(url: str, plan: GrowthPlan, samples: int, verify: bool) -> dict[str, Any]:
    engine = create_store_engine(url)
    migrate(engine)
    print(f"[growth] generating scale {plan.scale} into {engine.dialect.name} ...", flush=True)
    one_year: dict[str, Any] = {}

    def peer() -> None:
        print("[growth] one year written: measuring it as the peer ...", flush=True)
        one_year.update(measure(engine, samples=samples, verify=verify, purge=False))

    generated = generate(engine, plan, after_first_year=peer)
    measured = measure(engine, samples=samples, verify=verify, without_indexes=True)
    engine.dispose()
    return {"generated": generated, "one_year": one_year, "measured": measured}


def main(argv: list[str] | None = None) -> int:
    """``generate``, ``measure`` or ``run`` (both, SQLite and optionally PostgreSQL)."""
    p = argparse.ArgumentParser(prog="python -m bench.growth", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="fill the store at --url")
    g.add_argument("--url", required=True)
    g.add_argument("--scale", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=2026)
    m = sub.add_parser("measure", help="time the queries on the store at --url")
    m.add_argument("--url", required=True)
    m.add_argument("--samples", type=int, default=200)
    m.add_argument("--no-verify", action="store_true")
    m.add_argument("--no-purge", action="store_true", help="leave the store as it is")
    r = sub.add_parser("run", help="generate and measure on temp SQLite (and PostgreSQL)")
    r.add_argument("--scale", type=float, default=0.1)
    r.add_argument("--samples", type=int, default=200)
    r.add_argument("--no-verify", action="store_true")
    r.add_argument("--postgres", help="admin URL; a database plusgw_growth is made and dropped")
    r.add_argument("--no-sqlite", action="store_true")
    r.add_argument("--keep", action="store_true", help="keep the SQLite file and the database")
    r.add_argument("--output", type=Path, default=RESULTS / "growth.json")
    args = p.parse_args(argv)
    quiet_logging()
    if args.command == "generate":
        engine = create_store_engine(args.url)
        migrate(engine)
        print(json.dumps(generate(engine, GrowthPlan(scale=args.scale, seed=args.seed)), indent=2))
        return 0
    if args.command == "measure":
        engine = create_store_engine(args.url)
        migrate(engine)
        measured = measure(
            engine, samples=args.samples, verify=not args.no_verify, purge=not args.no_purge
        )
        _report(args.url, None, measured)
        return 0
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "scale": args.scale,
    }
    plan = GrowthPlan(scale=args.scale)
    if not args.no_sqlite:
        tmp = Path(tempfile.mkdtemp(prefix="plusgw-growth-"))
        db = tmp / "growth.db"
        result["sqlite"] = _one(f"sqlite:///{db}", plan, args.samples, not args.no_verify)
        lite = result["sqlite"]
        _report("sqlite", lite["generated"], lite["measured"], lite["one_year"])
        if not args.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
    if args.postgres:
        url = _pg_database(args.postgres, "plusgw_growth", create=True)
        try:
            result["postgresql"] = _one(url, plan, args.samples, not args.no_verify)
            _report(
                "postgresql", result["postgresql"]["generated"], result["postgresql"]["measured"]
            )
        finally:
            if not args.keep:
                from sqlalchemy import create_engine

                create_engine(url).dispose()
                _pg_database(args.postgres, "plusgw_growth", create=False)
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwritten {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
