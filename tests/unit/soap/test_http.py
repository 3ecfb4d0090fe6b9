"""The HTTP side of SOAP 1.1: Content-Type text/xml and a SOAPAction matching the body."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import SoapActionMismatchError, SoapContentTypeError
from gateway.soap.http import (
    check_content_type,
    check_http_request,
    check_soap_action,
    soap_actions,
)
from gateway.soap.wsdl import served_wsdl

ROOT = Path(__file__).resolve().parents[3]
ACTIONS = {"SubmitCourtRuling": "urn:lv:ta:tis:plus:v1/SubmitCourtRuling", "Ping": ""}


@pytest.mark.parametrize(
    "value", ["text/xml", "text/xml; charset=utf-8", 'TEXT/XML;charset="UTF-8"', " text/xml "]
)
def test_text_xml_is_accepted(value: str) -> None:
    check_content_type(value)


@pytest.mark.parametrize(
    "value",
    [None, "", "application/json", "application/soap+xml", "application/xml", "text/xml2", "text"],
)
def test_other_content_types_are_refused(value: str | None) -> None:
    with pytest.raises(SoapContentTypeError) as info:
        check_content_type(value)
    assert info.value.code == "SOAP_CONTENT_TYPE"
    assert info.value.details[0]["path"] == "header.Content-Type"


def test_content_type_message_is_bounded_and_masked() -> None:
    with pytest.raises(SoapContentTypeError) as info:
        check_content_type("application/x-150390-12345" + "x" * 5000)
    assert "150390-12345" not in info.value.message
    assert len(info.value.message) < 200


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        '""',
        '"urn:lv:ta:tis:plus:v1/SubmitCourtRuling"',
        "urn:lv:ta:tis:plus:v1/SubmitCourtRuling",
        ' "urn:lv:ta:tis:plus:v1/SubmitCourtRuling" ',
    ],
)
def test_matching_or_absent_soap_action_passes(value: str | None) -> None:
    check_soap_action(value, "SubmitCourtRuling", ACTIONS)


@pytest.mark.parametrize(
    "value",
    [
        '"urn:lv:ta:tis:plus:v1/SubmitMediationProposal"',
        "SubmitCourtRuling",  # only the declared action names the operation
        '"urn:lv:ta:tis:plus:v1/SubmitCourtRuling/"',
    ],
)
def test_other_soap_action_is_a_mismatch(value: str) -> None:
    with pytest.raises(SoapActionMismatchError) as info:
        check_soap_action(value, "SubmitCourtRuling", ACTIONS)
    assert info.value.code == "SOAP_ACTION_MISMATCH"
    assert info.value.operation == "SubmitCourtRuling"


def test_empty_declared_action_takes_only_empty_values() -> None:
    check_soap_action('""', "Ping", ACTIONS)
    with pytest.raises(SoapActionMismatchError):
        check_soap_action('"Ping"', "Ping", ACTIONS)


def test_operation_unknown_to_the_map_is_not_checked() -> None:
    check_soap_action('"anything"', "Unknown", ACTIONS)


def test_check_http_request() -> None:
    check_http_request("text/xml", '"x"')  # no operation yet: only the content type
    with pytest.raises(SoapContentTypeError):
        check_http_request("application/json")
    with pytest.raises(SoapActionMismatchError):
        check_http_request("text/xml", '"x"', ACTIONS, operation="SubmitCourtRuling")


def test_soap_actions_of_a_served_wsdl_are_those_of_its_service() -> None:
    wsdl = ROOT / "wsdl" / "ecase.wsdl"
    if not wsdl.exists():
        pytest.skip("wsdl/ecase.wsdl not in this checkout")
    everything = soap_actions(wsdl.read_bytes())
    served = soap_actions(
        served_wsdl(wsdl, service="PlusService", port="PlusPort", address="http://x")
    )
    assert served["SubmitCourtRuling"] == "urn:lv:ecase:plus:v1/SubmitCourtRuling"
    assert set(served) < set(everything)
    assert "SubmitExecutionNotification" not in served  # the other direction's service


def test_soap_actions_minimal_wsdl() -> None:
    wsdl = b"""<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
        xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:t="urn:t" targetNamespace="urn:t">
      <wsdl:binding name="B" type="t:P">
        <wsdl:operation name="Op"><soap:operation soapAction="urn:t/Op"/></wsdl:operation>
        <wsdl:operation name="NoAction"><soap:operation/></wsdl:operation>
      </wsdl:binding>
      <wsdl:binding name="Unused" type="t:Q">
        <wsdl:operation name="Other"><soap:operation soapAction="urn:t/Other"/></wsdl:operation>
      </wsdl:binding>
      <wsdl:service name="S"><wsdl:port name="P" binding="t:B"/></wsdl:service>
    </wsdl:definitions>"""
    assert soap_actions(wsdl) == {"Op": "urn:t/Op", "NoAction": ""}
