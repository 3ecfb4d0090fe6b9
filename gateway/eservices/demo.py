"""``plus-gateway demo eservices``: one round trip of each e-service against a running gateway.

The portal simulator (:class:`~gateway.eservices.portal.PortalSim`, the demo keys of
``plus-gateway keys init``) sends as a client, an employer, a VPD volunteer and an unentitled
employer, each with the platform's signed identity assertion; this script plays PLUS on the
local API (registers the parties, reads the pending requests, answers, sends a work
assignment) and shows what reached the portal (through the E-case platform simulator) and DVS.
PLUS's answers over-share on purpose: the demo shows what the gateway strips.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from gateway.config import Settings
from gateway.errors import PartnerRejectedError
from gateway.eservices.portal import PERSONAS, PortalSim

__all__ = ["run_eservices_demo"]


def _say(step: str, text: str) -> None:
    print(f"\n== {step}\n{text}")


class _Demo:
    def __init__(self, settings: Settings, base: str, http: httpx.Client, timeout: float) -> None:
        self.settings = settings
        self.base = base
        self.http = http
        self.timeout = timeout
        platform = settings.simulators["ecase"]
        self.sim = f"http://{platform.host}:{platform.port}"
        dvs = settings.simulators.get(settings.eservices.dvs or "")
        self.dvs = f"http://{dvs.host}:{dvs.port}" if dvs else None
        self.portal = PortalSim(settings)

    def portal_got(self, request_id: str, message_type: str) -> dict[str, Any] | None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            got = self.http.get(f"{self.sim}/sim/ecase/received/portal").json()
            for r in got.get("received", []):
                canonical = r.get("canonical", {})
                if r.get("message_type") == message_type and (
                    canonical.get("request_id") == request_id
                    or canonical.get("assignment_id") == request_id
                ):
                    return dict(canonical)
            time.sleep(0.2)
        return None

    def answer(self, request_id: str, **body: Any) -> dict[str, Any]:
        response = self.http.post(
            f"{self.base}/v1/eservices/requests/{request_id}/answer", json=body
        )
        print(f"POST /v1/eservices/requests/{request_id}/answer -> {response.status_code}")
        out: dict[str, Any] = response.json()
        if response.status_code == 202:
            print(f"stripped by the gateway: {json.dumps(out['scope'], ensure_ascii=False)}")
        return out

    def round_trip(
        self, step: str, persona: str, eservice: str, answer: dict[str, Any], **kwargs: Any
    ) -> bool:
        _say(step, f"the portal sends {eservice} as {persona} (signed identity assertion)")
        sent = self.portal.request(persona, eservice, **kwargs)
        rid = sent["request_id"]
        print(f"acknowledged: {sent['ack'].get('Status')}  request {rid}")
        pending = self.http.get(
            f"{self.base}/v1/eservices/requests", params={"status": "pending"}
        ).json()
        print(f"PLUS sees {len(pending['requests'])} pending request(s)")
        self.answer(rid, **answer)
        got = self.portal_got(rid, "eservice_answer")
        if got is None:
            print("the answer did not reach the portal")
            return False
        print(f"the portal got: {got.get('content')}")
        return True


def run_eservices_demo(
    settings: Settings, *, gateway_url: str | None = None, timeout: float = 30.0
) -> int:
    """Run the walkthrough; 0 when every round trip completed and the refusal was refused."""
    base = (gateway_url or settings.api.base_url()).rstrip("/")
    headers = {}
    if settings.api.api_key:
        headers["X-API-Key"] = settings.api.api_key.get_secret_value()
    with httpx.Client(timeout=timeout, headers=headers) as http:
        if http.get(f"{base}/ready").status_code != 200:
            print("The gateway is not ready. Start it first with `make run`.")
            return 1
        demo = _Demo(settings, base, http, timeout)
        employer = PERSONAS["employer"]
        _say("0. PLUS registers an employer and a VPD volunteer", "PUT /v1/eservices/parties")
        http.put(
            f"{base}/v1/eservices/parties",
            json={
                "kind": "employer",
                "registration_number": employer.organisation_number,
                "legal_form": employer.legal_form,
                "clients": ["C-1"],
            },
        ).raise_for_status()
        http.put(
            f"{base}/v1/eservices/parties",
            json={
                "kind": "volunteer",
                "personal_code": PERSONAS["volunteer"].personal_code,
                "volunteer_kind": "companion",
                "clients": ["C-1"],
            },
        ).raise_for_status()
        clients = {
            "clients": [
                {
                    "client_id": c,
                    "given_name": "Anna",
                    "family_name": "Liepa",
                    "minor": False,
                    "personal_code": "150390-12343",
                    "work": {"hours_assigned": 80},
                }
                for c in ("C-1", "C-9")
            ]
        }
        ok = demo.round_trip(
            "1. My probation data (client)",
            "client",
            "my_probation_data",
            {
                "status": "answered",
                "notify_e_address": True,
                "content": {
                    "case": {
                        "status": "active",
                        "hours": {"worked": 40},
                        "risk_assessment": {"level": "high"},
                    }
                },
            },
        )
        ok &= demo.round_trip(
            "2. Probation client data (employer: C-9 is not its client)",
            "employer",
            "probation_client_data",
            {"status": "answered", "content": clients},
        )
        ok &= demo.round_trip(
            "2b. Probation client data (VPD volunteer, a companion: same clients' rule)",
            "volunteer",
            "probation_client_data",
            {"status": "answered", "content": clients},
        )
        ok &= demo.round_trip(
            "3. Information to VPD (client form change_of_details 1.0)",
            "client",
            "information_to_vpd",
            {
                "status": "accepted",
                "content": {"status": "registered", "answer": {"text": "Paldies"}},
            },
            kind="submission",
            form="change_of_details",
            version="1.0",
            data={
                "case_number": "VPD-2026-0451",
                "change": "residence",
                "effective_from": "2027-03-01",
            },
        )
        _say(
            "4. PLUS sends a work assignment to the employer (OUT-09)",
            "POST /v1/outbound/work_assignment",
        )
        out = http.post(
            f"{base}/v1/outbound/work_assignment",
            headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"},
            json={
                "assignment_id": "WA-DEMO-1",
                "client_id": "C-2",
                "employer_registration_number": employer.organisation_number,
                "content": json.dumps({"hours_assigned": 80}),
            },
        )
        print(f"-> {out.status_code}")
        ok &= demo.portal_got("WA-DEMO-1", "work_assignment") is not None
        ok &= demo.round_trip(
            "5. Employer information to VPD (schedule agreement, ES-24)",
            "employer",
            "employer_information",
            {"status": "accepted", "content": {"status": "agreed"}},
            kind="submission",
            form="schedule_agreement",
            version="1.0",
            data={"assignment_id": "WA-DEMO-1", "client_id": "C-2", "decision": "agreed"},
        )
        _say("6. An employer the law does not entitle (a private SIA)", "refused at the gateway")
        try:
            demo.portal.request("unentitled_employer", "probation_client_data")
            print("accepted: that is wrong")
            ok = False
        except PartnerRejectedError as exc:
            print(f"refused: {exc.details[0].get('detail_code') if exc.details else exc.code}")
        if demo.dvs:
            got = http.get(f"{demo.dvs}/sim/dvs/received").json()
            _say(
                "7. DVS notified the client's official e-address",
                f"{len(got.get('received', []))} notification(s) at the DVS simulator",
            )
    print("\nEvery e-service made its round trip." if ok else "\nSomething did not arrive.")
    return 0 if ok else 1
