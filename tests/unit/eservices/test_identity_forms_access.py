"""The e-service flows' own parts: identity assertions, the form catalogue, the access policy."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.eservices.access import AccessPolicy, birth_date_of
from gateway.eservices.errors import (
    ClientNotAssignedError,
    FormError,
    IdentityExpiredError,
    IdentityForgedError,
    IdentityMissingError,
    IdentityNotForRequestError,
    NotEntitledError,
    NotOwnCaseError,
    PartyUnknownError,
    RoleNotPermittedError,
    UnknownFormError,
    UnknownFormVersionError,
)
from gateway.eservices.forms import FormCatalogue
from gateway.eservices.identity import Assertion, AssertionIssuer, IdentityVerifier
from gateway.eservices.scope import default_scope_table
from gateway.signing import Signer, TrustStore
from gateway.store import Store, create_store_engine, migrate
from gateway.store.eservices import Party
from gateway.xml import SchemaRegistry, XmlLimits
from tests.conftest import ROOT

NOW = datetime(2027, 3, 2, 10, 0, tzinfo=UTC)
CLIENT = "150390-12343"


@pytest.fixture(scope="module")
def schemas() -> SchemaRegistry:
    registry = SchemaRegistry(ROOT / "xsd")
    registry.load_all()
    return registry


@pytest.fixture(scope="module")
def issuer(keys_dir: Path) -> AssertionIssuer:
    return AssertionIssuer(
        Signer.from_files(keys_dir / "identity-sim-key.pem", keys_dir / "identity-sim-cert.pem")
    )


@pytest.fixture(scope="module")
def verifier(keys_dir: Path, schemas: SchemaRegistry) -> IdentityVerifier:
    trust = TrustStore.from_files([keys_dir / "identity-sim-cert.pem"], None)
    return IdentityVerifier(trust, schemas, XmlLimits(), max_age=600, leeway=30)


def test_a_platform_assertion_is_believed(
    issuer: AssertionIssuer, verifier: IdentityVerifier
) -> None:
    encoded = issuer.issue(request_id="R-1", personal_code=CLIENT, role="client", issued_at=NOW)
    got = verifier.verify(encoded, request_id="R-1", now=NOW + timedelta(seconds=5))
    assert (got.personal_code, got.role, got.request_id) == (CLIENT, "client", "R-1")
    assert CLIENT not in repr(got)


def test_assertion_refusals(
    issuer: AssertionIssuer, verifier: IdentityVerifier, keys_dir: Path
) -> None:
    good = issuer.issue(request_id="R-1", personal_code=CLIENT, role="client", issued_at=NOW)
    with pytest.raises(IdentityMissingError):
        verifier.verify(None, request_id="R-1", now=NOW)
    with pytest.raises(IdentityMissingError):
        verifier.verify("bm90IHhtbA==", request_id="R-1", now=NOW)  # "not xml"
    altered = base64.b64encode(base64.b64decode(good).replace(b">client<", b">employer<")).decode()
    with pytest.raises(IdentityForgedError) as forged:
        verifier.verify(altered, request_id="R-1", now=NOW)
    assert CLIENT not in forged.value.message
    intruder = AssertionIssuer(
        Signer.from_files(keys_dir / "intruder-key.pem", keys_dir / "intruder-cert.pem")
    ).issue(request_id="R-1", personal_code=CLIENT, role="client", issued_at=NOW)
    with pytest.raises(IdentityForgedError):
        verifier.verify(intruder, request_id="R-1", now=NOW)
    with pytest.raises(IdentityNotForRequestError):
        verifier.verify(good, request_id="R-2", now=NOW)
    with pytest.raises(IdentityExpiredError):
        verifier.verify(good, request_id="R-1", now=NOW + timedelta(minutes=6))  # lifetime 300
    with pytest.raises(IdentityExpiredError):
        verifier.verify(good, request_id="R-1", now=NOW - timedelta(minutes=5))  # not yet valid
    old = issuer.issue(
        request_id="R-1", personal_code=CLIENT, role="client", issued_at=NOW, lifetime=86400
    )
    with pytest.raises(IdentityExpiredError):
        verifier.verify(old, request_id="R-1", now=NOW + timedelta(minutes=11))  # max age


@pytest.fixture(scope="module")
def forms() -> FormCatalogue:
    return FormCatalogue.load(ROOT / "mappings" / "eservices" / "forms")


def test_every_requirement_item_has_a_form(forms: FormCatalogue) -> None:
    items = {f.requirement for f in forms.forms()}
    wanted = {f"ES-{n}" for n in (12, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30)}
    assert wanted <= items


def test_form_lookup_and_validation(forms: FormCatalogue) -> None:
    with pytest.raises(UnknownFormError):
        forms.get("information_to_vpd", "tax_return", "1.0")
    with pytest.raises(UnknownFormError):  # a real form of another e-service
        forms.get("information_to_vpd", "vacancies", "1.0")
    with pytest.raises(UnknownFormVersionError) as version:
        forms.get("information_to_vpd", "change_of_details", "3.0")
    assert "1.0, 2.0" in version.value.message
    form = forms.get("information_to_vpd", "change_of_details", "2.0")
    ok = {"case_number": "V-1", "change": "school", "effective_from": "2027-01-01", "reason": "x"}
    assert forms.validate(form, json.dumps(ok)) == ok
    with pytest.raises(FormError) as caught:
        forms.validate(form, json.dumps({**ok, "reason": "", "extra": CLIENT}))
    paths = [d["path"] for d in caught.value.details]
    assert "form_data.reason" in paths and "form_data" in paths
    assert all(CLIENT not in d["message"] for d in caught.value.details)
    with pytest.raises(FormError):
        forms.validate(form, "{not json")


def test_a_bad_catalogue_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "1.0.json").write_text(json.dumps({"type": "object"}))
    with pytest.raises(ConfigError, match="x-eservice"):
        FormCatalogue.load(tmp_path)


def test_birth_date_of_old_and_new_codes() -> None:
    assert birth_date_of("150390-12343") == date(1990, 3, 15)
    assert birth_date_of("120312-20566") == date(2012, 3, 12)
    assert birth_date_of("329184-20573") is None


@pytest.fixture
def policy(tmp_path: Path) -> AccessPolicy:
    engine = create_store_engine(f"sqlite:///{tmp_path}/es.db")
    migrate(engine)
    return AccessPolicy(default_scope_table(), Store(engine).eservices, b"k" * 32)


def _assertion(role: str, **kw: str | None) -> Assertion:
    return Assertion(
        assertion_id="A",
        issuer="E-case",
        issued_at=NOW,
        expires_at=NOW,
        request_id="R",
        authentication_method="viss",
        personal_code=str(kw.pop("personal_code", CLIENT)),
        role=role,
        **kw,  # type: ignore[arg-type]
    )


def test_access_rules(policy: AccessPolicy) -> None:
    today = NOW.date()
    client = policy.decide(
        _assertion("client"),
        eservice="my_probation_data",
        kind="request",
        subject_personal_code=CLIENT,
        client_id=None,
        today=today,
    )
    assert client.audience == "client" and client.client_key and not client.minor
    minor = policy.decide(
        _assertion("client", personal_code="120312-20566"),
        eservice="my_probation_data",
        kind="request",
        subject_personal_code=None,
        client_id=None,
        today=today,
    )
    assert minor.minor
    with pytest.raises(NotOwnCaseError):
        policy.decide(
            _assertion("client"),
            eservice="my_probation_data",
            kind="request",
            subject_personal_code="120312-20566",
            client_id=None,
            today=today,
        )
    with pytest.raises(RoleNotPermittedError):
        policy.decide(
            _assertion("client"),
            eservice="my_probation_data",
            kind="submission",
            subject_personal_code=None,
            client_id=None,
            today=today,
        )
    sia = _assertion(
        "employer", organisation_number="40003123456", legal_form="limited_liability_company"
    )
    with pytest.raises(NotEntitledError):
        policy.decide(
            sia,
            eservice="probation_client_data",
            kind="request",
            subject_personal_code=None,
            client_id=None,
            today=today,
        )
    policy.store.put_party(
        Party("org:40003123456", "employer", "limited_liability_company", 75.0, None), ["C-1"]
    )
    employer = policy.decide(
        sia,
        eservice="employer_information",
        kind="submission",
        subject_personal_code=None,
        client_id="C-1",
        today=today,
    )
    assert employer.party_key == "org:40003123456" and employer.recipient_code == "40003123456"
    with pytest.raises(ClientNotAssignedError):
        policy.decide(
            sia,
            eservice="employer_information",
            kind="submission",
            subject_personal_code=None,
            client_id="C-2",
            today=today,
        )
    volunteer = _assertion("volunteer", personal_code="211180-10232")
    with pytest.raises(PartyUnknownError):
        policy.decide(
            volunteer,
            eservice="probation_client_data",
            kind="request",
            subject_personal_code=None,
            client_id=None,
            today=today,
        )
    key = policy.volunteer_key("211180-10232")
    assert "211180" not in key
    policy.store.put_party(Party(key, "volunteer", None, None, "companion"), [])
    assert (
        policy.decide(
            volunteer,
            eservice="probation_client_data",
            kind="request",
            subject_personal_code=None,
            client_id=None,
            today=today,
        ).volunteer_kind
        == "companion"
    )
