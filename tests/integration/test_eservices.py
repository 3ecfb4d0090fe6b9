"""The four e-services end to end over real HTTP: portal simulator -> E-case platform simulator
-> gateway -> inbox; PLUS answers on the local API -> gateway (scope, signature, outbox) ->
platform simulator -> portal; notifications through the DVS simulator. Including PLUS down
(the portal is told the request waits) and DVS down (the notification is retried).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import PartnerRejectedError
from gateway.eservices.identity import AssertionIssuer
from gateway.eservices.pending import PendingSweeper
from gateway.eservices.portal import PERSONAS, PortalSim
from gateway.signing import Signer
from gateway.sim.faults import FaultPlan
from tests.conftest import build_settings
from tests.integration.conftest import Live, running

WAIT = 30  # seconds; generous under load (correctness, not speed: bench/eservices.py measures)


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, keys_dir: Path
) -> Iterator[tuple[Live, PortalSim]]:
    settings = build_settings(
        tmp_path_factory.mktemp("eservices"),
        keys_dir,
        eservices={"pending_after": 2, "sweep_interval": 0.2},
    )
    with running(settings) as live:
        sweeper = PendingSweeper(live.runtime, live.worker)
        sweeper.start()
        portal = PortalSim(settings, live.platform.institution("portal"))
        try:
            yield live, portal
        finally:
            sweeper.stop()


def _until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _inbox_item(live: Live, request_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        after = 0
        while True:
            page = live.http.get(
                f"{live.gateway}/v1/inbox", params={"limit": 500, "after": after}
            ).json()
            for item in page["items"]:
                if item["partner_message_id"] == request_id:
                    return dict(item)
            if not page["items"]:
                return None
            after = page["next_cursor"]

    return dict(_until(find, f"inbox item {request_id}"))


def _portal_got(portal: PortalSim, request_id: str, message_type: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for got in portal.received(request_id):
            if got["message_type"] == message_type:
                return got
        return None

    return dict(_until(find, f"{message_type} for {request_id} at the portal"))


def _answer(live: Live, request_id: str, **body: Any) -> Any:
    return live.http.post(f"{live.gateway}/v1/eservices/requests/{request_id}/answer", json=body)


def _refused(portal: PortalSim, canonical: dict[str, Any]) -> str:
    with pytest.raises(PartnerRejectedError) as caught:
        portal.send(canonical)
    return str(caught.value.details[0]["detail_code"])


def _register(live: Live, **party: Any) -> None:
    response = live.http.put(f"{live.gateway}/v1/eservices/parties", json=party)
    assert response.status_code == 200, response.text


def _usage(live: Live) -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    for r in live.runtime.store.usage.rows("2000-01", "2999-12"):
        key = (r.eservice, r.recipient_type, r.outcome)
        out[key] = out.get(key, 0) + r.uses
    return out


# ---------------------------------------------------------------------------------------------
# My probation data (client): over-sharing stripped, e-address notified through DVS


OVERSHARED_CASE = {
    "request_id": "x",
    "case": {
        "case_number": "VPD-2026-0451",
        "status": "active",
        "officer": {
            "name": "Ilze Bērziņa",
            "unit": "Rīga",
            "phone": "+37167000000",
            "personal_code": "010170-10101",
        },
        "obligations": [{"code": "REPORT", "text": "Ierasties reizi mēnesī", "risk_score": 7}],
        "hours": {"assigned": 120, "worked": 40, "remaining": 80},
        "risk_assessment": {"level": "high", "notes": "internal"},
    },
    "victim": {"name": "Jānis Kalniņš"},
}


def test_my_probation_data_round_trip(env: tuple[Live, PortalSim]) -> None:
    live, portal = env
    before = _usage(live)
    sent = portal.request("client", "my_probation_data", subject=PERSONAS["client"].personal_code)
    rid = sent["request_id"]
    assert sent["ack"]["Status"] == "ACCEPTED"
    item = _inbox_item(live, rid)
    # The inbox item is the message as received: it conforms to the type's published schema.
    live.runtime.mappings.get("eservice_request").validate_canonical(item["message"])
    # PLUS reads who asked as the gateway established it from the platform's assertion.
    pending = live.http.get(f"{live.gateway}/v1/eservices/requests", params={"status": "pending"})
    [row] = [r for r in pending.json()["requests"] if r["request_id"] == rid]
    assert row["requester"]["role"] == "client"
    assert row["requester"]["personal_code"] == PERSONAS["client"].personal_code
    assert row["message_id"] == item["id"]

    response = _answer(live, rid, status="answered", content=OVERSHARED_CASE, notify_e_address=True)
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body["scope"]["stripped_fields"]) >= {
        "case.officer.personal_code",
        "case.obligations[].risk_score",
        "case.risk_assessment",
        "victim",
    }
    got = _portal_got(portal, rid, "eservice_answer")
    content = json.loads(got["content"])
    assert content["case"]["officer"] == {
        "name": "Ilze Bērziņa",
        "unit": "Rīga",
        "phone": "+37167000000",
    }
    assert content["case"]["obligations"] == [{"code": "REPORT", "text": "Ierasties reizi mēnesī"}]
    assert "victim" not in content and "risk_assessment" not in content["case"]
    assert got["notify_e_address"] is True
    # The notification at the official e-address, through DVS.
    dvs = live.sim("dvs")
    note = _until(
        lambda: [r for r in dvs.records.received() if r.canonical["request_id"] == rid],
        "the DVS notification",
    )[0]
    assert note.canonical["recipient_code"] == PERSONAS["client"].personal_code
    assert (
        note.canonical["answer_message_id"] == got["message_id"]
        or note.canonical["answer_message_id"] == body["id"]
    )
    live.wait_for(body["notification_message_id"])
    row = live.http.get(f"{live.gateway}/v1/eservices/requests/{rid}").json()
    assert row["status"] == "answered" and row["answer_message_id"] == body["id"]
    after = _usage(live)
    key = ("my_probation_data", "client", "answered")
    assert after.get(key, 0) == before.get(key, 0) + 1
    # What was stripped is journaled (paths and counts only, no values).
    entries = live.runtime.store.journal.for_message(body["id"])
    stripped = [e for e in entries if e["status"] == "scope_stripped"]
    assert stripped and "Ilze" not in stripped[0]["detail"]
    assert "010170-10101" not in stripped[0]["detail"]


def test_minor_client_gets_the_stricter_scope(env: tuple[Live, PortalSim]) -> None:
    live, portal = env
    rid = portal.request("minor_client", "my_probation_data")["request_id"]
    _inbox_item(live, rid)
    response = _answer(live, rid, status="answered", content=OVERSHARED_CASE)
    assert response.status_code == 202, response.text
    content = json.loads(_portal_got(portal, rid, "eservice_answer")["content"])
    assert content["case"]["officer"] == {"name": "Ilze Bērziņa", "unit": "Rīga"}


# ---------------------------------------------------------------------------------------------
# Probation client data: only assigned clients and in-scope fields, for every audience


def _clients_answer() -> dict[str, Any]:
    def client(cid: str, minor: bool) -> dict[str, Any]:
        return {
            "client_id": cid,
            "given_name": "Anna",
            "family_name": "Liepa",
            "minor": minor,
            "personal_code": "150390-12343",
            "contact": {"phone": "+37120000000", "address": "Rīga"},
            "work": {
                "assignment_id": "WA-1",
                "hours_assigned": 80,
                "hours_worked": 10,
                "offence": "theft",
            },
            "task": {"task_id": "VT-1", "description": "Mācības"},
        }

    return {
        "clients": [client("C-1", False), client("C-2", True), client("C-3", False)],
        "officer_notes": "internal",
    }


@pytest.mark.parametrize(
    ("persona", "registration"),
    [
        (
            "employer",
            {
                "kind": "employer",
                "registration_number": "90000012345",
                "legal_form": "municipal_institution",
                "clients": ["C-1"],
            },
        ),
        (
            "municipality",
            {
                "kind": "municipality",
                "registration_number": "90000056789",
                "legal_form": "municipal_institution",
                "clients": ["C-1"],
            },
        ),
        (
            "volunteer",
            {
                "kind": "volunteer",
                "personal_code": "211180-10232",
                "volunteer_kind": "companion",
                "clients": ["C-1"],
            },
        ),
    ],
)
def test_probation_client_data_only_assigned_clients_in_scope(
    env: tuple[Live, PortalSim], persona: str, registration: dict[str, Any]
) -> None:
    live, portal = env
    _register(live, **registration)
    # The second client is assigned by what PLUS sends out: a work assignment or a task.
    if persona == "volunteer":
        out = live.http.post(
            f"{live.gateway}/v1/outbound/volunteer_task",
            headers={"Idempotency-Key": f"vt-{persona}"},
            json={
                "task_id": "VT-1",
                "volunteer_personal_code": "211180-10232",
                "client_id": "C-2",
                "content": json.dumps({"description": "Mācības"}),
            },
        )
    else:
        out = live.http.post(
            f"{live.gateway}/v1/outbound/work_assignment",
            headers={"Idempotency-Key": f"wa-{persona}"},
            json={
                "assignment_id": f"WA-{persona}",
                "client_id": "C-2",
                "employer_registration_number": registration["registration_number"],
                "content": json.dumps({"hours_assigned": 80}),
            },
        )
    assert out.status_code == 202, out.text
    live.wait_for(out.json()["id"])
    rid = portal.request(persona, "probation_client_data")["request_id"]
    _inbox_item(live, rid)
    response = _answer(live, rid, status="answered", content=_clients_answer())
    assert response.status_code == 202, response.text
    assert response.json()["scope"]["removed_clients"] == 1
    content = json.loads(_portal_got(portal, rid, "eservice_answer")["content"])
    clients = {c["client_id"]: c for c in content["clients"]}
    assert sorted(clients) == ["C-1", "C-2"]  # C-3 is not assigned: removed
    assert "officer_notes" not in content
    for c in clients.values():
        assert "personal_code" not in c
        assert "address" not in c.get("contact", {})
    if persona == "volunteer":
        assert clients["C-1"]["task"] == {"task_id": "VT-1", "description": "Mācības"}
        assert "work" not in clients["C-1"]
    else:
        assert "offence" not in clients["C-1"]["work"] and "task" not in clients["C-1"]
    # C-2 is a minor: first name only, no phone.
    assert "family_name" not in clients["C-2"] and "contact" not in clients["C-2"]
    assert clients["C-1"]["family_name"] == "Liepa"


# ---------------------------------------------------------------------------------------------
# Submissions: Information to VPD (client forms), employer information (ES-23..ES-30)


def test_information_to_vpd_form_round_trip(env: tuple[Live, PortalSim]) -> None:
    live, portal = env
    before = _usage(live)
    rid = portal.request(
        "client",
        "information_to_vpd",
        kind="submission",
        form="change_of_details",
        version="2.0",
        data={
            "case_number": "VPD-2026-0451",
            "change": "workplace",
            "effective_from": "2027-03-01",
            "organisation_name": "SIA Koks",
            "reason": "jauns darbs",
        },
    )["request_id"]
    item = _inbox_item(live, rid)
    assert json.loads(item["message"]["form_data"])["change"] == "workplace"
    key = ("information_to_vpd", "client", "accepted")
    assert _usage(live).get(key, 0) == before.get(key, 0) + 1
    response = _answer(
        live,
        rid,
        status="accepted",
        content={
            "submission_id": "S-1",
            "status": "registered",
            "answer": {"text": "Paldies"},
            "internal_ref": "X",
        },
    )
    assert response.status_code == 202, response.text
    content = json.loads(_portal_got(portal, rid, "eservice_answer")["content"])
    assert content == {
        "submission_id": "S-1",
        "status": "registered",
        "answer": {"text": "Paldies"},
    }


def test_work_assignment_out_and_schedule_agreement_back(env: tuple[Live, PortalSim]) -> None:
    live, portal = env
    _register(
        live, kind="employer", registration_number="90000012345", legal_form="municipal_institution"
    )
    out = live.http.post(
        f"{live.gateway}/v1/outbound/work_assignment",
        headers={"Idempotency-Key": "wa-agreement"},
        json={
            "assignment_id": "WA-77",
            "client_id": "C-77",
            "employer_registration_number": "90000012345",
            "respond_by": "2027-03-10",
            "content": json.dumps({"schedule": [{"date": "2027-03-15", "from": "09:00"}]}),
        },
    )
    assert out.status_code == 202, out.text
    live.wait_for(out.json()["id"])
    received = [r for r in portal.portal.records.received() if r.message_type == "work_assignment"]
    assert any(r.canonical["assignment_id"] == "WA-77" for r in received)
    # The employer agrees through the employer_information e-service (ES-24).
    rid = portal.request(
        "employer",
        "employer_information",
        kind="submission",
        form="schedule_agreement",
        version="1.0",
        data={"assignment_id": "WA-77", "client_id": "C-77", "decision": "agreed"},
    )["request_id"]
    item = _inbox_item(live, rid)
    assert json.loads(item["message"]["form_data"])["decision"] == "agreed"
    response = _answer(
        live,
        rid,
        status="accepted",
        content={"status": "agreed", "client": {"personal_code": "150390-12343"}},
    )
    assert response.status_code == 202, response.text
    got = _portal_got(portal, rid, "eservice_answer")
    assert json.loads(got["content"]) == {"status": "agreed"}  # the employer's scope


# ---------------------------------------------------------------------------------------------
# PLUS down: the request waits durably, the portal is told, the answer follows


def test_plus_down_the_portal_is_told_then_answered(env: tuple[Live, PortalSim]) -> None:
    live, portal = env
    rid = portal.request("client", "my_probation_data")["request_id"]
    pending = _portal_got(portal, rid, "eservice_pending")
    assert pending["reason"] == "PLUS_NOT_ANSWERED"
    row = live.http.get(f"{live.gateway}/v1/eservices/requests/{rid}").json()
    assert row["status"] == "pending" and row["pending_sent_at"]
    # PLUS comes back, reads its inbox and answers.
    _inbox_item(live, rid)
    response = _answer(live, rid, status="answered", content={"case": {"status": "active"}})
    assert response.status_code == 202, response.text
    got = _portal_got(portal, rid, "eservice_answer")
    assert json.loads(got["content"]) == {"case": {"status": "active"}}
    assert len([g for g in portal.received(rid) if g["message_type"] == "eservice_pending"]) == 1


# ---------------------------------------------------------------------------------------------
# DVS down: the notification is retried like any delivery, its status visible


def test_dvs_down_notification_retried(env: tuple[Live, PortalSim]) -> None:
    live, portal = env
    dvs = live.sim("dvs")
    dvs.faults.set(FaultPlan(mode="http_503", count=2))
    try:
        rid = portal.request("client", "my_probation_data")["request_id"]
        _inbox_item(live, rid)
        response = _answer(live, rid, status="answered", content={}, notify_e_address=True)
        assert response.status_code == 202, response.text
        note_id = response.json()["notification_message_id"]
        _portal_got(portal, rid, "eservice_answer")
        status = live.wait_for(note_id, timeout=WAIT)
        assert status["attempts"] >= 3
    finally:
        dvs.faults.set(FaultPlan(mode="none"))


# ---------------------------------------------------------------------------------------------
# Bad input and faults, each with its stable code


def test_forged_assertion_is_refused(env: tuple[Live, PortalSim], keys_dir: Path) -> None:
    _live, portal = env
    intruder = AssertionIssuer(
        Signer.from_files(keys_dir / "intruder-key.pem", keys_dir / "intruder-cert.pem")
    )
    canonical = portal.canonical(PERSONAS["client"], "my_probation_data", assertion=False)
    canonical["identity_assertion"] = intruder.issue(
        request_id=canonical["message_id"], personal_code="150390-12343", role="client"
    )
    assert _refused(portal, canonical) == "ESERVICE_IDENTITY_FORGED"


def test_altered_assertion_is_refused(env: tuple[Live, PortalSim]) -> None:
    _live, portal = env
    canonical = portal.canonical(PERSONAS["client"], "my_probation_data")
    xml = base64.b64decode(canonical["identity_assertion"]).replace(b">client<", b">employer<")
    canonical["identity_assertion"] = base64.b64encode(xml).decode()
    assert _refused(portal, canonical) == "ESERVICE_IDENTITY_FORGED"


def test_expired_assertion_is_refused(env: tuple[Live, PortalSim]) -> None:
    _live, portal = env
    canonical = portal.canonical(
        PERSONAS["client"],
        "my_probation_data",
        issued_at=datetime.now(UTC) - timedelta(hours=2),
        lifetime=300,
    )
    assert _refused(portal, canonical) == "ESERVICE_IDENTITY_EXPIRED"


def test_missing_assertion_and_one_for_another_request(env: tuple[Live, PortalSim]) -> None:
    _live, portal = env
    canonical = portal.canonical(PERSONAS["client"], "my_probation_data", assertion=False)
    assert _refused(portal, canonical) == "ESERVICE_IDENTITY_MISSING"
    other = portal.canonical(PERSONAS["client"], "my_probation_data")
    lifted = portal.canonical(
        PERSONAS["client"], "my_probation_data", assertion=other["identity_assertion"]
    )
    assert _refused(portal, lifted) == "ESERVICE_IDENTITY_NOT_FOR_REQUEST"


def test_unentitled_employer_is_refused_and_counted(env: tuple[Live, PortalSim]) -> None:
    live, portal = env
    before = _usage(live)
    canonical = portal.canonical(PERSONAS["unentitled_employer"], "probation_client_data")
    assert _refused(portal, canonical) == "ESERVICE_EMPLOYER_NOT_ENTITLED"
    key = ("probation_client_data", "employer", "refused")
    assert _usage(live).get(key, 0) == before.get(key, 0) + 1
    # An SIA at least 51 % municipal (PLUS gives the share) is entitled; at 50 % it is not.
    owned = PortalSim.persona("unentitled_employer", organisation_number="40003654321")
    for share, expected in ((50, "ESERVICE_EMPLOYER_NOT_ENTITLED"), (51, None)):
        _register(
            live,
            kind="employer",
            registration_number="40003654321",
            legal_form="limited_liability_company",
            state_share_percent=share,
        )
        canonical = portal.canonical(owned, "probation_client_data")
        if expected is None:
            assert portal.send(canonical)["Status"] == "ACCEPTED"
        else:
            assert _refused(portal, canonical) == expected


def test_other_persons_case_and_unassigned_client_are_refused(env: tuple[Live, PortalSim]) -> None:
    live, portal = env
    canonical = portal.canonical(
        PERSONAS["client"], "my_probation_data", subject=PERSONAS["minor_client"].personal_code
    )
    assert _refused(portal, canonical) == "ESERVICE_NOT_OWN_CASE"
    _register(
        live, kind="employer", registration_number="90000012345", legal_form="municipal_institution"
    )
    canonical = portal.canonical(
        PERSONAS["employer"],
        "employer_information",
        kind="submission",
        form="no_show_or_leaving",
        version="1.0",
        data={"client_id": "C-NOT-MINE", "kind": "no_show", "on": "2027-03-01"},
    )
    assert _refused(portal, canonical) == "ESERVICE_CLIENT_NOT_ASSIGNED"
    # A volunteer VPD never registered, and a client asking for an employer's e-service.
    stranger = PortalSim.persona("volunteer", personal_code="150390-12343")
    assert _refused(portal, portal.canonical(stranger, "probation_client_data")) == (
        "ESERVICE_PARTY_UNKNOWN"
    )
    assert _refused(portal, portal.canonical(PERSONAS["client"], "probation_client_data")) == (
        "ESERVICE_ROLE_NOT_PERMITTED"
    )


def test_unknown_form_version_and_schema_failure(env: tuple[Live, PortalSim]) -> None:
    live, portal = env

    def submit(form: str, version: str, data: Any) -> Any:
        return portal.canonical(
            PERSONAS["client"],
            "information_to_vpd",
            kind="submission",
            form=form,
            version=version,
            data=data,
        )

    assert _refused(portal, submit("tax_return", "1.0", {})) == "ESERVICE_FORM_UNKNOWN"
    assert _refused(portal, submit("change_of_details", "9.0", {})) == (
        "ESERVICE_FORM_VERSION_UNKNOWN"
    )
    bad = submit(
        "change_of_details",
        "1.0",
        {"case_number": "VPD 1", "change": "moon", "address": {"street": "x"}},
    )
    with pytest.raises(PartnerRejectedError) as caught:
        portal.send(bad)
    detail = caught.value.details[0]
    assert detail["detail_code"] == "ESERVICE_FORM_INVALID"
    # The journaled refusal names the field paths.
    rejections = [e for e in live.runtime.store.journal.for_message(bad["message_id"])] or None
    assert rejections is None or all("moon" not in (e.get("detail") or "") for e in rejections)


def test_form_errors_name_field_paths(env: tuple[Live, PortalSim]) -> None:
    live, _portal = env
    forms = live.runtime.eservices.forms
    form = forms.get("information_to_vpd", "change_of_details", "1.0")
    from gateway.eservices.errors import FormError

    with pytest.raises(FormError) as caught:
        forms.validate(
            form, json.dumps({"case_number": "VPD 1", "change": "moon", "address": {"street": "x"}})
        )
    paths = {d["path"] for d in caught.value.details}
    assert {"form_data", "form_data.case_number", "form_data.change", "form_data.address"} <= paths
    assert all("moon" not in d["message"] for d in caught.value.details)


def test_answer_for_unknown_or_answered_request(env: tuple[Live, PortalSim]) -> None:
    live, portal = env
    unknown = _answer(live, "EPORTAL-no-such", status="answered", content={})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "ESERVICE_REQUEST_UNKNOWN"
    rid = portal.request("client", "my_probation_data")["request_id"]
    _inbox_item(live, rid)
    first = _answer(live, rid, status="answered", content={"case": {"status": "active"}})
    assert first.status_code == 202
    again = _answer(live, rid, status="answered", content={"case": {"status": "active"}})
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]  # idempotent
    other = live.http.post(
        f"{live.gateway}/v1/eservices/requests/{rid}/answer",
        headers={"Idempotency-Key": "another-answer"},
        json={"status": "answered", "content": {"case": {"status": "closed"}}},
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "ESERVICE_ALREADY_ANSWERED"


def test_demo_walks_every_eservice(
    env: tuple[Live, PortalSim], capsys: pytest.CaptureFixture[str]
) -> None:
    live, _portal = env
    from gateway.eservices.demo import run_eservices_demo

    assert run_eservices_demo(live.settings, gateway_url=live.gateway, timeout=WAIT) == 0
    out = capsys.readouterr().out
    assert "ESERVICE_EMPLOYER_NOT_ENTITLED" in out
    assert "150390-12343" not in out  # the narration shows no personal code


def test_no_personal_data_in_logs(
    env: tuple[Live, PortalSim], capsys: pytest.CaptureFixture[str]
) -> None:
    live, portal = env
    rid = portal.request("client", "my_probation_data")["request_id"]
    _inbox_item(live, rid)
    response = _answer(live, rid, status="answered", content=OVERSHARED_CASE, notify_e_address=True)
    assert response.status_code == 202
    live.wait_for(response.json()["notification_message_id"])
    canonical = portal.canonical(
        PERSONAS["client"], "my_probation_data", subject=PERSONAS["minor_client"].personal_code
    )
    assert _refused(portal, canonical) == "ESERVICE_NOT_OWN_CASE"
    captured = capsys.readouterr()
    logs = captured.out + captured.err
    assert "e-service answer stripped" in logs  # the logs were captured
    for value in ("150390-12343", "120312-20566", "010170-10101", "Ilze", "Kalniņš"):
        assert value not in logs
