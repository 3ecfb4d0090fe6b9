"""Local-API mode: what a PLUS integrator checks against the gateway's JSON API.

For every message type PLUS sends (mapping direction ``outbound``): the valid JSON sample is
accepted (``202``, and with ``--sim`` delivered), the same ``Idempotency-Key`` and body answer
the same id with ``Idempotent-Replayed``, the same key with another body is ``409``, no key is
``400 IDEMPOTENCY_KEY_REQUIRED``, and every ``invalid-*.json`` sample is ``422`` with its code
and field path (tests/samples/invalid.yaml). Then the inbox: the cursor pages forward, every
item's message validates against its type's JSON Schema, an ack is idempotent and takes the
message out of the default page, and acking an unknown id is ``404``. Then the synchronous
queries: for every query and each institution that answers it, a verified answer whose data
validates against the answer type; every ``invalid-*.json`` query sample is ``422`` with its
code and field path.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from gateway.errors import GatewayError
from gateway.harness.cases import Case, ContractModel, declared_codes
from gateway.harness.report import Plan, Result
from gateway.harness.transport import Transport, Wire
from gateway.mapping import MessageMapping

__all__ = ["LocalApiMode"]

_JSON = {"Content-Type": "application/json"}


class LocalApiMode:
    """Cases and their execution against the gateway's local JSON API."""

    name = "local"
    institution = "plus"

    def __init__(
        self,
        *,
        contract: ContractModel,
        transport: Transport,
        base_url: str,
        wait_delivery: bool = False,
        delivery_timeout: float = 30.0,
        refresh: Callable[[str], str | None] | None = None,
    ) -> None:
        self.contract = contract
        self.transport = transport
        self.base = base_url.rstrip("/")
        self.wait_delivery = wait_delivery
        self.delivery_timeout = delivery_timeout
        #: Makes a fresh message like the inbound sample an id names (``--sim``), so each
        #: case's reply answers a request of its own; None: the samples' ids as they are.
        self.refresh = refresh

    def plan(self) -> tuple[Plan, list[Case]]:
        """Cases per outbound message type, then the inbox."""
        cases: list[Case] = []
        operations = set()
        received = {t for i in self.contract.settings.institutions.values() for t in i.receives}
        for mapping in self.contract.ecase_mappings():
            # Only what the configuration can route: a type no institution receives is 422.
            if mapping.direction != "outbound" or mapping.message_type not in received:
                continue
            op = f"POST /v1/outbound/{mapping.message_type}"
            operations.add(op)
            base: dict[str, Any] = dict(
                mode=self.name,
                institution=self.institution,
                operation=op,
                message_type=mapping.message_type,
            )
            prefix = f"local.{mapping.message_type}"
            cases += [
                Case(
                    id=f"{prefix}.valid",
                    kind="json-valid",
                    expect="HTTP 202",
                    title=f"{mapping.message_type}: valid JSON accepted"
                    + (" and delivered" if self.wait_delivery else ""),
                    **base,
                ),
                Case(
                    id=f"{prefix}.idempotent-replay",
                    kind="idem-replay",
                    expect="HTTP 202",
                    title=f"{mapping.message_type}: same key and body give the same id",
                    **base,
                ),
                Case(
                    id=f"{prefix}.idempotency-conflict",
                    kind="idem-conflict",
                    expect="HTTP 409",
                    title=f"{mapping.message_type}: same key, other body",
                    **base,
                ),
                Case(
                    id=f"{prefix}.idempotency-key-missing",
                    kind="idem-missing",
                    expect="IDEMPOTENCY_KEY_REQUIRED",
                    title=f"{mapping.message_type}: no Idempotency-Key",
                    **base,
                ),
            ]
            cases += self._invalid_cases(
                mapping, "json-invalid", prefix, mapping.message_type, base
            )
        answered = {
            q: sorted(n for n, i in self.contract.settings.institutions.items() if q in i.answers)
            for q in {q for i in self.contract.settings.institutions.values() for q in i.answers}
        }
        for query, institutions in sorted(answered.items()):
            mapping = self.contract.mappings.query_request(query)
            op = f"POST /v1/queries/{query}"
            operations.add(op)
            base = dict(
                mode=self.name,
                institution=self.institution,
                operation=op,
                message_type=mapping.message_type,
            )
            for asked in institutions:
                cases.append(
                    Case(
                        id=f"local.{query}.{asked}.valid",
                        kind="query-valid",
                        expect="HTTP 200",
                        title=f"{query} query to {asked}: a verified answer",
                        params={"asked": asked, "query": query},
                        **base,
                    )
                )
            cases += self._invalid_cases(
                mapping,
                "query-invalid",
                f"local.{query}",
                f"{query} query",
                base,
                asked=institutions[0],
                query=query,
            )
        for kind, title, expect in (
            ("inbox-cursor", "the inbox cursor pages forward", "HTTP 200"),
            ("inbox-schema", "every inbox message validates against its JSON Schema", "valid"),
            ("inbox-ack", "ack is idempotent and leaves the default page", "HTTP 200"),
            ("inbox-ack-unknown", "ack of an unknown id", "HTTP 404"),
        ):
            operations.add("GET /v1/inbox" if kind != "inbox-ack" else "POST /v1/inbox/{id}/ack")
            cases.append(
                Case(
                    id=f"local.{kind}",
                    mode=self.name,
                    institution=self.institution,
                    kind=kind,
                    title=title,
                    expect=expect,
                    operation="GET /v1/inbox"
                    if kind in ("inbox-cursor", "inbox-schema")
                    else "POST /v1/inbox/{id}/ack",
                )
            )
        codes = set(declared_codes(soap=False)) | {"IDEMPOTENCY_KEY_REQUIRED"}
        return Plan(self.name, self.institution, operations, codes), cases

    # -- running ----------------------------------------------------------------------------

    def _invalid_cases(
        self,
        mapping: MessageMapping,
        kind: str,
        prefix: str,
        title: str,
        base: dict[str, Any],
        **params: Any,
    ) -> list[Case]:
        """One case per invalid JSON sample of ``mapping``, expecting its listed code and
        field path (tests/samples/invalid.yaml)."""
        cases = []
        for path, code in self.contract.invalid_samples(mapping, ".json"):
            rel = f"{mapping.message_type}/{path.name}"
            field = (self.contract.invalid_expect.get(rel) or {}).get("path")
            cases.append(
                Case(
                    id=f"{prefix}.{path.stem}",
                    kind=kind,
                    expect=code,
                    title=f"{title}: {path.name}",
                    params={"path": path, "field": field, **params},
                    **base,
                )
            )
        return cases

    def _post(self, message_type: str, body: bytes, key: str | None) -> Wire:
        headers = dict(_JSON)
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.transport.request(
            "POST", f"{self.base}/v1/outbound/{message_type}", content=body, headers=headers
        )

    def run(self, case: Case) -> Result:
        """Run one case."""
        kind = case.kind
        if kind.startswith("inbox"):
            return self._inbox(case)
        if kind.startswith("query-"):
            return self._query(case)
        assert case.message_type is not None
        mapping = self.contract.mappings.get(case.message_type)
        valid = self.contract.valid_canonical(mapping)
        fresh = self._fresh_references(valid)
        body = _replace(json.dumps(valid).encode(), fresh)
        key = f"harness-{uuid.uuid4()}"
        if kind == "json-valid":
            wire = self._post(case.message_type, body, key)
            bad = _status(wire, 202)
            if bad:
                return Result(case, "failed", bad, [wire], observed=_observed(wire))
            if not self.wait_delivery:
                return Result(
                    case, "passed", "202 accepted", [wire], observed="HTTP 202", exercised=True
                )
            message_id = _json(wire).get("id")
            return self._delivered(case, wire, str(message_id))
        if kind == "idem-replay":
            first = self._post(case.message_type, body, key)
            again = self._post(case.message_type, body, key)
            wires = [first, again]
            bad = _status(first, 202) or _status(again, 202)
            if bad:
                return Result(case, "failed", bad, wires, observed=_observed(again))
            if _json(first).get("id") != _json(again).get("id"):
                return Result(case, "failed", "the repeat answered another message id", wires)
            if again.response_headers.get("idempotent-replayed") != "true":
                return Result(case, "failed", "the repeat lacks Idempotent-Replayed: true", wires)
            return Result(
                case,
                "passed",
                "same id for the repeat, Idempotent-Replayed",
                wires,
                observed="HTTP 202",
                exercised=True,
            )
        if kind == "idem-conflict":
            first = self._post(case.message_type, body, key)
            other = json.loads(body)
            if not _change_one_text(other):
                return Result(case, "skipped", "the sample has no field to change")
            again = self._post(case.message_type, json.dumps(other).encode(), key)
            wires = [first, again]
            bad = _status(first, 202) or _status(again, 409)
            return Result(
                case,
                "failed" if bad else "passed",
                bad or "409 for another body",
                wires,
                observed=_observed(again),
                exercised=not bad,
            )
        if kind == "idem-missing":
            wire = self._post(case.message_type, body, None)
            return self._expect_error(case, wire, 400, "IDEMPOTENCY_KEY_REQUIRED", None)
        if kind == "json-invalid":
            path = case.params["path"]
            wire = self._post(case.message_type, _replace(path.read_bytes(), fresh), key)
            return self._expect_error(case, wire, 422, case.expect, case.params.get("field"))
        raise ValueError(f"unknown case kind {kind}")

    def _fresh_references(self, sample: dict[str, Any]) -> dict[str, str]:
        """Old id -> fresh id for each inbound message the sample names (see ``refresh``)."""
        if self.refresh is None:
            return {}
        from gateway.sim.answers import string_leaves

        out: dict[str, str] = {}
        for value in set(string_leaves(sample)):
            new = self.refresh(value)
            if new is not None:
                out[value] = new
        return out

    def _query(self, case: Case) -> Result:
        assert case.message_type is not None
        mapping = self.contract.mappings.get(case.message_type)
        if case.kind == "query-valid":
            data = self.contract.valid_canonical(mapping)
        else:
            data = json.loads(case.params["path"].read_text("utf-8"))
        # The gateway stamps its own fields (message id, time): PLUS sends the rest.
        query = {k: v for k, v in data.items() if k not in mapping.gateway_fields}
        body = {
            "institution": case.params["asked"],
            "purpose": "conformance harness",
            "officer_id": "HARNESS",
            "case_id": "HARNESS-1",
            "query": query,
        }
        wire = self.transport.request(
            "POST",
            f"{self.base}/v1/queries/{case.params['query']}",
            content=json.dumps(body).encode(),
            headers=_JSON,
        )
        if case.kind == "query-invalid":
            return self._expect_error(case, wire, 422, case.expect, case.params.get("field"))
        bad = _status(wire, 200)
        if bad:
            return Result(case, "failed", bad, [wire], observed=_observed(wire))
        answer = _json(wire)
        answer_mapping = self.contract.mappings.query_answer(str(case.params["query"]))
        try:
            answer_mapping.validate_canonical(answer.get("data"))
        except GatewayError as exc:
            return Result(
                case,
                "failed",
                f"the answer's data is not a valid {answer_mapping.message_type}: {exc.code}",
                [wire],
            )
        return Result(
            case,
            "passed",
            f"answer {answer.get('status')}, data valid",
            [wire],
            observed="HTTP 200",
            exercised=True,
        )

    def _expect_error(
        self, case: Case, wire: Wire, status: int, code: str, field: str | None
    ) -> Result:
        bad = _status(wire, status)
        observed = _observed(wire)
        if bad:
            return Result(case, "failed", bad, [wire], observed=observed)
        error = _json(wire).get("error") or {}
        if error.get("code") != code:
            return Result(
                case,
                "failed",
                f"expected code {code}, got {error.get('code')}",
                [wire],
                observed=observed,
            )
        if field is not None:
            paths = [str(d.get("path")) for d in error.get("details") or [] if isinstance(d, dict)]
            if field not in paths:
                return Result(
                    case,
                    "failed",
                    f"no error detail names the field {field} "
                    f"(paths: {', '.join(paths) or 'none'})",
                    [wire],
                    observed=observed,
                )
        return Result(
            case,
            "passed",
            f"{status} {code}" + (f" at {field}" if field else ""),
            [wire],
            observed=code,
            exercised=True,
        )

    def _delivered(self, case: Case, accepted: Wire, message_id: str) -> Result:
        deadline = time.monotonic() + self.delivery_timeout
        wire = accepted
        status = ""
        while time.monotonic() < deadline:
            wire = self.transport.request("GET", f"{self.base}/v1/messages/{message_id}")
            status = str(_json(wire).get("status", ""))
            if status in ("delivered", "dead"):
                break
            time.sleep(0.1)
        wires = [accepted, wire]
        if status != "delivered":
            error = _json(wire).get("last_error") or ""
            return Result(
                case,
                "failed",
                f"accepted but {status or 'unknown'} after "
                f"{self.delivery_timeout:g} s {error}".strip(),
                wires,
                observed=status,
            )
        return Result(
            case,
            "passed",
            "202 accepted, then delivered",
            wires,
            observed="HTTP 202",
            exercised=True,
        )

    def _inbox(self, case: Case) -> Result:
        url = f"{self.base}/v1/inbox"
        if case.kind == "inbox-ack-unknown":
            wire = self.transport.request("POST", f"{url}/harness-no-such-id/ack")
            bad = _status(wire, 404)
            return Result(
                case,
                "failed" if bad else "passed",
                bad or "404 for an unknown id",
                [wire],
                observed=_observed(wire),
                exercised=not bad,
            )
        first = self.transport.request("GET", url, params={"after": 0, "limit": 2})
        bad = _status(first, 200)
        if bad:
            return Result(case, "failed", bad, [first], observed=_observed(first))
        page = _json(first)
        items = page.get("items") or []
        if case.kind == "inbox-cursor":
            if not items:
                return Result(case, "skipped", "the inbox is empty: nothing to page", [first])
            nxt = self.transport.request(
                "GET", url, params={"after": int(page.get("next_cursor", 0)), "limit": 2}
            )
            later = _json(nxt).get("items") or []
            last = max(int(i["cursor"]) for i in items)
            if any(int(i["cursor"]) <= last for i in later):
                return Result(case, "failed", "the next page repeats or goes back", [first, nxt])
            return Result(
                case,
                "passed",
                f"next_cursor {page.get('next_cursor')} pages forward",
                [first, nxt],
                observed="HTTP 200",
                exercised=True,
            )
        if case.kind == "inbox-schema":
            full = self.transport.request(
                "GET", url, params={"after": 0, "limit": 500, "include_acked": "true"}
            )
            problems = []
            rows = _json(full).get("items") or []
            for item in rows:
                try:
                    mapping = self.contract.mappings.get(str(item.get("message_type")))
                    mapping.validate_canonical(item.get("message"))
                except GatewayError as exc:
                    where = "; ".join(
                        f"{d.get('path')}: {d.get('message')}" for d in exc.details[:2]
                    )
                    problems.append(
                        f"{item.get('message_type')} {item.get('id')}: {exc.code} ({where})"
                    )
            if problems:
                return Result(case, "failed", "; ".join(problems[:5]), [full])
            return Result(
                case,
                "passed",
                f"{len(rows)} message(s) valid",
                [full],
                observed="valid",
                exercised=True,
            )
        # inbox-ack
        if not items:
            return Result(case, "skipped", "the inbox is empty: nothing to ack", [first])
        target = str(items[0]["id"])
        ack = self.transport.request("POST", f"{url}/{target}/ack")
        again = self.transport.request("POST", f"{url}/{target}/ack")
        after = self.transport.request("GET", url, params={"after": 0, "limit": 500})
        wires = [first, ack, again, after]
        bad = _status(ack, 200) or _status(again, 200)
        if bad:
            return Result(case, "failed", bad, wires, observed=_observed(again))
        if any(i.get("id") == target for i in _json(after).get("items") or []):
            return Result(case, "failed", "the acked message is still on the default page", wires)
        return Result(
            case,
            "passed",
            "acked twice (200 both), gone from the default page",
            wires,
            observed="HTTP 200",
            exercised=True,
        )


