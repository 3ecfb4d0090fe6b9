"""The e-services store area on SQLite and PostgreSQL: requests, parties, assignments."""

from __future__ import annotations

from datetime import timedelta

from gateway.store import Store
from gateway.store.eservices import Party
from gateway.store.schema import utcnow


def _request(store: Store, request_id: str, **extra: object) -> bool:
    with store.db.transaction() as conn:
        return store.eservices.insert_request_in(
            conn,
            request_id=request_id,
            message_id=f"m-{request_id}",
            eservice="my_probation_data",
            kind="request",
            audience="client",
            volunteer_kind=None,
            party_key=None,
            client_key="k" * 32,
            recipient_code="150390-12343",
            minor=False,
            form=None,
            form_version=None,
            received_at=extra.get("received_at", utcnow()),
        )


def test_requests_wait_are_told_and_are_answered_once(store: Store) -> None:
    area = store.eservices
    old = utcnow() - timedelta(minutes=5)
    assert _request(store, "R-1", received_at=old)
    assert not _request(store, "R-1")  # the same request again: stored once
    assert _request(store, "R-2")
    row = area.get("R-1")
    assert row is not None and row.status == "pending" and "150390" not in repr(row)
    assert row.public()["requester"]["personal_code"] == "150390-12343"
    assert "client_key" not in row.public() and "party_key" not in row.public()
    assert [r.request_id for r in area.page(status="pending", limit=10)] == ["R-1", "R-2"]
    assert [r.request_id for r in area.page(status=None, limit=10, after="R-1")] == ["R-2"]
    assert [r.request_id for r in area.overdue(utcnow() - timedelta(minutes=1))] == ["R-1"]
    area.mark_pending_sent("R-1", "p-1")
    assert area.overdue(utcnow()) == [area.get("R-2")]
    with store.db.transaction() as conn:
        assert area.mark_answered_in(
            conn,
            "R-1",
            at=utcnow(),
            answer_message_id="a-1",
            answer_key="k1",
            notification_message_id=None,
        )
    with store.db.transaction() as conn:
        assert not area.mark_answered_in(
            conn,
            "R-1",
            at=utcnow(),
            answer_message_id="a-2",
            answer_key="k2",
            notification_message_id=None,
        )
    answered = area.get("R-1")
    assert answered is not None and answered.answer_message_id == "a-1"
    assert answered.pending_message_id == "p-1"


def test_parties_and_assignments(store: Store) -> None:
    area = store.eservices
    assert area.party("org:1") is None
    area.put_party(Party("org:1", "employer", "limited_liability_company", 51.0, None), ["C-1"])
    with store.db.transaction() as conn:
        area.assign_in(conn, "org:1", "C-2", source="work_assignment", at=utcnow())
        area.assign_in(conn, "org:1", "C-2", source="work_assignment", at=utcnow())
    assert area.assigned("org:1") == {"C-1", "C-2"}
    # PLUS's list replaces every assignment (how PLUS ends one); no list leaves them.
    area.put_party(Party("org:1", "employer", "limited_liability_company", 40.0, None), None)
    assert area.assigned("org:1") == {"C-1", "C-2"}
    area.put_party(Party("org:1", "employer", "limited_liability_company", 40.0, None), ["C-3"])
    assert area.assigned("org:1") == {"C-3"}
    party = area.party("org:1")
    assert party is not None and party.state_share_percent == 40.0


def test_retention_deletes_answered_requests_only(store: Store) -> None:
    from gateway.config import RetentionSettings
    from gateway.store.retention import apply_retention

    area = store.eservices
    _request(store, "R-old")
    _request(store, "R-waiting")
    with store.db.transaction() as conn:
        area.mark_answered_in(
            conn,
            "R-old",
            at=utcnow() - timedelta(days=100),
            answer_message_id="a",
            answer_key="k",
            notification_message_id=None,
        )
    done = apply_retention(
        store,
        RetentionSettings(),
        actor="test",
        pseudonym_key=b"k" * 32,
        rejected_retention_bytes=1 << 20,
    )
    assert done["eservice_requests"] == 1
    assert area.get("R-old") is None and area.get("R-waiting") is not None
