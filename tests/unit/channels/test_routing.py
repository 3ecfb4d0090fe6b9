"""Reply routing over a real store: the addressee is resolved, never guessed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import (
    AddresseeAmbiguousError,
    AddresseeInconsistentError,
    AddresseeNotAllowedError,
    ReplyUnknownRequestError,
    RoutingError,
)
from gateway.runtime import Runtime
from gateway.store import InboundRecord
from tests.conftest import SAMPLES


def _sample(message_type: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (SAMPLES / message_type / "valid.json").read_text(encoding="utf-8")
    )
    return data


def _received(runtime: Runtime, institution: str, message_type: str, partner_id: str) -> None:
    runtime.store.inbox.accept(
        InboundRecord(
            message_id=f"in-{institution}-{partner_id}",
            partner=institution,
            operation="op",
            message_type=message_type,
            partner_message_id=partner_id,
            correlation_id=None,
            canonical={},
            payload=b"<x/>",
        )
    )


def _resolve(runtime: Runtime, message_type: str, body: dict[str, Any], given: str | None) -> str:
    return runtime.router.resolve(runtime.mappings.get(message_type), body, given)


@pytest.mark.parametrize("asking", ["tis", "prois", "ievp"])
def test_an_evaluation_report_goes_to_whoever_asked(runtime: Runtime, asking: str) -> None:
    _received(runtime, asking, "evaluation_report_request", "REQ-1")
    report = {**_sample("evaluation_report"), "request_message_id": "REQ-1"}
    assert _resolve(runtime, "evaluation_report", report, None) == asking
    assert _resolve(runtime, "evaluation_report_supplement", report, None) == asking
    # naming the right addressee is fine, naming another is refused at `addressee`
    assert _resolve(runtime, "evaluation_report", report, asking) == asking
    other = "tis" if asking != "tis" else "prois"
    with pytest.raises(AddresseeInconsistentError) as caught:
        _resolve(runtime, "evaluation_report", report, other)
    assert caught.value.details[0]["path"] == "addressee"


def test_a_reply_to_an_unknown_request_is_refused_not_guessed(runtime: Runtime) -> None:
    report = {**_sample("evaluation_report"), "request_message_id": "NEVER-SEEN"}
    with pytest.raises(ReplyUnknownRequestError) as caught:
        _resolve(runtime, "evaluation_report", report, "tis")
    assert caught.value.details[0]["path"] == "request_message_id"


def test_a_reply_must_answer_the_right_kind_of_message(runtime: Runtime) -> None:
    # A court ruling's id is not an evaluation report request's.
    _received(runtime, "tis", "court_ruling", "RUL-1")
    report = {**_sample("evaluation_report"), "request_message_id": "RUL-1"}
    with pytest.raises(ReplyUnknownRequestError):
        _resolve(runtime, "evaluation_report", report, None)


def test_the_same_id_from_two_institutions_needs_the_addressee(runtime: Runtime) -> None:
    _received(runtime, "tis", "evaluation_report_request", "SAME-1")
    _received(runtime, "prois", "evaluation_report_request", "SAME-1")
    report = {**_sample("evaluation_report"), "request_message_id": "SAME-1"}
    with pytest.raises(AddresseeAmbiguousError):
        _resolve(runtime, "evaluation_report", report, None)
    assert _resolve(runtime, "evaluation_report", report, "prois") == "prois"


def test_an_execution_notification_goes_to_the_issuer(runtime: Runtime) -> None:
    _received(runtime, "prois", "penal_order", "PO-1")
    _received(runtime, "tis", "court_ruling", "CR-1")
    notification = _sample("execution_notification")
    assert (
        _resolve(
            runtime, "execution_notification", {**notification, "decision_message_id": "PO-1"}, None
        )
        == "prois"
    )
    assert (
        _resolve(
            runtime, "execution_notification", {**notification, "decision_message_id": "CR-1"}, None
        )
        == "tis"
    )


def test_public_work_cannot_be_notified_to_the_prosecutor(runtime: Runtime) -> None:
    mapping = runtime.mappings.get("execution_notification")
    assert mapping.routing is not None and mapping.routing.rules
    rule = mapping.routing.rules[0]
    _received(runtime, "prois", "penal_order", "PO-2")
    body = {**_sample("execution_notification"), "decision_message_id": "PO-2"}
    *parents, last = rule.field.split(".")
    target = body
    for key in parents:
        target = target[key]
    target[last] = rule.values[0]
    with pytest.raises(AddresseeInconsistentError) as caught:
        _resolve(runtime, "execution_notification", body, None)
    assert caught.value.details[0]["path"] == rule.field


def test_an_unknown_or_non_receiving_addressee_is_refused(runtime: Runtime) -> None:
    order = _sample("monitoring_order")
    with pytest.raises(AddresseeNotAllowedError):
        _resolve(runtime, "monitoring_order", order, "nobody")
    with pytest.raises(AddresseeNotAllowedError):
        _resolve(runtime, "monitoring_order", order, "tis")
    # the only institution that receives monitoring orders needs no naming
    assert _resolve(runtime, "monitoring_order", order, None) == "em"


def test_every_refusal_is_a_422_kind(runtime: Runtime) -> None:
    assert issubclass(ReplyUnknownRequestError, RoutingError)
    from gateway.api.errors import status_for

    assert status_for(ReplyUnknownRequestError("x")) == 422
