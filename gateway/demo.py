"""``plus-gateway demo``: both TIS flows against a running gateway, narrated."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx

from gateway.config import Settings

__all__ = ["run_demo"]


def _say(step: str, text: str) -> None:
    print(f"\n== {step}\n{text}")


def run_demo(settings: Settings, *, gateway_url: str | None = None, timeout: float = 30.0) -> int:
    """Run the walkthrough; returns 0 when both flows completed."""
    base = (gateway_url or settings.api.base_url()).rstrip("/")
    sim_cfg = settings.simulators["tis"]
    sim = f"http://{sim_cfg.host}:{sim_cfg.port}"
    headers = {}
    if settings.api.api_key:
        headers["X-API-Key"] = settings.api.api_key.get_secret_value()
    with httpx.Client(timeout=timeout, headers=headers) as http:
        ready = http.get(f"{base}/ready")
        _say("0. Is the gateway ready?", f"GET {base}/ready -> {ready.status_code} {ready.text}")
        if ready.status_code != 200:
            print("Start it first with `make run`.")
            return 1

        _say(
            "1. TIS sends a court ruling",
            "The TIS simulator signs a CourtRuling with its key and posts it to /soap/tis.",
        )
        ack = http.post(f"{sim}/sim/tis/send/SubmitCourtRuling")
        print(f"acknowledgement from the gateway: {ack.text}")
        if ack.status_code != 200:
            return 1
        sent_id = ack.json().get("MessageId")

        _say("2. PLUS pulls its inbox", f"GET {base}/v1/inbox")
        page = http.get(f"{base}/v1/inbox", params={"limit": 500}).json()
        item = next((i for i in page["items"] if i["partner_message_id"] == sent_id), None)
        if item is None:
            print("the ruling is not in the inbox")
            return 1
        ruling = item["message"]
        print(
            f"found {item['message_type']} {item['id']}: case {ruling['case']['number']}, "
            f"sentence {ruling.get('sentence_kind')}, received {item['received_at']}"
        )
        acked = http.post(f"{base}/v1/inbox/{item['id']}/ack")
        print(f"POST /v1/inbox/{item['id']}/ack -> {acked.status_code}")

        _say(
            "3. PLUS sends a notification on execution",
            f"POST {base}/v1/outbound/tis.execution_notification with an Idempotency-Key",
        )
        sample = Path(settings.paths.samples) / "tis" / "execution_notification" / "valid.json"
        body = json.loads(sample.read_text(encoding="utf-8"))
        key = f"demo-{uuid.uuid4()}"
        accepted = http.post(
            f"{base}/v1/outbound/tis.execution_notification",
            json=body,
            headers={"Idempotency-Key": key},
        )
        print(f"-> {accepted.status_code} {accepted.text}")
        if accepted.status_code != 202:
            return 1
        message_id = accepted.json()["id"]

        _say("4. The worker delivers it to TIS", f"GET {base}/v1/messages/{message_id}")
        deadline = time.monotonic() + timeout
        status: dict[str, object] = {}
        while time.monotonic() < deadline:
            status = http.get(f"{base}/v1/messages/{message_id}").json()
            if status["status"] in ("delivered", "dead"):
                break
            time.sleep(0.3)
        print(json.dumps(status, indent=2, ensure_ascii=False))
        if status.get("status") != "delivered":
            return 1
        got = http.get(f"{sim}/sim/tis/received/{message_id}").json()
        _say(
            "5. What TIS received",
            f"{got['operation']} {got['message_id']}, signature verified: "
            f"{got['signature_verified']}, execution status {got['canonical']['execution_status']}",
        )
    print("\nBoth flows worked.")
    return 0
