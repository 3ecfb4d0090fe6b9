"""The runner: plans cases per mode and institution, runs them with progress, and the SOAP
machinery both SOAP directions share (build, sign, break, send, judge an answer).

A mode is a class with ``plan() -> (Plan, [Case])`` and ``run(case) -> Result``. The runner
never lets an exception out of a case: anything unexpected becomes a failed entry naming it,
and when the target cannot be reached at all (unreachable, TLS, hanging) the remaining cases
of that mode are skipped with that one reason instead of each waiting for its timeout.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from lxml import etree
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from gateway.channels.ecase import ECASE_HEADER_PROFILE
from gateway.channels.header import XRoadHeader
from gateway.errors import GatewayError
from gateway.harness.cases import Case, ContractModel, Mutation, apply_mutation, declared_codes
from gateway.harness.environment import prepare
from gateway.harness.report import Plan, Result, Run
from gateway.harness.transport import Transport, Wire, compare_wsdl, read_soap, soap_fault
from gateway.mapping import MessageMapping
from gateway.ns import DS
from gateway.signing import Signer, TrustStore
from gateway.signing.keys import load_private_key
from gateway.soap.envelope import build_envelope
from gateway.xml import parse_xml, serialize

__all__ = ["Mode", "SigningKey", "SoapMode", "run_modes"]

_UNREACHABLE = ("unreachable", "TLS failure", "no answer within", "cannot send")


class Mode(Protocol):
    """One direction against one institution."""

    name: str
    institution: str

    def plan(self) -> tuple[Plan, list[Case]]:
        """The plan (operations, declared codes) and the cases."""
        ...

    def run(self, case: Case) -> Result:
        """Run one case."""
        ...


@dataclass(frozen=True)
class SigningKey:
    """A key pair the harness signs with: the signer, and the private key for the weak
    algorithm negative (signed by hand, since no toolkit of ours signs SHA-1)."""

    signer: Signer
    key: Any

    @classmethod
    def from_files(cls, key: Path, cert: Path) -> SigningKey:
        """Load a PEM key and certificate (RSA or EC P-256)."""
        try:
            signer = Signer.from_files(key, cert)
            private = load_private_key(key)
        except GatewayError:
            signer = Signer.from_files(key, cert, "ecdsa-sha256")
            private = load_private_key(key, "ecdsa-sha256")
        return cls(signer, private)


def run_modes(
    run: Run, modes: list[Mode], *, console: Console | None = None, progress: bool = True
) -> Run:
    """Plan and run every mode, appending to ``run``; progress on ``console`` (stderr)."""
    console = console or Console(stderr=True)
    planned = []
    for mode in modes:
        plan, cases = mode.plan()
        run.plans.append(plan)
        planned.append((mode, cases))
    total = sum(len(c) for _, c in planned)
    started = time.monotonic()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[case]}"),
        console=console,
        transient=True,
        disable=not progress,
    ) as bar:
        task = bar.add_task("harness", total=total, case="")
        for mode, cases in planned:
            blocked: str | None = None
            for case in cases:
                bar.update(task, description=f"{mode.name} {mode.institution}", case=case.id)
                if blocked is not None:
                    result = Result(case, "skipped", f"not run: {blocked}")
                else:
                    result = _guarded(mode.run, case)
                    if result.verdict == "failed" and result.reason.startswith(_UNREACHABLE):
                        blocked = f"the target failed earlier ({result.reason})"
                run.results.append(result)
                bar.advance(task)
    run.seconds += time.monotonic() - started
    return run


def _guarded(run: Callable[[Case], Result], case: Case) -> Result:
    started = time.monotonic()
    try:
        result = run(case)
    except Exception as exc:  # a harness bug must be a report entry, not a crash
        result = Result(case, "failed", f"harness error: {type(exc).__name__}: {exc}")
    result.seconds = result.seconds or time.monotonic() - started
    return result


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data.setdefault(key, {})
    data[last] = value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SoapMode:
    """What both SOAP directions share: build a payload from the contract, sign or break it,
    wrap it in the five header blocks, send it and judge the answer."""

    name = "soap"
    #: The portType the target serves (gateway mode: the gateway's; partner: the platform's).
    port_type = ""

    def __init__(
        self,
        *,
        contract: ContractModel,
        institution: str,
        transport: Transport,
        url: str,
        signing: SigningKey,
        trust: TrustStore,
        intruder: SigningKey,
        sender: tuple[str, ...],
        addressee: tuple[str, ...],
        id_prefix: str,
        answer_within: float | None = None,
        preparers: dict[str, Any] | None = None,
    ) -> None:
        self.contract = contract
        self.institution = institution
        self.transport = transport
        self.url = url
        self.signing = signing
        self.trust = trust
        self.intruder = intruder
        self.sender = sender
        self.addressee = addressee
        self.id_prefix = id_prefix
        self.answer_within = answer_within
        self.preparers = preparers or {}
        self.version = contract.settings.ecase.service_version
        self.protocol = contract.settings.ecase.protocol_version
        self.config = contract.settings.institution(institution)

    # -- hooks the two directions fill in ---------------------------------------------------

    #: Negatives planned on the first message type: kind -> (title, expected code).
    negatives: dict[str, tuple[str, str]] = {}
    #: The E-case direction of the types the target takes (for the ``not-allowed`` negative).
    direction = ""

    def message_types(self) -> list[str]:
        """The message types the target takes from the harness (sends or receives)."""
        raise NotImplementedError

    def extra_mappings(self) -> list[MessageMapping]:
        """Further operations to plan after the message types (partner: the queries)."""
        return []

    def skip_negative(self, kind: str) -> bool:
        """Whether the negative ``kind`` does not apply to this target."""
        return False

    def main_cases(self, mapping: MessageMapping, prefix: str, base: dict[str, Any]) -> list[Case]:
        """The positive cases of one operation: the valid sample, then it again."""
        return [
            Case(
                id=f"{prefix}.valid",
                kind="valid",
                expect="ACCEPTED",
                title=f"{mapping.operation}: the valid sample is accepted",
                **base,
            ),
            Case(
                id=f"{prefix}.duplicate",
                kind="duplicate",
                expect="DUPLICATE",
                title=f"{mapping.operation}: the same message again is a duplicate",
                **base,
            ),
        ]

    def run_other(
        self, case: Case, mapping: MessageMapping, data: dict[str, Any], message_id: str
    ) -> Result | None:
        """Run a case kind only this direction plans (partner: a query), else ``None``."""
        return None

    def negative(
        self, case: Case, mapping: MessageMapping, data: dict[str, Any], message_id: str
    ) -> bytes:
        """The envelope of a negative both directions share (a direction adds its own)."""
        header = self.header(case.operation or mapping.operation, message_id)
        kind = case.kind
        if kind == "sig-unsigned":
            return self.envelope(self.payload(mapping, data, unsigned=True), header)
        if kind == "sig-altered":
            return self.envelope(alter(self.payload(mapping, data)), header)
        if kind == "sig-wrong-signer":
            return self.envelope(self.payload(mapping, data, sign=self.intruder), header)
        if kind == "not-allowed":
            return self.envelope(self.payload(mapping, data), header)
        raise ValueError(f"unknown case kind {kind}")

    # -- planning and running ---------------------------------------------------------------

    def plan(self) -> tuple[Plan, list[Case]]:
        """Every operation the target takes from the harness, each with its negatives."""
        cases = [self.wsdl_case()]
        operations = set()
        types = self.message_types()
        messages = [self.contract.mappings.get(t) for t in types]
        for mapping in [*messages, *self.extra_mappings()]:
            operations.add(mapping.operation)
            base: dict[str, Any] = dict(
                mode=self.name,
                institution=self.institution,
                operation=mapping.operation,
                message_type=mapping.message_type,
            )
            prefix = f"{self.name}.{self.institution}.{mapping.message_type}"
            cases.extend(self.main_cases(mapping, prefix, base))
            for path, listed in self.contract.invalid_samples(mapping, ".xml"):
                code = self.contract.wire_code(mapping, path, listed)
                cases.append(
                    Case(
                        id=f"{prefix}.{path.stem}",
                        kind="invalid-sample",
                        expect=code,
                        title=f"{mapping.operation}: {path.name}",
                        params={"path": path},
                        **base,
                    )
                )
            for mutation in self.contract.mutations(mapping):
                cases.append(
                    Case(
                        id=f"{prefix}.xsd-{mutation.facet}",
                        kind="xsd-facet",
                        expect="XSD_INVALID",
                        title=f"{mapping.operation}: {mutation.why}",
                        params={"mutation": mutation},
                        **base,
                    )
                )
        if messages:
            cases.extend(self._negative_cases(messages[0], types))
        plan = Plan(self.name, self.institution, operations, set(declared_codes(soap=True)))
        return plan, cases

    def _negative_cases(self, first: MessageMapping, types: list[str]) -> list[Case]:
        cases = []
        for kind, (title, code) in self.negatives.items():
            mapping = first
            if self.skip_negative(kind):
                continue
            if kind == "not-allowed":
                others = [
                    m
                    for m in self.contract.ecase_mappings()
                    if m.direction == self.direction and m.message_type not in types
                ]
                if not others:
                    continue
                mapping = others[0]
            cases.append(
                Case(
                    id=f"{self.name}.{self.institution}.{kind}",
                    mode=self.name,
                    institution=self.institution,
                    kind=kind,
                    title=f"{mapping.operation}: {title}",
                    expect=code,
                    operation=mapping.operation,
                    message_type=mapping.message_type,
                )
            )
        return cases

    def run(self, case: Case) -> Result:
        """Send the case's message and judge the answer."""
        if case.kind == "wsdl":
            return self.run_wsdl(case)
        assert case.message_type is not None and case.operation is not None
        mapping = self.contract.mappings.get(case.message_type)
        message_id, data = self.fresh(mapping)
        header = self.header(case.operation, message_id)
        if case.kind in ("valid", "duplicate"):
            envelope = self.envelope(self.payload(mapping, data), header)
            first = self.send(case.operation, envelope)
            result = self.expect_ack(case, first, message_id, "ACCEPTED", [first])
            if case.kind == "valid" or result.verdict != "passed":
                return result
            again = self.send(case.operation, envelope)
            return self.expect_ack(case, again, message_id, "DUPLICATE", [first, again])
        other = self.run_other(case, mapping, data, message_id)
        if other is not None:
            return other
        if case.kind == "invalid-sample":
            document = parse_xml(case.params["path"].read_bytes(), self.contract.limits)
            found = document.find("{*}MessageId")
            if found is not None and found.text:
                header = self.header(case.operation, found.text.strip())
            envelope = self.envelope(self.payload(mapping, data, document=document), header)
        elif case.kind == "xsd-facet":
            payload = self.payload(mapping, data, mutation=case.params["mutation"])
            envelope = self.envelope(payload, header)
        else:
            envelope = self.negative(case, mapping, data, message_id)
        wire = self.send(case.operation, envelope)
        return self.expect_fault(case, wire, case.expect, [wire])

    # -- building ---------------------------------------------------------------------------

    def fresh(self, mapping: MessageMapping) -> tuple[str, dict[str, Any]]:
        """The type's valid sample with a fresh message id and send time."""
        data = self.contract.valid_canonical(mapping)
        message_id = f"{self.id_prefix}-H-{uuid.uuid4().hex[:20]}"
        _set_path(data, mapping.partner_message_id, message_id)
        if any(f.json == "sent_at" for f in mapping.fields):
            data["sent_at"] = _now()
        prepare(self.preparers, data, message_id)
        return message_id, data

    def header(self, operation: str, message_id: str, **change: Any) -> XRoadHeader:
        """The five header blocks, with ``change`` (client, service, id) for the negatives."""
        return XRoadHeader(
            ECASE_HEADER_PROFILE,
            client=change.get("client", self.sender),
            service=change.get("service", (*self.addressee, operation, self.version)),
            user_id=change.get("user_id", "HARNESS"),
            id=change.get("id", message_id),
            protocol_version=self.protocol,
        )

    def payload(
        self,
        mapping: MessageMapping,
        data: dict[str, Any],
        *,
        mutation: Mutation | None = None,
        document: etree._Element | None = None,
        sign: SigningKey | None = None,
        unsigned: bool = False,
    ) -> etree._Element:
        """The payload element: from ``document`` or ``data``, broken by ``mutation``,
        signed by ``sign`` (default: the harness's key) unless ``unsigned``."""
        element = document if document is not None else mapping.to_xml(data)
        if mutation is not None:
            broken = apply_mutation(element, mutation)
            if broken is None:
                raise ValueError(f"the sample has no {'/'.join(mutation.path)}")
            element = broken
        if unsigned:
            return element
        return (sign or self.signing).signer.sign(element)

    def envelope(self, payload: etree._Element | bytes, header: XRoadHeader | None) -> bytes:
        """The SOAP envelope around ``payload`` (serialized once; never reformatted)."""
        raw = payload if isinstance(payload, bytes) else serialize(payload, declaration=False)
        return build_envelope(raw, header.serialize() if header is not None else None)

    def action(self, operation: str) -> str:
        """The operation's SOAPAction, from the WSDL's binding."""
        return self.contract.soap_actions.get(operation, operation)

    def send(self, operation: str, envelope: bytes) -> Wire:
        """POST one envelope as ``operation``."""
        return self.transport.soap(self.url, envelope, self.action(operation))

    # -- judging ----------------------------------------------------------------------------

    def timing(self, wire: Wire) -> str | None:
        """Why the answer came too late for the caller, if it did."""
        if self.answer_within is not None and wire.seconds > self.answer_within:
            return (
                f"answered in {wire.seconds:.1f} s, beyond the {self.answer_within:g} s the "
                "gateway waits (it would retry and resend)"
            )
        return None

    def signed_body(
        self,
        case: Case,
        wire: Wire,
        wires: list[Wire],
        *,
        expected: str,
        root: str,
        is_root: Callable[[etree._Element], bool],
        noun: tuple[str, str],
    ) -> etree._Element | Result:
        """The answer's body once it is no fault, is the ``root`` element and its signature
        verifies; else the failed result saying which (``noun``: long and short name)."""
        envelope, problem = read_soap(wire, self.contract.limits)
        if envelope is None:
            return Result(case, "failed", problem or "no answer", wires)
        code, _ = soap_fault(envelope)
        if code is not None:
            return Result(
                case,
                "failed",
                f"expected {expected}, got the fault {code or '(no code)'}",
                wires,
                observed=code,
                exercised=True,
            )
        body = envelope.body
        if not is_root(body):
            return Result(
                case,
                "failed",
                f"expected {root}, got {etree.QName(body).localname}",
                wires,
                exercised=True,
            )
        try:
            return self.trust.verify(body)
        except GatewayError as exc:
            return Result(
                case,
                "failed",
                f"the {noun[0]}'s signature is refused: {exc.code}: {exc.message}",
                wires,
                observed=f"{noun[1]} {exc.code}",
                exercised=True,
            )

    def expect_ack(
        self, case: Case, wire: Wire, message_id: str, status: str, wires: list[Wire]
    ) -> Result:
        """A signed Acknowledgement with ``status`` for ``message_id``."""
        signed = self.signed_body(
            case,
            wire,
            wires,
            expected=f"an acknowledgement {status}",
            root="m:Acknowledgement",
            is_root=lambda body: etree.QName(body).localname == "Acknowledgement",
            noun=("acknowledgement", "ack"),
        )
        if isinstance(signed, Result):
            return signed
        got_status = (signed.findtext("{*}Status") or "").strip()
        got_id = (signed.findtext("{*}MessageId") or "").strip()
        if got_id != message_id:
            return Result(
                case,
                "failed",
                f"the acknowledgement names MessageId {got_id!r}, not the message's",
                wires,
                observed=got_status,
                exercised=True,
            )
        if got_status != status:
            return Result(
                case,
                "failed",
                f"acknowledgement status {got_status}, expected {status}",
                wires,
                observed=got_status,
                exercised=True,
            )
        late = self.timing(wire)
        if late:
            return Result(case, "failed", late, wires, observed=got_status, exercised=True)
        return Result(
            case,
            "passed",
            f"signed acknowledgement {status}, signature verified",
            wires,
            observed=got_status,
            exercised=True,
        )

    def expect_fault(self, case: Case, wire: Wire, code: str, wires: list[Wire]) -> Result:
        """A SOAP fault whose ``detail/c:ErrorDetail/c:Code`` is ``code``."""
        envelope, problem = read_soap(wire, self.contract.limits)
        if envelope is None:
            return Result(case, "failed", problem or "no answer", wires)
        got, detail = soap_fault(envelope)
        if got is None:
            return Result(
                case,
                "failed",
                f"expected the fault {code}, but the message was accepted "
                f"({etree.QName(envelope.body).localname})",
                wires,
                observed="accepted",
                exercised=True,
            )
        if got != code:
            return Result(
                case,
                "failed",
                f"expected the fault {code}, got {got or 'a fault without c:Code'}",
                wires,
                observed=got,
                exercised=True,
            )
        note = ""
        if detail is not None and detail.find(f"{{{DS}}}Signature") is not None:
            try:
                self.trust.verify(detail)
                note = "; the fault's ErrorDetail is signed and verifies"
            except GatewayError as exc:
                return Result(
                    case,
                    "failed",
                    f"the fault's signature is refused: {exc.code}",
                    wires,
                    observed=got,
                    exercised=True,
                )
        return Result(
            case, "passed", f"fault {got} as expected{note}", wires, observed=got, exercised=True
        )

    def wsdl_case(self) -> Case:
        """The case comparing the target's ?wsdl with ours."""
        return Case(
            id=f"{self.name}.{self.institution}.wsdl",
            mode=self.name,
            institution=self.institution,
            kind="wsdl",
            title=f"the target's WSDL ({self.port_type}) matches our contract",
            expect="same operations and messages",
        )

    def run_wsdl(self, case: Case) -> Result:
        """Fetch ``?wsdl`` if offered and report the difference from our contract."""
        wire = self.transport.request("GET", self.url + "?wsdl")
        if wire.problem:
            return Result(case, "failed", wire.problem, [wire])
        if wire.status != 200 or not wire.response.lstrip().startswith(b"<"):
            return Result(
                case, "skipped", f"the target offers no WSDL at ?wsdl (HTTP {wire.status})", [wire]
            )
        diff, problem = compare_wsdl(self.contract.operations, self.port_type, wire.response)
        if problem:
            return Result(case, "failed", problem, [wire])
        if diff:
            return Result(
                case,
                "failed",
                "WSDL differs from our contract: " + "; ".join(diff),
                [wire],
                observed=f"{len(diff)} difference(s)",
            )
        return Result(
            case,
            "passed",
            "the served WSDL has our operations and messages",
            [wire],
            observed="same",
        )


