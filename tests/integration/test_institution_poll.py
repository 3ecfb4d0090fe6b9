"""Poll-only institutions over real HTTP: the institutions-poll job fetches what a simulated
institution holds (through the E-case platform simulator), takes each message through the
normal inbound route into the inbox, and acknowledges what it took.

IeVP IS is made poll-only in these settings (a test copy of its configuration: data only).
Two gateway instances (two runtimes and job runners on one database) tick the same slot;
messages are taken exactly once; a failure half-way loses nothing; a bad message in a batch
is refused with its code while the others go in.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from gateway.channels.polling import InstitutionPoller
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.jobs import JobRunner, RunOutcome, load_jobs
from gateway.runtime import Runtime
from gateway.store import create_store_engine, migrate
from gateway.store.schema import journal
from tests.conftest import build_settings, postgres_url
from tests.integration.conftest import Live, running

pytestmark = pytest.mark.integration

JOB = "institutions-poll"


def poll_only(tmp: Path, keys_dir: Path, **poll: Any) -> Settings:
    """The test settings with IeVP IS declared poll-only (small batches: several requests)."""
    return build_settings(
        tmp,
        keys_dir,
        institutions={"ievp": {"delivery_mode": "poll", "poll": {"max_messages": 2, **poll}}},
    )


@pytest.fixture
def live(tmp_path: Path, keys_dir: Path) -> Iterator[Live]:
    with running(poll_only(tmp_path, keys_dir), seed=False) as live:
        yield live


def runner(live: Live, runtime: Runtime, owner: str) -> JobRunner:
    specs = {JOB: load_jobs(live.settings)[JOB]}
    return JobRunner(live.settings, runtime.store, specs=specs, owner=owner, runtime=runtime)


def hold(live: Live, message_type: str, **query: Any) -> str:
    """Make IeVP IS hold a message, through the simulator's control route (real HTTP)."""
    params = {k: str(v).lower() for k, v in query.items()}
    r = live.http.post(f"{live.sim_url}/sim/ecase/hold/ievp/{message_type}", params=params)
    assert r.status_code == 200, r.text
    message_id: str = r.json()["message_id"]
    return message_id


def polls(live: Live) -> dict[str, Any]:
    r = live.http.get(f"{live.sim_url}/sim/ecase/polls/ievp")
    assert r.status_code == 200
    data: dict[str, Any] = r.json()
    return data


def inbox(live: Live) -> list[dict[str, Any]]:
    r = live.http.get(f"{live.gateway}/v1/inbox", params={"limit": 500, "include_acked": True})
    assert r.status_code == 200
    items: list[dict[str, Any]] = r.json()["items"]
    return [i for i in items if i["institution"] == "ievp"]


def slot(minutes: int = 0) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def test_two_instances_take_each_message_once_and_refuse_the_bad_one(live: Live) -> None:
    two_instances_take_each_message_once(live)


