"""The universal E-case contract: message types, XSD <-> mapping agreement, classifiers, routing,
urgency, queries, the addressee, the WSDL, and the samples' references to each other."""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import xmlschema
import yaml

from gateway.errors import CanonicalInvalidError, ConfigError, UnknownOperationError
from gateway.mapping import ADDRESSEE, MappingRegistry, MessageMapping
from gateway.mapping.spec import Field, ReplyTo, RoutingRule, Urgent
from gateway.ns import ECASE, ECASE_HEADER
from gateway.registries.personal_code import is_valid
from gateway.xml import SchemaRegistry

from .helpers import MAPPINGS, SAMPLES, XSD, valid_json

ROOT = MAPPINGS.parent

#: message type -> (direction, operation, root element's local name)
EXPECTED = {
    "court_ruling": ("inbound", "SubmitCourtRuling", "CourtRuling"),
    "mediation_proposal": ("inbound", "SubmitMediationProposal", "MediationProposal"),
    "evaluation_report_request": (
        "inbound",
        "SubmitEvaluationReportRequest",
        "EvaluationReportRequest",
    ),
    "penal_order": ("inbound", "SubmitPenalOrder", "PenalOrder"),
    "mediation_request": ("inbound", "SubmitMediationRequest", "MediationRequest"),
    "conditional_release": ("inbound", "SubmitConditionalRelease", "ConditionalRelease"),
    "prison_release": ("inbound", "SubmitPrisonRelease", "PrisonRelease"),
    "monitoring_event": ("inbound", "SubmitMonitoringEvent", "MonitoringEvent"),
    "execution_notification": (
        "outbound",
        "SubmitExecutionNotification",
        "ExecutionNotification",
    ),
    "evaluation_report": ("outbound", "SubmitEvaluationReport", "EvaluationReport"),
    "evaluation_report_supplement": (
        "outbound",
        "SubmitEvaluationReportSupplement",
        "EvaluationReportSupplement",
    ),
    "mediation_result": ("outbound", "SubmitMediationResult", "MediationResult"),
    "monitoring_order": ("outbound", "SubmitMonitoringOrder", "MonitoringOrder"),
    "eservice_usage_report": ("outbound", "SubmitEServiceUsageReport", "EServiceUsageReport"),
    "eservice_request": ("inbound", "SubmitEServiceRequest", "EServiceRequest"),
    "eservice_answer": ("outbound", "SubmitEServiceAnswer", "EServiceAnswer"),
    "eservice_pending": ("outbound", "SubmitEServicePending", "EServicePending"),
    "work_assignment": ("outbound", "SubmitWorkAssignment", "WorkAssignment"),
    "volunteer_task": ("outbound", "SubmitVolunteerTask", "VolunteerTask"),
    "eservice_notification": ("outbound", "SubmitEServiceNotification", "EServiceNotification"),
    "ruling_state_query": ("query_request", "GetRulingState", "RulingStateQuery"),
    "ruling_state": ("query_answer", "GetRulingState", "RulingState"),
    "release_date_query": ("query_request", "GetReleaseDate", "ReleaseDateQuery"),
    "release_date": ("query_answer", "GetReleaseDate", "ReleaseDate"),
}
ECASE_TYPES = sorted(EXPECTED)
ALL_TYPES = [m.message_type for m in MappingRegistry.load(MAPPINGS).all()]


def test_ecase_message_types(registry: MappingRegistry) -> None:
    ecase = sorted(m.message_type for m in registry.all() if m.contract == "ecase")
    assert ecase == ECASE_TYPES
    for message_type, (direction, operation, local) in EXPECTED.items():
        m = registry.get(message_type)
        assert (m.direction, m.operation, m.root) == (direction, operation, f"{{{ECASE}}}{local}")
        assert m.schema == "ecase/messages.xsd"
        assert m.title and m.description
        assert registry.by_root(m.root) is m
        if direction != "query_answer":
            # Only the ecase contract has these operations once the legacy TIS files are gone;
            # until then the six shared ones need the contract named.
            assert registry.by_operation(operation, contract="ecase") is m


def test_operation_lookup_without_contract(registry: MappingRegistry) -> None:
    assert registry.by_operation("SubmitPenalOrder").message_type == "penal_order"
    assert registry.by_operation("GetRulingState").message_type == "ruling_state_query"
    assert registry.by_operation("SubmitCourtRuling").message_type == "court_ruling"
    with pytest.raises(UnknownOperationError):
        registry.by_operation("GetNothing")


