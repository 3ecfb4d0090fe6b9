"""``plus-gateway demo``: reply routing through E-case against a running gateway, narrated.

An institution asks for an evaluation report through the E-case platform; PLUS pulls it,
answers with an evaluation report that names only the request, and the gateway routes the
answer back to that institution through the platform. Nothing in PLUS's answer says where it
goes. ``make demo`` runs it for the prison administration; any E-case institution that sends
evaluation report requests will do, which is the point of a universal contract.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from gateway.config import Settings

__all__ = ["run_demo"]

REQUEST = "evaluation_report_request"


def _say(step: str, text: str) -> None:
    print(f"\n== {step}\n{text}")


def _wait_delivered(http: httpx.Client, base: str, message_id: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = http.get(f"{base}/v1/messages/{message_id}").json()
        if status["status"] in ("delivered", "dead"):
            break
        time.sleep(0.3)
    return status


def _asking(settings: Settings, institution: str | None) -> str | None:
    candidates = [
        name
        for name, cfg in settings.institutions.items()
        if cfg.channel == "ecase" and REQUEST in cfg.sends
    ]
    if institution is None:
        return candidates[0] if candidates else None
    return institution if institution in candidates else None


def run_demo(
    settings: Settings,
    *,
    gateway_url: str | None = None,
    institution: str | None = None,
    timeout: float = 30.0,
) -> int:
    """Run the walkthrough; returns 0 when the request and the routed answer both arrived.

    ``institution`` asks (an E-case institution that sends evaluation report requests); by
    default the first configured one.
    """
    asking = _asking(settings, institution)
    if asking is None:
        print(f"no E-case institution {institution or ''} sends {REQUEST}; see config.yaml")
        return 2
    base = (gateway_url or settings.api.base_url()).rstrip("/")
    platform = settings.simulators["ecase"]
    sim = f"http://{platform.host}:{platform.port}"
    headers = {}
    if settings.api.api_key:
        headers["X-API-Key"] = settings.api.api_key.get_secret_value()
    with httpx.Client(timeout=timeout, headers=headers) as http:
        ready = http.get(f"{base}/ready")
        _say("0. Is the gateway ready?", f"GET {base}/ready -> {ready.status_code}")
        if ready.status_code != 200:
            print(ready.text)
            print("Start it first with `make run`.")
            return 1

        _say(
            f"1. {asking.upper()} asks for an evaluation report, through E-case",
            f"The simulated {asking.upper()} signs an EvaluationReportRequest with its own key; "
            "the header names it as client and PLUS as service; the platform routes it to "
            f"{base}/soap/ecase.",
        )
        ack = http.post(f"{sim}/sim/ecase/send/{asking}/{REQUEST}")
        print(f"acknowledgement: {ack.text}")
        if ack.status_code != 200:
            return 1
        request_id = ack.json().get("MessageId")

        _say("2. PLUS pulls its inbox", f"GET {base}/v1/inbox")
        page = http.get(f"{base}/v1/inbox", params={"limit": 500}).json()
        item = next((i for i in page["items"] if i["partner_message_id"] == request_id), None)
        if item is None:
            print("the request is not in the inbox")
            return 1
        print(
            f"{item['message_type']} {item['id']} from institution {item['institution']!r}, "
            f"its MessageId {request_id}, purpose {item['message'].get('purpose')}"
        )
        http.post(f"{base}/v1/inbox/{item['id']}/ack")

        sample = Path(settings.paths.samples) / "evaluation_report" / "valid.json"
        body = json.loads(sample.read_text(encoding="utf-8"))
        body["request_message_id"] = request_id
        body.pop("addressee", None)
        _say(
            "3. PLUS answers, naming only the request",
            f"POST {base}/v1/outbound/evaluation_report with request_message_id={request_id} "
            "and no addressee",
        )
        accepted = http.post(
            f"{base}/v1/outbound/evaluation_report",
            json=body,
            headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"},
        )
        print(f"-> {accepted.status_code} {accepted.text}")
        if accepted.status_code != 202:
            return 1
        message_id = accepted.json()["id"]
        print(f"reply routing resolved the addressee: {accepted.json()['institution']!r}")

        _say("4. The worker delivers it through E-case", f"GET {base}/v1/messages/{message_id}")
        status = _wait_delivered(http, base, message_id, timeout)
        print(json.dumps(status, indent=2, ensure_ascii=False))
        if status.get("status") != "delivered":
            return 1
        got = http.get(f"{sim}/sim/ecase/received/{asking}").json()
        items = got if isinstance(got, list) else got.get("received", [])
        mine = [r for r in items if r.get("message_id") == message_id]
        # The record only, not the report: it is about a (fictional) person.
        shown = ("institution", "message_id", "message_type", "received_at", "user_id")
        _say(
            f"5. What {asking.upper()} received through the platform",
            json.dumps([{k: r.get(k) for k in shown} for r in mine], indent=2)
            if mine
            else "nothing: the answer did not arrive",
        )
        if not mine:
            return 1
    print(f"\nThe answer went back to {asking.upper()} without PLUS naming it.")
    return 0