def test_two_instances_on_postgresql_take_each_message_once(tmp_path: Path, keys_dir: Path) -> None:
    """The same on PostgreSQL (several instances' backend); skipped with a message without."""
    url = postgres_url()
    if not url:
        pytest.skip("PLUSGW_TEST_POSTGRES_URL is not set: the PostgreSQL poll test is not run")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_store_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    try:
        engine = create_store_engine(scoped)
        migrate(engine)
        engine.dispose()
        settings = build_settings(
            tmp_path,
            keys_dir,
            store={"url": scoped},
            institutions={"ievp": {"delivery_mode": "poll", "poll": {"max_messages": 2}}},
        )
        with running(settings, seed=False) as live:
            two_instances_take_each_message_once(live)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def two_instances_take_each_message_once(live: Live) -> None:
    """Two runtimes and runners tick one slot together; a bad message among good ones."""
    good = [hold(live, "prison_release") for _ in range(3)]
    good += [hold(live, "evaluation_report_request") for _ in range(2)]
    tampered = hold(live, "prison_release", tamper=True)
    not_theirs = hold(live, "court_ruling", any_type=True)  # IeVP IS does not send rulings
    assert len(polls(live)["pending"]) == 7

    # A second instance: its own runtime (engine, channels, routes) on the same database.
    other = Runtime(live.settings, run_migrations=False)
    try:
        runners = [runner(live, live.runtime, "instance-a"), runner(live, other, "instance-b")]
        now = slot()
        barrier = threading.Barrier(2)
        outcomes: list[RunOutcome | None] = []

        def tick(r: JobRunner) -> None:
            barrier.wait()
            outcomes.append(r.tick(JOB, now))

        threads = [threading.Thread(target=tick, args=(r,)) for r in runners]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        ran = [o for o in outcomes if o is not None]
        assert len(ran) == 1, outcomes  # the runs table: one instance polls the slot
        assert ran[0].status == "succeeded", ran[0]
        report = ran[0].result["polled"]["ievp"]
        assert report["accepted"] == 5 and report["duplicates"] == 0
        assert report["refused"] == {"SIG_INVALID": 1, "MESSAGE_NOT_ALLOWED": 1}
        assert report["requests"] >= 4  # batches of two

        taken = inbox(live)
        assert sorted(i["partner_message_id"] for i in taken) == sorted(good)
        state = polls(live)
        assert state["pending"] == []  # everything acknowledged, the bad ones too
        outcome = {o["message_id"]: (o["status"], o["code"]) for o in state["outcomes"]}
        assert outcome[tampered] == ("REFUSED", "SIG_INVALID")
        assert outcome[not_theirs] == ("REFUSED", "MESSAGE_NOT_ALLOWED")
        assert all(outcome[m] == ("ACCEPTED", None) for m in good)
        # Refusals are journaled like a refused push (code, partner), never the content.
        with live.runtime.store.db.engine.connect() as conn:
            codes = [
                row.error_code
                for row in conn.execute(
                    select(journal.c.error_code).where(
                        journal.c.status == "rejected", journal.c.partner == "ievp"
                    )
                )
            ]
        assert sorted(codes) == ["MESSAGE_NOT_ALLOWED", "SIG_INVALID"]

        # The next slot, on either instance: nothing pending, nothing taken twice.
        nxt = runners[1].tick(JOB, slot(1))
        assert nxt is not None and nxt.status == "succeeded"
        assert nxt.result["polled"]["ievp"]["accepted"] == 0
        assert len(inbox(live)) == 5
    finally:
        other.close()


def test_acknowledgement_failing_half_way_loses_nothing(live: Live) -> None:
    held = [hold(live, "prison_release") for _ in range(3)]
    r = live.http.put(f"{live.sim_url}/sim/ecase/polls/ievp", json={"fail_acks": 1})
    assert r.status_code == 200
    first = runner(live, live.runtime, "a").tick(JOB, slot())
    assert first is not None and first.status == "retry"
    assert first.error_code == "POLL_FAILED" and "ievp PARTNER_SERVER_FAULT" in (first.error or "")
    # Taken in, not acknowledged: the institution still holds them.
    assert sorted(i["partner_message_id"] for i in inbox(live)) == sorted(held[:2])
    assert len(polls(live)["pending"]) == 3

    again = runner(live, live.runtime, "a").tick(JOB, slot(1))
    assert again is not None and again.status == "succeeded", again
    report = again.result["polled"]["ievp"]
    assert (report["accepted"], report["duplicates"]) == (1, 2)
    assert sorted(i["partner_message_id"] for i in inbox(live)) == sorted(held)
    state = polls(live)
    assert state["pending"] == []
    statuses = sorted(o["status"] for o in state["outcomes"])
    assert statuses == ["ACCEPTED", "DUPLICATE", "DUPLICATE"]


