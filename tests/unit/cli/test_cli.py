"""The plus-gateway command, run in-process against real files and a real database."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Settings
from gateway.runtime import Runtime
from gateway.signing import Signer
from gateway.xml import parse_xml, serialize
from tests.conftest import SAMPLES

xmlsec = pytest.importorskip("xmlsec", reason="xmlsec (libxmlsec1) is a dev dependency")
consts = xmlsec.constants

PAYLOAD = SAMPLES / "execution_notification" / "valid.xml"


def run(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def test_keys_init_creates_private_keys_readable_only_by_owner(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    data = yaml.safe_load(config_file.read_text())
    data["paths"]["keys"] = str(tmp_path / "newkeys")
    config_file.write_text(yaml.safe_dump(data))
    assert run(config_file, "keys", "init") == 0
    key = tmp_path / "newkeys" / "gateway-key.pem"
    cert = tmp_path / "newkeys" / "tis-sim-cert.pem"
    assert key.is_file() and cert.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = key.read_bytes()
    assert run(config_file, "keys", "init") == 0  # idempotent: does not overwrite
    assert key.read_bytes() == before


def test_sign_output_verifies_with_xmlsec(
    config_file: Path, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "signed.xml"
    assert run(config_file, "sign", str(PAYLOAD), "-o", str(out)) == 0
    root = parse_xml(out.read_bytes())
    node = xmlsec.tree.find_node(root, consts.NodeSignature)
    ctx = xmlsec.SignatureContext()
    ctx.register_id(root, "Id")  # the profile: Reference URI="#<Id>" of the payload element
    ctx.key = xmlsec.Key.from_file(str(settings.signing.certificate), consts.KeyDataFormatCertPem)
    ctx.verify(node)  # raises xmlsec.Error if libxmlsec1 disagrees
    # and our own verifier accepts it too
    assert run(config_file, "verify", str(out)) == 0


def _xmlsec_signed(key: Path, cert: Path, data: bytes) -> bytes:
    root = parse_xml(data)
    root.set("Id", "p1")
    signature = xmlsec.template.create(root, consts.TransformExclC14N, consts.TransformRsaSha256)
    root.append(signature)
    ref = xmlsec.template.add_reference(signature, consts.TransformSha256, uri="#p1")
    xmlsec.template.add_transform(ref, consts.TransformEnveloped)
    xmlsec.template.add_transform(ref, consts.TransformExclC14N)
    x509 = xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    xmlsec.template.x509_data_add_certificate(x509)
    ctx = xmlsec.SignatureContext()
    ctx.register_id(root, "Id")
    k = xmlsec.Key.from_file(str(key), consts.KeyDataFormatPem)
    k.load_cert_from_file(str(cert), consts.KeyDataFormatPem)
    ctx.key = k
    ctx.sign(signature)
    return serialize(root)


def test_verify_accepts_document_signed_by_xmlsec(
    config_file: Path, keys_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "by-xmlsec.xml"
    ruling = SAMPLES / "court_ruling" / "valid.xml"
    doc.write_bytes(
        _xmlsec_signed(
            keys_dir / "tis-sim-key.pem", keys_dir / "tis-sim-cert.pem", ruling.read_bytes()
        )
    )
    assert run(config_file, "verify", str(doc), "--institution", "tis") == 0
    assert "signature valid" in capsys.readouterr().out
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(doc.read_bytes().replace(b"<c:FirstName>", b"<c:FirstName>X", 1))
    assert run(config_file, "verify", str(tampered), "--institution", "tis") == 1
    assert "SIG_INVALID" in capsys.readouterr().err
    intruder = tmp_path / "intruder.xml"
    intruder.write_bytes(
        _xmlsec_signed(
            keys_dir / "intruder-key.pem", keys_dir / "intruder-cert.pem", ruling.read_bytes()
        )
    )
    assert run(config_file, "verify", str(intruder), "--institution", "tis") == 1
    assert "SIG_UNTRUSTED" in capsys.readouterr().err


def test_validate(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config_file, "validate", str(PAYLOAD)) == 0
    assert "valid execution_notification" in capsys.readouterr().out
    bad = SAMPLES / "court_ruling" / "invalid-no-measure.xml"
    assert run(config_file, "validate", str(bad)) == 1
    assert "XSD_INVALID" in capsys.readouterr().err


def test_validate_refuses_doctype(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = tmp_path / "evil.xml"
    evil.write_bytes(b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>')
    assert run(config_file, "validate", str(evil)) == 1
    assert "XML_FORBIDDEN" in capsys.readouterr().err


def test_queue_ls_show_replay(
    config_file: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.store import OutboundRecord

    runtime = Runtime(settings)
    signer = Signer.from_files(settings.signing.key, settings.signing.certificate)
    payload = serialize(signer.sign(parse_xml(PAYLOAD.read_bytes())), declaration=False)
    runtime.store.outbox.accept(
        OutboundRecord(
            message_id="msg-1",
            partner="tis",
            operation="SubmitExecutionNotification",
            message_type="execution_notification",
            payload=payload,
            ordering_key="K1",
            correlation_id=None,
            idempotency_key="key-1",
            request_sha256="x",
        )
    )
    row = runtime.store.outbox.claim_due("w", 1, 60)[0]
    runtime.store.outbox.mark_failed(
        row, owner="w", code="PARTNER_REJECTED", error="no", next_attempt_at=None
    )
    runtime.close()

    assert run(config_file, "queue", "ls", "--status", "dead") == 0
    assert "msg-1" in capsys.readouterr().out
    assert run(config_file, "queue", "show", "msg-1") == 0
    shown = capsys.readouterr().out
    assert '"status": "dead"' in shown and "PARTNER_REJECTED" in shown
    assert run(config_file, "queue", "replay", "msg-1", "--reason", "fixed", "--actor", "ops") == 0
    assert run(config_file, "queue", "ls", "--status", "pending") == 0
    assert "msg-1" in capsys.readouterr().out
    assert run(config_file, "queue", "show", "nope") == 1


@pytest.mark.parametrize("flow", ["reply-routing", "eservices", "volunteering"])
def test_a_demo_without_a_running_gateway_says_so_and_exits_2(
    config_file: Path, capsys: pytest.CaptureFixture[str], flow: str
) -> None:
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    assert run(config_file, "demo", flow, "--gateway", url) == 2
    err = capsys.readouterr().err
    assert f"no gateway answers at {url}" in err and "make run" in err
    assert "Traceback" not in err