def _replace(body: bytes, fresh: dict[str, str]) -> bytes:
    for old, new in fresh.items():
        body = body.replace(json.dumps(old).encode(), json.dumps(new).encode())
    return body


def _json(wire: Wire) -> dict[str, Any]:
    try:
        data = json.loads(wire.response or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _status(wire: Wire, want: int) -> str | None:
    if wire.problem:
        return wire.problem
    if wire.status != want:
        error = _json(wire).get("error") or {}
        return f"expected HTTP {want}, got {wire.status} {error.get('code', '')}".strip()
    return None


def _observed(wire: Wire) -> str:
    error = _json(wire).get("error") or {}
    return str(error.get("code") or (f"HTTP {wire.status}" if wire.status else wire.problem))


def _change_one_text(data: Any) -> bool:
    """Change one value so the body differs but stays valid: the longest free text (one with
    a space), else the send time by a second, else the message id; False if none is there."""
    best: tuple[int, Any, Any] | None = None
    stack = [data]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            # Free text, not JSON carried in a string (its inner consistency may be checked).
            text = isinstance(value, str) and " " in value and not value.startswith(("{", "["))
            if text and (best is None or len(value) > best[0]):
                best = (len(value), node, key)
            elif isinstance(value, dict | list):
                stack.append(value)
    if best is not None:
        _, node, key = best
        node[key] = node[key][:-1] + ("x" if node[key][-1:] != "x" else "y")
        return True
    if isinstance(data, dict) and isinstance(data.get("sent_at"), str):
        from datetime import datetime, timedelta

        try:
            at = datetime.fromisoformat(data["sent_at"])
        except ValueError:
            pass
        else:
            data["sent_at"] = (at + timedelta(seconds=1)).isoformat()
            return True
    if isinstance(data, dict) and isinstance(data.get("message_id"), str):
        data["message_id"] = data["message_id"][:60] + "-X"
        return True
    return False