def test_a_run_stopped_mid_batch_acknowledges_what_it_took(live: Live) -> None:
    held = [hold(live, "prison_release") for _ in range(2)]
    calls = []

    class Lost(Exception):
        pass

    def check() -> None:
        calls.append(1)
        if len(calls) == 2:  # before the second message: the lease is lost
            raise Lost

    poller = InstitutionPoller(live.runtime)
    with pytest.raises(Lost):
        poller.poll("ievp", check=check)
    state = polls(live)
    assert [p["message_id"] for p in state["pending"]] == [held[1]]
    assert [o["message_id"] for o in state["outcomes"]] == [held[0]]
    report = poller.poll("ievp")
    assert report.accepted == 1 and report.acknowledged == 1
    assert sorted(i["partner_message_id"] for i in inbox(live)) == sorted(held)
    assert polls(live)["pending"] == []


def test_institutions_that_push_are_not_polled(live: Live) -> None:
    poller = InstitutionPoller(live.runtime)
    assert poller.pollable() == ["ievp"]
    # TIS pushes: its simulator refuses a poll, and the job would not ask it.
    with pytest.raises(Exception) as caught:
        poller.poll("tis")
    assert getattr(caught.value, "code", None) == "PARTNER_REJECTED"


def test_poll_configuration_is_validated(tmp_path: Path, keys_dir: Path) -> None:
    with pytest.raises(ConfigError, match="delivery_mode: poll"):
        build_settings(tmp_path, keys_dir, institutions={"tis": {"poll": {"interval": 60}}})
    with pytest.raises(ConfigError, match="max_messages"):
        poll_only(tmp_path, keys_dir, max_messages=0)
    with pytest.raises(ConfigError, match="must send"):
        build_settings(tmp_path, keys_dir, institutions={"vraa": {"delivery_mode": "poll"}})


def test_a_direct_institution_is_polled_at_its_own_endpoint(tmp_path: Path, keys_dir: Path) -> None:
    """The same on the direct channel: the EM simulator's own endpoint answers the poll."""
    settings = build_settings(tmp_path, keys_dir, institutions={"em": {"delivery_mode": "poll"}})
    with running(settings, seed=False) as live:
        held = []
        for _ in range(2):
            r = live.http.post(f"{live.em_url}/sim/em/hold/monitoring_event")
            assert r.status_code == 200, r.text
            held.append(r.json()["message_id"])
        outcome = runner(live, live.runtime, "a").tick(JOB, slot())
        assert outcome is not None and outcome.status == "succeeded", outcome
        assert outcome.result["polled"]["em"]["accepted"] == 2
        r = live.http.get(f"{live.gateway}/v1/inbox", params={"limit": 100})
        assert sorted(
            i["partner_message_id"] for i in r.json()["items"] if i["institution"] == "em"
        ) == sorted(held)
        assert live.http.get(f"{live.em_url}/sim/em/polls").json()["pending"] == []


def test_a_message_of_another_sender_in_the_batch_is_refused(live: Live) -> None:
    """A court's message offered by IeVP IS's poll: checked like a push (the court's own
    signature verifies), but it is not the institution polled: ECASE_SENDER_MISMATCH."""
    from gateway.soap.envelope import build_envelope

    _, foreign, payload, header = live.platform.institution("tis").build("court_ruling")
    live.platform.institution("ievp").polls.hold(
        foreign, "court_ruling", build_envelope(payload, header.serialize())
    )
    own = hold(live, "prison_release")
    outcome = runner(live, live.runtime, "a").tick(JOB, slot())
    assert outcome is not None and outcome.status == "succeeded", outcome
    assert outcome.result["polled"]["ievp"]["refused"] == {"ECASE_SENDER_MISMATCH": 1}
    assert [i["partner_message_id"] for i in inbox(live)] == [own]
    outcome_of = {o["message_id"]: o["code"] for o in polls(live)["outcomes"]}
    assert outcome_of == {foreign: "ECASE_SENDER_MISMATCH", own: None}