# -- signature-profile negatives ------------------------------------------------------------


def alter(signed: etree._Element) -> etree._Element:
    """A copy of a signed payload with one signed text changed after signing."""
    copy = etree.fromstring(etree.tostring(signed))
    for element in copy.iter():
        if not isinstance(element.tag, str) or element.tag.startswith(f"{{{DS}}}"):
            continue
        if len(element) == 0 and element.text and etree.QName(element).localname != "MessageId":
            element.text = element.text[:-1] + ("X" if element.text[-1:] != "X" else "Y")
            return copy
    raise ValueError("the payload has no text to alter")


def weak_algorithm(signed: etree._Element, key: Any) -> etree._Element:
    """A copy re-signed with SHA-1 (rsa-sha1 / ecdsa-sha1): intact, but a refused algorithm."""
    copy = etree.fromstring(etree.tostring(signed))
    signature = copy.find(f"{{{DS}}}Signature")
    assert signature is not None
    info = signature.find(f"{{{DS}}}SignedInfo")
    assert info is not None
    method = info.find(f"{{{DS}}}SignatureMethod")
    assert method is not None
    if isinstance(key, rsa.RSAPrivateKey):
        method.set("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")
        value = key.sign(_exc_c14n(info), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        method.set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1")
        value = key.sign(_exc_c14n(info), ec.ECDSA(hashes.SHA1()))  # noqa: S303
    sig_value = signature.find(f"{{{DS}}}SignatureValue")
    assert sig_value is not None
    sig_value.text = base64.b64encode(value).decode()
    return copy


def _exc_c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def wrapped(signed: etree._Element, header: XRoadHeader) -> bytes:
    """A wrapping attack: the signed original hidden in a header block, the Body carrying an
    altered payload with the same Id and the original signature."""
    original = serialize(signed, declaration=False)
    forged = serialize(alter(signed), declaration=False)
    hiding = b'<w:Wrapper xmlns:w="urn:harness:wrapping">' + original + b"</w:Wrapper>"
    return build_envelope(forged, header.serialize() + hiding)
