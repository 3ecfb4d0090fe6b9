"""E-service usage counts: upserted counters and distinct clients, concurrently, on both
backends (SQLite file and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from gateway.store import Database, Store, create_store_engine
from gateway.store.usage import UsageCounts, UsageRow, month_of, record_eservice_use


def test_counts_by_month_eservice_recipient_and_outcome(store: Store) -> None:
    usage = UsageCounts(store.db)
    at = datetime(2027, 3, 10, 12, tzinfo=UTC)
    for _ in range(3):
        usage.record(
            at=at,
            eservice="my_probation_data",
            recipient_type="client",
            outcome="answered",
            client_key="k1",
        )
    usage.record(
        at=at,
        eservice="my_probation_data",
        recipient_type="client",
        outcome="refused",
        client_key="k2",
    )
    usage.record(
        at=at + timedelta(days=30),
        eservice="probation_client_data",
        recipient_type="employer",
        outcome="answered",
        client_key=None,
    )
    assert usage.rows("2027-03", "2027-03") == [
        UsageRow("2027-03", "my_probation_data", "client", "answered", 3),
        UsageRow("2027-03", "my_probation_data", "client", "refused", 1),
    ]
    assert len(usage.rows("2027-01", "2027-12")) == 3
    assert usage.rows("2027-05", "2027-12") == []
    # k2 was refused: a use with its outcome, not a client the e-services served.
    assert usage.distinct_clients("2027-01", "2027-12") == 1
    assert usage.distinct_clients_by_month("2027-01", "2027-12") == {"2027-03": 1}


def test_month_is_riga_time_and_names_are_checked(store: Store) -> None:
    # 31 March 22:30 UTC is already 1 April in Riga (UTC+3 in summer time).
    assert month_of(datetime(2027, 3, 31, 22, 30, tzinfo=UTC)) == "2027-04"
    assert month_of(datetime(2027, 1, 31, 21, 59, tzinfo=UTC)) == "2027-01"
    with pytest.raises(ValueError, match="naive"):
        month_of(datetime(2027, 1, 1))
    bad = [
        {"eservice": "nope"},
        {"recipient_type": "citizen"},
        {"outcome": "ok"},
        {"client_key": ""},
        {"client_key": "x" * 65},
    ]
    for override in bad:
        kwargs = {
            "at": datetime(2027, 1, 1, tzinfo=UTC),
            "eservice": "my_probation_data",
            "recipient_type": "client",
            "outcome": "answered",
            "client_key": "k",
            **override,
        }
        with pytest.raises(ValueError), store.db.transaction() as conn:
            record_eservice_use(conn, **kwargs)  # type: ignore[arg-type]
    assert UsageCounts(store.db).rows("2000-01", "2999-12") == []


def test_joins_the_callers_transaction(store: Store) -> None:
    usage = UsageCounts(store.db)
    with pytest.raises(RuntimeError), store.db.transaction() as conn:
        record_eservice_use(
            conn,
            at=datetime(2027, 1, 1, 12, tzinfo=UTC),
            eservice="information_to_vpd",
            recipient_type="client",
            outcome="accepted",
            client_key="k",
        )
        raise RuntimeError("the caller's work failed")
    assert usage.rows("2027-01", "2027-01") == []
    assert usage.distinct_clients("2027-01", "2027-01") == 0


def test_concurrent_uses_are_all_counted(store: Store) -> None:
    """Eight threads over two engines (two instances) hit the same counters: none is lost."""
    other = create_store_engine(store.engine.url.render_as_string(hide_password=False))
    instances = [UsageCounts(store.db), UsageCounts(Database(other))]
    usage = instances[0]
    at = datetime(2027, 6, 15, 9, tzinfo=UTC)
    threads, per_thread = 8, 40
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        try:
            start.wait(timeout=60)
            for i in range(per_thread):
                instances[n % 2].record(
                    at=at,
                    eservice="my_probation_data",
                    recipient_type="client",
                    outcome="answered" if i % 4 else "failed",
                    # Every thread's clients overlap with the others': distinct stays exact.
                    client_key=f"client-{i % 10}",
                )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=300)
    other.dispose()
    assert not errors, errors
    rows = {r.outcome: r.uses for r in usage.rows("2027-06", "2027-06")}
    assert rows == {"answered": threads * per_thread * 3 // 4, "failed": threads * per_thread // 4}
    assert usage.distinct_clients("2027-01", "2027-12") == 10


def test_indicator_totals_and_electronic_counts(store: Store) -> None:
    """PLUS's totals (replaced, journaled) and the journal's electronic counts, both backends."""
    indicators = store.indicators
    indicators.put_totals("2027", {"active_clients": 10, "rulings_received": 5}, actor="plus")
    indicators.put_totals("2027", {"rulings_received": 7}, actor="plus")
    indicators.put_totals("2027-02", {"execution_data_sent": 3}, actor=None)
    assert indicators.totals(["2027", "2027-02", "2027-03"]) == {
        "2027": {"active_clients": 10, "rulings_received": 7},
        "2027-02": {"execution_data_sent": 3},
    }
    with pytest.raises(ValueError):
        indicators.put_totals("2027", {"paper": 1}, actor=None)
    at = datetime(2027, 5, 1, tzinfo=UTC)
    for message_id in ("a", "b", "a"):
        store.journal.append(
            at=at,
            direction="in",
            partner="tis",
            status="accepted",
            message_type="court_ruling",
            message_id=message_id,
        )
    store.journal.append(
        at=at,
        direction="in",
        partner="tis",
        status="accepted",
        message_type="mediation_proposal",
        message_id="c",
    )
    count = indicators.electronic_messages(
        direction="in",
        status="accepted",
        message_types=["court_ruling", "penal_order"],
        since=datetime(2027, 1, 1, tzinfo=UTC),
        until=datetime(2028, 1, 1, tzinfo=UTC),
    )
    assert count == 2
    assert (
        indicators.registry_requests(
            since=datetime(2027, 1, 1, tzinfo=UTC), until=datetime(2028, 1, 1, tzinfo=UTC)
        )
        == 0
    )
