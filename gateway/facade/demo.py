"""``plus-gateway demo volunteering`` (``make demo-volunteering``): the facade, narrated.

Against a running gateway (``make run``): an organisation publishes an opportunity; the
public list shows it without a login; an anonymous volunteer (an alias, nothing else)
registers and applies; the organiser approves; both record the hours of a day, the records
match and the organiser approves them; the organiser issues a certificate, sealed with PAdES;
anyone verifies it by number, and a copy with one changed byte is refused.

Tokens are minted with the development issuer's key (``var/keys/facade-issuer-key.pem``),
exactly as ``plus-gateway facade token`` does.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gateway.config import Settings
from gateway.facade.auth import mint_token
from gateway.facade.keys import issuer_paths
from gateway.facade.service import PREFIX

__all__ = ["DEMO_ORGANISATION", "run_volunteering_demo"]

#: The demo organisation's registration number.
DEMO_ORGANISATION = "40008000001"


def _say(step: str, text: str) -> None:
    print(f"\n== {step}\n{text}")


def _show(response: httpx.Response, limit: int = 900) -> None:
    text = response.text
    with contextlib.suppress(ValueError):  # not JSON: show it as it came
        text = json.dumps(response.json(), indent=2, ensure_ascii=False)
    print(f"-> {response.status_code} {text[:limit]}{' ...' if len(text) > limit else ''}")


def run_volunteering_demo(settings: Settings, *, gateway_url: str | None = None) -> int:
    """Run the walkthrough; 0 when the sealed certificate verified and the altered copy did
    not."""
    base = (gateway_url or settings.api.base_url()).rstrip("/")
    api = f"{base}{PREFIX}"
    key, _ = issuer_paths(settings)

    def token(role: str, subject: str, organisation: str | None = None) -> dict[str, str]:
        jwt = mint_token(
            settings.facade.auth,
            subject=subject,
            roles=[role],
            organisation=organisation,
            key_path=key,
        )
        return {"Authorization": f"Bearer {jwt}"}

    org_user = token("organisation_user", "demo-coordinator", DEMO_ORGANISATION)
    volunteer = token("volunteer", f"demo-volunteer-{uuid.uuid4().hex[:8]}")
    with httpx.Client(timeout=30) as http:
        ready = http.get(f"{base}/ready")
        _say("0. Is the gateway ready?", f"GET {base}/ready -> {ready.status_code}")
        if ready.status_code != 200:
            print("Start it first with `make run`.")
            return 1

        _say("1. An organisation registers and publishes an opportunity", f"POST {api}/...")
        profile = {
            "registration_number": DEMO_ORGANISATION,
            "name": "Biedrība “Zaļā Daugava”",
            "type": "association",
            "field": "environment",
            "municipality": "Rīgas valstspilsēta",
            "goals": "Tīri krasti un dzīva upe",
            "contacts": {"email": "info@zala-daugava.example", "phone": "+371 20000000"},
            "website": "https://zala-daugava.example",
            "support": {"training": True, "insurance": True, "certificates": True},
        }
        created = http.post(f"{api}/organisations", json=profile, headers=org_user)
        if created.status_code == 409:
            created = http.put(
                f"{api}/organisations/{DEMO_ORGANISATION}", json=profile, headers=org_user
            )
        print(f"organisation: {created.status_code}")
        now = datetime.now(UTC)
        opportunity = {
            "title": "Daugavas krastu talka / River bank clean-up",
            "place": {"city": "Rīga", "municipality": "Rīgas valstspilsēta"},
            "starts_at": (now + timedelta(days=20)).replace(microsecond=0).isoformat(),
            "ends_at": (now + timedelta(days=20, hours=4)).replace(microsecond=0).isoformat(),
            "expected_hours": 4,
            "duties": "Savākt atkritumus, šķirot tos, palīdzēt koordinatoriem.",
            "deadline": (now + timedelta(days=14)).replace(microsecond=0).isoformat(),
            "desired_profile": "Laba fiziskā forma",
            "skills": ["komandas darbs"],
            "volunteers_needed": 12,
            "benefits": "Pusdienas, apdrošināšana, izziņa",
            "kind": "one_off",
        }
        posted = http.post(
            f"{api}/organisations/{DEMO_ORGANISATION}/opportunities",
            json=opportunity,
            headers=org_user,
        )
        _show(posted, 400)
        if posted.status_code != 201:
            return 1
        opp_id = posted.json()["id"]

        _say("2. Anyone lists current opportunities, no login", f"GET {api}/opportunities")
        page = http.get(f"{api}/opportunities", params={"q": "talka", "per_page": 3}).json()
        for item in page["items"]:
            print(
                f"  #{item['id']} {item['title']} — {item['place']['city']}, deadline "
                f"{item['deadline'][:10]}, applied {item['applied']}/{item['volunteers_needed']}"
            )
        print(f"  ({page['total']} matching; also as {api}/opportunities.ics and .jsonld)")

        _say(
            "3. A volunteer registers without personal data (an alias only) and applies",
            f"POST {api}/volunteers {{mode: anonymous, alias}}",
        )
        reg = http.post(
            f"{api}/volunteers",
            json={"mode": "anonymous", "alias": "Saulespuķe"},
            headers=volunteer,
        )
        _show(reg, 300)
        applied = http.post(
            f"{api}/opportunities/{opp_id}/applications",
            json={"motivation": "Gribu palīdzēt"},
            headers=volunteer,
        )
        _show(applied, 300)
        if applied.status_code != 201:
            return 1
        app_id = applied.json()["id"]
        approved = http.post(f"{api}/applications/{app_id}/approve", headers=org_user)
        print(f"organiser approves the application -> {approved.status_code}")

        day = (now - timedelta(days=1)).date().isoformat()
        _say(
            "4. Both record the hours; the records match; the organiser approves them",
            f"PUT {api}/applications/{app_id}/hours/{day}",
        )
        http.put(f"{api}/applications/{app_id}/hours/{day}", json={"hours": 3.5}, headers=volunteer)
        recorded = http.put(
            f"{api}/applications/{app_id}/hours/{day}", json={"hours": 3.5}, headers=org_user
        )
        print(f"state after both records: {recorded.json().get('state')}")
        final = http.post(f"{api}/applications/{app_id}/hours/{day}/approve", headers=org_user)
        _show(final, 300)

        _say("5. The organiser issues a sealed certificate", f"POST {api}/certificates/.../approve")
        draft = http.post(
            f"{api}/organisations/{DEMO_ORGANISATION}/certificates",
            json={"application_id": app_id, "competences": ["Komandas darbs", "Vides izpratne"]},
            headers=org_user,
        )
        cert_id = draft.json()["id"]
        issued = http.post(f"{api}/certificates/{cert_id}/approve", headers=org_user)
        _show(issued, 600)
        if issued.status_code != 200:
            return 1
        number = issued.json()["number"]
        pdf = http.get(f"{api}/certificates/{cert_id}/pdf", headers=volunteer).content
        digest = hashlib.sha256(pdf).hexdigest()
        print(f"PDF: {len(pdf)} bytes, sha256 {digest}")

        _say("6. Anyone verifies it", f"GET {api}/certificates/{number}/verify?sha256=...")
        check = http.get(f"{api}/certificates/{number}/verify", params={"sha256": digest})
        _show(check, 600)
        altered = bytearray(pdf)
        altered[len(altered) // 3] ^= 0x01
        refused = http.post(
            f"{api}/certificates/verify",
            json={"pdf_base64": base64.b64encode(bytes(altered)).decode()},
        )
        print("a copy with one changed byte:")
        _show(refused, 400)
        ok: dict[str, Any] = check.json()
        if not (ok.get("authentic") and ok.get("unchanged") and refused.status_code == 422):
            return 1
    print("\nThe certificate is authentic and unchanged; the altered copy was refused.")
    return 0