def test_queries_pair_a_request_with_its_answer(registry: MappingRegistry) -> None:
    for query, request, answer in [
        ("ruling_state", "ruling_state_query", "ruling_state"),
        ("release_date", "release_date_query", "release_date"),
    ]:
        assert registry.query_request(query).message_type == request
        assert registry.query_answer(query).message_type == answer
        assert registry.get(request).query == registry.get(answer).query == query
        # PLUS sends a query with the gateway's own id; the answer's id is the institution's.
        assert registry.get(request).gateway_fields == {
            "message_id": "message_id",
            "sent_at": "now",
        }
        assert registry.get(answer).partner_message_id == "response_id"
    with pytest.raises(UnknownOperationError):
        registry.query_answer("nope")


def test_every_sample_answer_echoes_its_query() -> None:
    for request, answer in [
        ("ruling_state_query", "ruling_state"),
        ("release_date_query", "release_date"),
    ]:
        assert valid_json(answer)["request_id"] == valid_json(request)["message_id"]


def test_replies_in_the_samples_answer_the_sample_requests() -> None:
    # The lead's end-to-end tests send the inbound sample, then its reply: the ids must match.
    request_id = valid_json("evaluation_report_request")["message_id"]
    assert valid_json("evaluation_report")["request_message_id"] == request_id
    assert valid_json("evaluation_report_supplement")["request_message_id"] == request_id
    assert (
        valid_json("evaluation_report_supplement")["original_report_message_id"]
        == valid_json("evaluation_report")["message_id"]
    )
    assert (
        valid_json("execution_notification")["decision_message_id"]
        == valid_json("court_ruling")["message_id"]
    )
    assert (
        valid_json("mediation_result")["request_message_id"]
        == valid_json("mediation_request")["message_id"]
    )
    assert (
        valid_json("monitoring_event")["vpd_case_id"]
        == valid_json("monitoring_order")["vpd_case_id"]
    )
    assert valid_json("monitoring_event")["zone_reference"] in {
        z["reference"] for z in valid_json("monitoring_order")["zones"]
    }


def _personal_codes(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k == "personal_code" and isinstance(v, str)]
        return found + [c for v in value.values() for c in _personal_codes(v)]
    if isinstance(value, list):
        return [c for v in value for c in _personal_codes(v)]
    return []


@pytest.mark.parametrize("message_type", ECASE_TYPES)
def test_sample_personal_codes_are_valid_by_checksum(message_type: str) -> None:
    codes = _personal_codes(valid_json(message_type))
    assert all(is_valid(code) for code in codes), codes


# ----- XSD <-> mapping agreement ------------------------------------------------------------


@cache
def _xsd(schema: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD / schema))


def _children(element: Any) -> list[Any]:
    """The child element declarations of ``element``'s content, in sequence order."""
    content = getattr(element.type, "content", None)
    if content is None or element.type.is_simple():
        return []
    # Wildcards (the trailing ds:Signature) have no name and are not mapped.
    return [c for c in content.iter_elements() if isinstance(c, xmlschema.XsdElement)]


def _walk(fields: tuple[Field, ...], element: Any, path: str) -> list[tuple[str, Field, Any]]:
    """Pair every mapping field with its XSD element declaration; assert they agree."""
    children = _children(element)
    by_name = {c.name: c for c in children}
    assert [f.xml for f in fields] == [c.name for c in children], (
        f"{path or 'root'}: mapping fields must be the XSD sequence, in order"
    )
    pairs = []
    for f in fields:
        decl = by_name[f.xml]
        where = f"{path}{f.json}"
        assert (decl.min_occurs >= 1) == f.required, f"{where}: required vs minOccurs"
        if f.is_list:
            expected_max = f.max_items  # None means unbounded on both sides
            assert decl.max_occurs == expected_max, f"{where}: max_items vs maxOccurs"
        else:
            assert decl.max_occurs == 1, f"{where}: a single value vs maxOccurs"
        pairs.append((where, f, decl))
        if f.fields is not None:
            pairs.extend(_walk(f.fields, decl, f"{where}."))
        else:
            assert decl.type.is_simple(), f"{where}: a value field on a complex element"
    return pairs


