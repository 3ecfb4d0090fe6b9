"""Cases derived from the contract: WSDL operations, XSD facet negatives, expected codes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.config import Settings
from gateway.errors import SignatureInvalidError
from gateway.harness.cases import ContractModel, Mutation, apply_mutation, declared_codes
from gateway.harness.gatewaymode import GatewayMode
from gateway.harness.partner import PartnerMode
from gateway.harness.runner import SigningKey, alter, weak_algorithm
from gateway.harness.transport import Target, Transport, compare_wsdl
from gateway.signing import TrustStore
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def contract(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> ContractModel:
    from tests.conftest import build_settings

    return ContractModel(build_settings(tmp_path_factory.mktemp("c"), keys_dir))


def test_every_ecase_operation_of_the_wsdl_is_a_mapping(contract: ContractModel) -> None:
    ops = {o.name for ops in contract.operations.values() for o in ops}
    mapped = {m.operation for m in contract.ecase_mappings()}
    assert mapped <= ops  # the WSDL may carry more (operations not of a message mapping)
    assert contract.gateway_port_type == "Plus" and contract.partner_port_type == "Ecase"
    assert contract.soap_actions["SubmitCourtRuling"] == "urn:lv:ecase:plus:v1/SubmitCourtRuling"


def test_facet_mutations_are_confirmed_by_xmlschema(contract: ContractModel) -> None:
    for mapping in contract.ecase_mappings():
        mutations = contract.mutations(mapping)
        assert {m.facet for m in mutations} >= {"pattern", "required"}, mapping.message_type
        schema = contract.schema(mapping)
        valid = mapping.to_xml(contract.valid_canonical(mapping))
        assert schema.is_valid(valid)
        for mutation in mutations:
            broken = apply_mutation(valid, mutation)
            assert broken is not None and not schema.is_valid(broken), mutation
            assert "MessageId" not in mutation.why


def test_a_mutation_that_finds_nothing_is_dropped(contract: ContractModel) -> None:
    mapping = contract.mappings.get("court_ruling")
    valid = mapping.to_xml(contract.valid_canonical(mapping))
    missing = Mutation("pattern", ("{urn:x}Nowhere",), "x", "nothing")
    assert apply_mutation(valid, missing) is None
    assert apply_mutation(copy.deepcopy(valid), missing) is None


def test_invalid_samples_carry_their_codes_and_wire_codes(contract: ContractModel) -> None:
    mapping = contract.mappings.get("mediation_request")
    samples = dict((p.name, (p, c)) for p, c in contract.invalid_samples(mapping, ".xml"))
    path, code = samples["invalid-wrong-namespace.xml"]
    assert code == "XSD_INVALID"
    # Its root is in another namespace: no endpoint can route it.
    assert contract.wire_code(mapping, path, code) == "SOAP_UNKNOWN_OPERATION"
    court = contract.mappings.get("court_ruling")
    for p, c in contract.invalid_samples(court, ".xml"):
        assert contract.wire_code(court, p, c) == "XSD_INVALID"
    assert contract.invalid_expect["court_ruling/invalid-missing-case.json"]["path"] == "case"


def test_declared_codes_split_soap_and_json() -> None:
    soap, api = declared_codes(soap=True), declared_codes(soap=False)
    assert {"SIG_MISSING", "XSD_INVALID", "ECASE_SENDER_MISMATCH"} <= soap
    assert {"CANONICAL_INVALID", "REPLY_UNKNOWN_REQUEST"} <= api
    assert not soap & api


def test_plans_cover_what_each_institution_sends_and_receives(
    contract: ContractModel, keys_dir: Path
) -> None:
    settings: Settings = contract.settings
    gateway_key = SigningKey.from_files(keys_dir / "gateway-key.pem", keys_dir / "gateway-cert.pem")
    tis_key = SigningKey.from_files(keys_dir / "tis-sim-key.pem", keys_dir / "tis-sim-cert.pem")
    trust = TrustStore.from_files([keys_dir / "gateway-cert.pem"], None)
    transport = Transport(Target(url="http://127.0.0.1:9/"))
    common: dict[str, Any] = dict(
        contract=contract,
        institution="tis",
        transport=transport,
        url="x",
        trust=trust,
        intruder=gateway_key,
        sender=("a",),
        addressee=("b",),
        id_prefix="TIS",
    )
    gplan, gcases = GatewayMode(signing=tis_key, **common).plan()
    pplan, pcases = PartnerMode(signing=gateway_key, **common).plan()
    transport.close()
    tis = settings.institution("tis")
    assert gplan.operations == {contract.mappings.get(t).operation for t in tis.sends}
    assert pplan.operations == {
        *(contract.mappings.get(t).operation for t in tis.receives),
        *(contract.mappings.query_request(q).operation for q in tis.answers),
    }
    kinds = {c.kind for c in gcases}
    assert {
        "sig-unsigned",
        "sig-altered",
        "sig-wrong-signer",
        "sig-weak-algorithm",
        "sig-wrapping",
        "header-id-mismatch",
        "header-missing",
        "header-unknown-sender",
        "header-wrong-addressee",
        "not-allowed",
        "duplicate",
        "xsd-facet",
    } <= kinds
    assert {"query", "duplicate", "invalid-sample", "sig-unsigned"} <= {c.kind for c in pcases}
    assert len({c.id for c in gcases}) == len(gcases)


def test_signature_negatives_are_refused_by_our_trust_store(
    contract: ContractModel, keys_dir: Path
) -> None:
    key = SigningKey.from_files(keys_dir / "tis-sim-key.pem", keys_dir / "tis-sim-cert.pem")
    trust = TrustStore.from_files([keys_dir / "tis-sim-cert.pem"], None)
    mapping = contract.mappings.get("court_ruling")
    signed = key.signer.sign(mapping.to_xml(contract.valid_canonical(mapping)))
    trust.verify(signed)  # the untouched one verifies
    with pytest.raises(SignatureInvalidError):
        trust.verify(alter(signed))
    with pytest.raises(SignatureInvalidError, match=r"SHA1|forbidden"):
        trust.verify(weak_algorithm(signed, key.key))


def test_wsdl_comparison_lists_each_difference() -> None:
    from gateway.harness.cases import read_wsdl_operations
    from gateway.xml import parse_xml

    raw = (ROOT / "wsdl/ecase.wsdl").read_bytes()
    ours = read_wsdl_operations(parse_xml(raw))
    assert compare_wsdl(ours, "Plus", raw) == ([], None)
    changed = raw.replace(b'element="m:CourtRuling"', b'element="m:CourtRulingV2"')
    diff, problem = compare_wsdl(ours, "Plus", changed)
    assert problem is None
    assert diff == [
        "operation SubmitCourtRuling: input element is CourtRulingV2, ours is CourtRuling"
    ]
    assert compare_wsdl(ours, "Plus", b"<html/>")[1] is not None
    assert compare_wsdl(ours, "Plus", b"not xml")[1] is not None
    _ = etree  # lxml is what the contract is parsed with
