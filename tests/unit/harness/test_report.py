"""Reports: personal data masked on the wire shown, JUnit structure, the summary line."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from lxml import etree

from gateway.harness.cases import Case
from gateway.harness.report import Plan, Result, Run, mask_wire_body, write_html, write_junit
from gateway.harness.transport import Wire

CODE = "150390-12343"


def _xml() -> bytes:
    assertion = base64.b64encode(
        f'<ia:A xmlns:ia="urn:x"><ia:PersonalCode>{CODE}</ia:PersonalCode></ia:A>'.encode()
    ).decode()
    return (
        '<m:CourtRuling xmlns:m="urn:lv:ecase:plus:v1" xmlns:c="urn:lv:vpd:plus:common:v1">'
        f"<m:Person><c:PersonalCode>{CODE}</c:PersonalCode><c:FirstName>Jānis</c:FirstName>"
        "<c:LastName>Bērziņš</c:LastName><c:BirthDate>1990-03-15</c:BirthDate></m:Person>"
        f"<m:IdentityAssertion>{assertion}</m:IdentityAssertion>"
        f"<m:Remarks>see {CODE}</m:Remarks><m:CaseNumber>K30-1</m:CaseNumber>"
        "</m:CourtRuling>"
    ).encode()


def test_xml_and_json_bodies_are_masked() -> None:
    shown = mask_wire_body(_xml())
    for secret in (CODE, "Jānis", "Bērziņš", "1990-03-15"):
        assert secret not in shown
    assert "K30-1" in shown  # what is not personal stays readable
    body = json.dumps(
        {
            "person": {"first_name": "Jānis", "personal_code": CODE},
            "form_data": json.dumps({"address": "Brīvības iela 1", "case": "K30-1"}),
        }
    ).encode()
    shown = mask_wire_body(body)
    assert "Jānis" not in shown and CODE not in shown and "Brīvības" not in shown
    assert "K30-1" in shown
    assert CODE not in mask_wire_body(f"plain text {CODE}".encode())


def test_junit_and_html_name_each_failure(tmp_path: Path) -> None:
    ok = Case("gateway.tis.x.valid", "gateway", "tis", "valid", "valid", "ACCEPTED", "Op")
    bad = Case("gateway.tis.x.dup", "gateway", "tis", "duplicate", "dup", "DUPLICATE", "Op")
    wire = Wire("POST", "http://h/soap/ecase", _xml(), status=500, response=_xml())
    run = Run(target="http://h")
    run.plans.append(Plan("gateway", "tis", {"Op", "Other"}, {"XSD_INVALID"}))
    run.results += [
        Result(ok, "passed", "fine", [wire], exercised=True, observed="ACCEPTED"),
        Result(bad, "failed", f"status ACCEPTED for {CODE}", [wire], observed="ACCEPTED"),
    ]
    write_junit(run, tmp_path / "j.xml")
    write_html(run, tmp_path / "r.html")
    root = etree.parse(str(tmp_path / "j.xml")).getroot()
    assert root.get("tests") == "2" and root.get("failures") == "1"
    (failure,) = root.iter("failure")
    assert CODE not in (failure.get("message") or "") + (failure.text or "")
    page = (tmp_path / "r.html").read_text("utf-8")
    assert "gateway.tis.x.dup" in page and CODE not in page and "Bērziņš" not in page
    assert run.coverage()[0]["operations_missing"] == ["Other"]
    assert run.summary().startswith("harness FAILED: 1 passed, 1 failed, 0 skipped; operations 1/2")