def _pairs(mapping: MessageMapping) -> list[tuple[str, Field, Any]]:
    root = _xsd(mapping.schema).elements[mapping.root.split("}", 1)[1]]
    return _walk(mapping.fields, root, "")


@pytest.mark.parametrize("message_type", ALL_TYPES)
def test_mapping_fields_are_the_xsd_sequence(message_type: str, registry: MappingRegistry) -> None:
    assert _pairs(registry.get(message_type))


@pytest.mark.parametrize("message_type", ALL_TYPES)
def test_classifier_fields_enumerate_exactly_the_wire_codes(
    message_type: str, registry: MappingRegistry
) -> None:
    mapping = registry.get(message_type)
    root = _xsd(mapping.schema).elements[mapping.root.split("}", 1)[1]]

    def walk(fields: tuple[Field, ...], element: Any, path: str) -> None:
        by_name = {c.name: c for c in _children(element)}
        for f in fields:
            decl = by_name[f.xml]
            if f.fields is not None:
                walk(f.fields, decl, f"{path}{f.json}.")
            elif f.classifier is not None:
                wire = set(f.classifier.to_wire[mapping.contract].values())
                assert set(decl.type.enumeration or ()) == wire, (
                    f"{path}{f.json}: {decl.type.name} must list exactly the "
                    f"{mapping.contract!r} codes of classifier {f.classifier.name}"
                )

    walk(mapping.fields, root, "")


# ----- classifiers ----------------------------------------------------------------------------


def test_ecase_classifiers(registry: MappingRegistry) -> None:
    sizes = {"function_subtype": 13, "evaluation_purpose": 3, "client_category": 9}
    for name, size in sizes.items():
        assert len(registry.classifiers[name].canonical_codes) == size
    ecase = [c for c in registry.classifiers.values() if "ecase" in c.to_wire]
    assert {c.name for c in ecase} >= {
        "function_subtype",
        "evaluation_purpose",
        "client_category",
        "execution_status",
        "violation_kind",
        "mediation_outcome",
        "monitoring_event_kind",
        "monitoring_action",
        "zone_kind",
        "ruling_state",
        "release_kind",
    }
    for c in ecase:
        assert c.version == "2026.1"
        assert c.source and c.source.split(".")[0] in {"VPD", "TA", "IEVP"}
        assert set(c.to_wire["ecase"]) == set(c.canonical_codes), "every code has an E-case code"
        for code in c.canonical_codes:
            assert set(c.labels[code]) >= {"label_lv", "label_en"}, (c.name, code)
    assert registry.classifiers["function_subtype"].to_wire["ecase"]["public_work"] == (
        "SABIEDRISKAIS_DARBS"
    )


def test_every_classifier_has_a_version(registry: MappingRegistry) -> None:
    assert all(c.version for c in registry.classifiers.values())


# ----- routing, urgency, addressee -----------------------------------------------------------


def test_routing_and_urgency_are_loaded(registry: MappingRegistry) -> None:
    notification = registry.get("execution_notification").routing
    assert notification is not None
    assert notification.reply_to == ReplyTo(
        field="decision_message_id", types=("court_ruling", "penal_order", "conditional_release")
    )
    assert notification.rules == (
        RoutingRule(
            field="function",
            values=("public_work",),
            institutions=("tis",),
            reason="public work for minors is ordered by courts only",
        ),
    )
    for name in ("evaluation_report", "evaluation_report_supplement"):
        routing = registry.get(name).routing
        assert routing is not None and routing.reply_to is not None
        assert routing.reply_to == ReplyTo("request_message_id", ("evaluation_report_request",))
    mediation = registry.get("mediation_result").routing
    assert mediation is not None and mediation.reply_to is not None
    assert mediation.reply_to.types == ("mediation_request", "mediation_proposal")
    assert registry.get("monitoring_order").routing is None  # one receiver: the EM IS
    assert registry.get("monitoring_event").urgent == Urgent(
        field="event_kind", values=("zone_violation", "curfew_violation", "tamper")
    )
    assert all(m.urgent is None for m in registry.all() if m.message_type != "monitoring_event")


