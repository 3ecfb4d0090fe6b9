"""The classifier service client: the contract, and transport errors mapped to ours."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses

from gateway.classifiers.client import ClassifierClient
from gateway.classifiers.remote import ContractError, RemoteClassifier, RemoteVersion
from gateway.errors import (
    PartnerRejectedError,
    PartnerTimeoutError,
    PartnerUnavailableError,
    RetryableError,
)

URL = "http://classifiers.test/classifiers"
LIST: dict[str, Any] = {
    "source": "VPD.EVALUATION_PURPOSE",
    "version": "2026.1",
    "title": "Purpose of an evaluation report",
    "codes": [
        {"code": "PIRMSTIESAS", "label_lv": "Pirmstiesas", "label_en": "Pre-trial"},
        {
            "code": "PIRMS_TERMINA",
            "label_lv": "Pirms termiņa",
            "label_en": "Early release",
            "valid_from": "2020-01-01",
            "valid_to": None,
        },
    ],
}


@pytest.fixture
def client() -> ClassifierClient:
    return ClassifierClient(URL, timeout=2, max_bytes=4096)


@responses.activate
def test_versions_and_one_list(client: ClassifierClient) -> None:
    responses.get(URL, json=[{"source": "VPD.EVALUATION_PURPOSE", "version": "2026.1"}])
    responses.get(f"{URL}/VPD.EVALUATION_PURPOSE", json=LIST)
    assert client.versions() == [RemoteVersion("VPD.EVALUATION_PURPOSE", "2026.1")]
    remote = client.get("VPD.EVALUATION_PURPOSE")
    assert remote.version == "2026.1"
    assert [c.code for c in remote.codes] == ["PIRMSTIESAS", "PIRMS_TERMINA"]
    assert remote.to_json()["codes"][1]["valid_from"] == "2020-01-01"
    assert responses.calls[1].request.headers["Accept"] == "application/json"


@responses.activate
def test_unknown_list_is_rejected(client: ClassifierClient) -> None:
    responses.get(f"{URL}/VPD.NOPE", status=404, json={"error": {"code": "CLASSIFIER_UNKNOWN"}})
    with pytest.raises(PartnerRejectedError, match="not published") as info:
        client.get("VPD.NOPE")
    assert info.value.partner == "ecase"
    assert info.value.operation == "classifiers get VPD.NOPE"


@responses.activate
@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retryable(client: ClassifierClient, status: int) -> None:
    responses.get(URL, status=status)
    with pytest.raises(PartnerUnavailableError, match=f"HTTP {status}"):
        client.versions()


@responses.activate
def test_other_client_errors_and_redirects_are_rejected(client: ClassifierClient) -> None:
    responses.get(URL, status=403)
    with pytest.raises(PartnerRejectedError, match="HTTP 403"):
        client.versions()
    responses.replace(responses.GET, URL, status=302, headers={"Location": "http://elsewhere/"})
    with pytest.raises(PartnerRejectedError, match="HTTP 302"):
        client.versions()


@responses.activate
@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (requests.ConnectTimeout("connect timed out"), PartnerTimeoutError),
        (requests.ReadTimeout("read timed out"), PartnerTimeoutError),
        (requests.ConnectionError("connection refused"), PartnerUnavailableError),
    ],
)
def test_transport_failures(
    client: ClassifierClient, raised: Exception, expected: type[RetryableError]
) -> None:
    responses.get(URL, body=raised)
    with pytest.raises(expected) as info:
        client.versions()
    assert isinstance(info.value.__cause__, requests.RequestException)


@responses.activate
def test_an_oversize_answer_is_refused_by_declared_length(client: ClassifierClient) -> None:
    responses.get(
        URL, body=b"[]", headers={"Content-Length": "999999"}, auto_calculate_content_length=False
    )
    with pytest.raises(PartnerRejectedError, match="4096-byte limit"):
        client.versions()


@responses.activate
def test_an_oversize_answer_is_refused_while_reading(client: ClassifierClient) -> None:
    big = json.dumps([{"source": f"S{i}", "version": "1"} for i in range(1000)])
    # No Content-Length: the cap must hold while streaming.
    responses.get(URL, body=big.encode(), auto_calculate_content_length=False)
    with pytest.raises(PartnerRejectedError, match="exceeds the 4096-byte limit"):
        client.versions()


@responses.activate
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>oops</html>", "not JSON"),
        (json.dumps({"source": "X"}).encode(), "must be a JSON array"),
        (json.dumps([{"source": "X"}]).encode(), r"\[0\]\.version"),
    ],
)
def test_answers_outside_the_contract_are_rejected(
    client: ClassifierClient, body: bytes, message: str
) -> None:
    responses.get(URL, body=body)
    with pytest.raises(PartnerRejectedError, match=message):
        client.versions()


@responses.activate
def test_an_answer_about_another_list_is_rejected(client: ClassifierClient) -> None:
    responses.get(f"{URL}/VPD.OTHER", json=LIST)
    with pytest.raises(PartnerRejectedError, match=r"got 'VPD\.EVALUATION_PURPOSE'"):
        client.get("VPD.OTHER")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"codes": []}, "codes: must be a non-empty array"),
        ({"version": "2026 1"}, "version"),
        ({"codes": [LIST["codes"][0], LIST["codes"][0]]}, "duplicate code 'PIRMSTIESAS'"),
        ({"codes": [{**LIST["codes"][0], "code": "A B"}]}, r"codes\[0\]\.code"),
        ({"codes": [{**LIST["codes"][0], "label_en": "bad\x00"}]}, "control characters"),
        ({"codes": [{**LIST["codes"][0], "valid_to": "2026-13-01"}]}, "not a date"),
        (
            {"codes": [{**LIST["codes"][0], "valid_from": "2026-02-01", "valid_to": "2026-01-01"}]},
            "valid_to is before valid_from",
        ),
    ],
)
def test_contract_checks(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        RemoteClassifier.from_json({**LIST, **change})