@pytest.mark.parametrize("message_type", [t for t, e in EXPECTED.items() if e[0] == "outbound"])
def test_outbound_messages_take_an_optional_addressee(
    message_type: str, registry: MappingRegistry
) -> None:
    mapping = registry.get(message_type)
    prop = mapping.request_schema["properties"][ADDRESSEE]
    assert prop == {
        "type": "string",
        "pattern": "^[a-z][a-z0-9_]{0,31}$",
        "description": (
            "Institution to send to; resolved from the message this one answers when omitted"
        ),
    }
    assert ADDRESSEE not in mapping.request_schema["required"]
    data = {**valid_json(message_type), ADDRESSEE: "prois"}
    mapping.validate_canonical(data)
    # The addressee is routing data: the wire message is the same with or without it.
    assert mapping.to_canonical(mapping.to_xml(data)) == valid_json(message_type)
    rest, addressee = mapping.split_addressee(data)
    assert (rest, addressee) == (valid_json(message_type), "prois")
    assert ADDRESSEE in data, "split_addressee does not modify its input"
    assert mapping.split_addressee(valid_json(message_type)) == (valid_json(message_type), None)
    for bad in ("TIS", "1tis", "t" * 33, 7):
        with pytest.raises(CanonicalInvalidError) as exc:
            mapping.validate_canonical({**valid_json(message_type), ADDRESSEE: bad})
        assert [d["path"] for d in exc.value.details] == [ADDRESSEE]


@pytest.mark.parametrize("message_type", ["court_ruling", "ruling_state_query", "ruling_state"])
def test_only_outbound_messages_take_an_addressee(
    message_type: str, registry: MappingRegistry
) -> None:
    mapping = registry.get(message_type)
    assert ADDRESSEE not in mapping.json_schema["properties"]
    with pytest.raises(CanonicalInvalidError):
        mapping.validate_canonical({**valid_json(message_type), ADDRESSEE: "tis"})
    data = {**valid_json(message_type), ADDRESSEE: "tis"}
    assert mapping.split_addressee(data) == (data, None)


# ----- bad routing / urgent / query keys -----------------------------------------------------


@pytest.fixture
def mappings_copy(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


def _rewrite(path: Path, **top: object) -> None:
    data = yaml.safe_load(path.read_text("utf-8"))
    for key, value in top.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")


_RULE = {"field": "function", "values": ["public_work"], "institutions": ["tis"], "reason": "r"}
_REPLY = {"field": "decision_message_id", "types": ["court_ruling"]}


@pytest.mark.parametrize(
    ("file", "top", "key"),
    [
        ("execution_notification", {"routing": {}}, "routing"),
        ("execution_notification", {"routing": {"reply": _REPLY}}, "routing.reply"),
        ("execution_notification", {"routing": "tis"}, "routing"),
        (
            "execution_notification",
            {"routing": {"reply_to": {**_REPLY, "field": "nope"}}},
            "routing.reply_to.field",
        ),
        (
            "execution_notification",
            {"routing": {"reply_to": {**_REPLY, "field": "remarks"}}},  # optional
            "routing.reply_to.field",
        ),
        (
            "execution_notification",
            {"routing": {"reply_to": {**_REPLY, "field": "hours_worked"}}},  # not a string
            "routing.reply_to.field",
        ),
        (
            "execution_notification",
            {"routing": {"reply_to": {**_REPLY, "field": "case"}}},  # an object
            "routing.reply_to.field",
        ),
        (
            "execution_notification",
            {"routing": {"reply_to": {**_REPLY, "field": "violations.description"}}},  # a list
            "routing.reply_to.field",
        ),
        (
            "execution_notification",
            {"routing": {"reply_to": {"field": "decision_message_id"}}},
            "routing.reply_to.types",
        ),
        (
            "execution_notification",
            {"routing": {"reply_to": {**_REPLY, "types": []}}},
            "routing.reply_to.types",
        ),
        (
            "execution_notification",
            {"routing": {"reply_to": {**_REPLY, "types": ["no_such_type"]}}},
            "routing.reply_to.types[0]",
        ),
        (
            "execution_notification",  # an outbound message is not something one replies to
            {"routing": {"reply_to": {**_REPLY, "types": ["evaluation_report"]}}},
            "routing.reply_to.types[0]",
        ),
        ("execution_notification", {"routing": {"rules": []}}, "routing.rules"),
        (
            "execution_notification",
            {"routing": {"rules": [{**_RULE, "values": ["public_works"]}]}},
            "routing.rules[0].values[0]",
        ),
        (
            "execution_notification",
            {"routing": {"rules": [{**_RULE, "field": "nope"}]}},
            "routing.rules[0].field",
        ),
        (
            "execution_notification",
            {"routing": {"rules": [{**_RULE, "institutions": ["TIS"]}]}},
            "routing.rules[0].institutions[0]",
        ),
        (
            "execution_notification",
            {"routing": {"rules": [{**_RULE, "institutions": []}]}},
            "routing.rules[0].institutions",
        ),
        (
            "execution_notification",
            {"routing": {"rules": [{k: v for k, v in _RULE.items() if k != "reason"}]}},
            "routing.rules[0].reason",
        ),
        (
            "execution_notification",
            {"routing": {"rules": [{**_RULE, "colour": "red"}]}},
            "routing.rules[0].colour",
        ),
        ("court_ruling", {"routing": {"rules": [_RULE]}}, "routing"),  # inbound
        (
            "monitoring_event",
            {"urgent": {"field": "event_kind", "values": ["zone_breach"]}},
            "urgent.values[0]",
        ),
        ("monitoring_event", {"urgent": {"field": "nope", "values": ["x"]}}, "urgent.field"),
        ("monitoring_event", {"urgent": {"field": "event_kind"}}, "urgent.values"),
        (
            "monitoring_event",
            {"urgent": {"field": "device_id", "values": ["lower case"]}},  # fails the pattern
            "urgent.values[0]",
        ),
        (
            "monitoring_order",
            {"urgent": {"field": "action", "values": ["stop"]}},  # outbound
            "urgent",
        ),
        ("court_ruling", {"query": "ruling_state"}, "query"),  # not a query mapping
        ("ruling_state", {"query": "Ruling State"}, "query"),
        ("ruling_state", {"query": "ruling_states"}, "query"),  # leaves both halves unpaired
        ("ruling_state", {"operation": "GetReleaseDate"}, "operation"),
        ("ruling_state", {"direction": "query"}, "direction"),
        ("monitoring_event", {"contract": "E-case"}, "contract"),
        ("monitoring_order", {"partner": "em"}, "partner"),  # the old key
    ],
)
def test_bad_routing_urgent_and_query_keys_name_file_and_key(
    mappings_copy: Path, file: str, top: dict[str, object], key: str
) -> None:
    path = mappings_copy / "messages" / f"{file}.yaml"
    _rewrite(path, **top)
    with pytest.raises(ConfigError) as exc:
        MappingRegistry.load(mappings_copy)
    message = str(exc.value)
    assert f"{file}.yaml" in message or "ruling_state_query.yaml" in message
    assert f"'{key}" in message, message


def test_addressee_is_reserved_on_outbound_messages(mappings_copy: Path) -> None:
    path = mappings_copy / "messages" / "monitoring_order.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    data["fields"].append({"json": "addressee", "xml": "m:Addressee", "type": "string"})
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(ConfigError, match=r"monitoring_order\.yaml.*fields\.addressee"):
        MappingRegistry.load(mappings_copy)


def test_classifier_value_rule_uses_canonical_codes(mappings_copy: Path) -> None:
    # Wire codes are the contract's business; rules speak PLUS's canonical codes.
    path = mappings_copy / "messages" / "execution_notification.yaml"
    _rewrite(path, routing={"rules": [{**_RULE, "values": ["SABIEDRISKAIS_DARBS"]}]})
    with pytest.raises(ConfigError, match="not a code of classifier function_subtype"):
        MappingRegistry.load(mappings_copy)


def test_duplicate_root_is_refused(mappings_copy: Path) -> None:
    path = mappings_copy / "messages" / "penal_order.yaml"
    _rewrite(path, root="m:CourtRuling")
    with pytest.raises(ConfigError, match="'root'"):
        MappingRegistry.load(mappings_copy)


# ----- WSDL -----------------------------------------------------------------------------------


#: Operations of the polling protocol (docs/JOBS.md): (input, output) element local names.
POLLING = {
    "PollMessages": ("PollRequest", "PolledMessages"),
    "AcknowledgePolledMessages": ("PollAcknowledgement", "Acknowledgement"),
}


def test_wsdl_loads_in_zeep_with_both_services(registry: MappingRegistry) -> None:
    zeep = pytest.importorskip("zeep")
    client = zeep.Client(str(ROOT / "wsdl" / "ecase.wsdl"))
    platform = client.bind("EcaseService", "EcasePort")
    gateway = client.bind("PlusService", "PlusPort")
    by_direction: dict[str, list[str]] = {}
    for direction, operation, _ in EXPECTED.values():
        by_direction.setdefault(direction, []).append(operation)
    assert sorted(gateway._operations) == sorted(by_direction["inbound"])
    assert sorted(platform._operations) == sorted(
        by_direction["outbound"] + by_direction["query_request"] + list(POLLING)
    )
    for binding_name, operations in [
        ("PlusBinding", gateway._operations),
        ("EcaseBinding", platform._operations),
    ]:
        binding = client.wsdl.bindings[f"{{{ECASE}}}{binding_name}"]
        for name in operations:
            op = binding._operations[name]
            assert op.soapaction == f"{ECASE}/{name}"
            headers = [e.qname.text for _, e in op.input.header.type.elements]
            assert headers == [
                f"{{{ECASE_HEADER}}}{h}"
                for h in ("client", "service", "userId", "id", "protocolVersion")
            ]
            assert set(op.faults) == {"Fault"}
            if name in POLLING:
                # Protocol operations of poll-only institutions: no business message type.
                assert (op.input.body.qname.text, op.output.body.qname.text) == tuple(
                    f"{{{ECASE}}}{local}" for local in POLLING[name]
                )
                continue
            request = registry.by_operation(name, contract="ecase")
            assert op.input.body.qname.text == request.root
            if request.direction == "query_request":
                assert request.query is not None
                answer = registry.query_answer(request.query)
                assert op.output.body.qname.text == answer.root
            else:
                assert op.output.body.qname.text == f"{{{ECASE}}}Acknowledgement"


def test_wsdl_header_blocks_can_be_sent(registry: MappingRegistry) -> None:
    zeep = pytest.importorskip("zeep")
    client = zeep.Client(str(ROOT / "wsdl" / "ecase.wsdl"))
    service = client.bind("EcaseService", "EcasePort")
    query = valid_json("ruling_state_query")
    header = {
        "client": {
            "instance": "LV",
            "memberClass": "GOV",
            "memberCode": "90000000000",
            "subsystemCode": "PLUS",
        },
        "service": {
            "instance": "LV",
            "memberClass": "GOV",
            "memberCode": "90001672698",
            "subsystemCode": "TIS",
            "serviceCode": "GetRulingState",
            "serviceVersion": "v1",
        },
        "userId": "PLUS",
        "id": query["message_id"],
        "protocolVersion": "4.0",
    }
    envelope = client.create_message(
        service,
        "GetRulingState",
        MessageId=query["message_id"],
        SentAt=query["sent_at"],
        CaseNumber=query["case_number"],
        PersonalCode=query["personal_code"],
        _soapheaders=header,
    )
    soap = "http://schemas.xmlsoap.org/soap/envelope/"
    blocks = envelope.find(f"{{{soap}}}Header")
    assert [b.tag for b in blocks] == [
        f"{{{ECASE_HEADER}}}{h}" for h in ("client", "service", "userId", "id", "protocolVersion")
    ]
    schemas = SchemaRegistry(XSD)
    for block in blocks:
        schemas.validate(block, "ecase/header.xsd")
    body = envelope.find(f"{{{soap}}}Body")[0]
    mapping = registry.get("ruling_state_query")
    schemas.validate(body, mapping.schema)
    assert mapping.to_canonical(body) == query


def test_header_schema_refuses_a_bad_protocol_version() -> None:
    from lxml import etree

    from gateway.errors import SchemaValidationError

    element = etree.Element(f"{{{ECASE_HEADER}}}protocolVersion")
    element.text = "four"
    with pytest.raises(SchemaValidationError):
        SchemaRegistry(XSD).validate(element, "ecase/header.xsd")


def test_samples_have_no_stray_directories() -> None:
    dirs = {p.name for p in SAMPLES.iterdir() if p.is_dir()} - {"tis"}
    assert dirs == set(ECASE_TYPES)


def test_samples_carry_no_addressee() -> None:
    # valid.json is what maps to and from valid.xml; PLUS adds addressee only when it wants to.
    for message_type in ECASE_TYPES:
        assert ADDRESSEE not in valid_json(message_type), message_type
