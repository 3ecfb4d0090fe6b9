"""Unit tests of the facade's parts: tokens and a remote JWKS (over loopback HTTP), imports with
line numbers, small-cell suppression, and the PAdES seal of a rendered certificate."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from gateway.config import FacadeAuthSettings
from gateway.facade.auth import Jwks, TokenVerifier, jwk_of, mint_token, thumbprint
from gateway.facade.certificate import CertificateData, Seal, render_pdf
from gateway.facade.errors import AuthError, IssuerUnavailableError, UnprocessableError
from gateway.facade.imports import parse_import
from gateway.facade.statistics import build_cut, suppress
from gateway.opendata.disclosure import attack
from gateway.signing.keys import load_certificates

AUTH = FacadeAuthSettings()


class _JwksServer:
    """A JWKS endpoint on loopback that counts its fetches."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def issuer_jwk(keys_dir: Path) -> dict[str, Any]:
    return jwk_of(load_certificates(keys_dir / "facade-issuer-cert.pem")[0].public_key())


@pytest.fixture
def jwks_server(issuer_jwk: dict[str, Any]) -> Iterator[_JwksServer]:
    server = _JwksServer({"keys": [issuer_jwk]})
    yield server
    server.close()


def _token(keys_dir: Path, name: str = "facade-issuer", **kw: Any) -> str:
    return mint_token(
        AUTH, subject="s", roles=["volunteer"], key_path=keys_dir / f"{name}-key.pem", **kw
    )


def test_tokens_verify_through_a_remote_jwks(keys_dir: Path, jwks_server: _JwksServer) -> None:
    verifier = TokenVerifier(AUTH, Jwks(url=jwks_server.url, cache_seconds=300))
    who = verifier.verify(_token(keys_dir))
    assert who.subject == "s" and who.roles == frozenset({"volunteer"})
    verifier.verify(_token(keys_dir))
    assert jwks_server.fetches == 1  # cached
    # A token naming an unknown kid (here: another key) may refetch, but not on every token.
    for _ in range(5):
        with pytest.raises(AuthError) as caught:
            verifier.verify(_token(keys_dir, "intruder"))
        assert caught.value.code == "TOKEN_KEY_UNKNOWN"
    assert jwks_server.fetches == 1


def test_issuer_down_is_retryable_503(keys_dir: Path) -> None:
    verifier = TokenVerifier(AUTH, Jwks(url="http://127.0.0.1:9/jwks.json", timeout=0.5))
    with pytest.raises(IssuerUnavailableError) as caught:
        verifier.verify(_token(keys_dir))
    assert caught.value.status == 503 and caught.value.retryable


def test_claims_and_algorithms(keys_dir: Path, issuer_jwk: dict[str, Any]) -> None:
    verifier = TokenVerifier(AUTH, Jwks(keys=[issuer_jwk]))
    assert thumbprint(issuer_jwk) == issuer_jwk["kid"]
    token = mint_token(
        AUTH,
        subject="o",
        roles=["organisation_user"],
        organisation="40000000001",
        key_path=keys_dir / "facade-issuer-key.pem",
    )
    who = verifier.verify(token)
    assert who.roles == frozenset({"organisation_user"})
    assert who.require_organisation("40000000001") is who
    with pytest.raises(Exception, match="not this organisation"):
        who.require_organisation("40000000002")
    unsigned = token.rsplit(".", 1)[0] + "."
    with pytest.raises(AuthError) as caught:
        verifier.verify(unsigned.replace(unsigned.split(".")[0], "eyJhbGciOiJub25lIn0"))
    assert caught.value.code == "TOKEN_ALGORITHM"


# -- imports -------------------------------------------------------------------------------

_DEADLINE = (datetime.now(UTC) + timedelta(days=5)).replace(microsecond=0).isoformat()


def test_csv_line_numbers_count_physical_lines() -> None:
    csv_text = (
        "title,duties,deadline,volunteers_needed,kind,digital\n"
        f'"Pirmais","divu\nrindu apraksts",{_DEADLINE},1,one_off,true\n'  # lines 2-3
        "\n"  # line 4: blank, skipped
        f"Otrais,Darbs,{_DEADLINE},-1,one_off,maybe\n"  # line 5
        "Trešais,Darbs\n"  # line 6: too few cells
    )
    with pytest.raises(UnprocessableError) as caught:
        parse_import(csv_text.encode(), "text/csv; charset=utf-8", max_rows=10)
    paths = {d["path"] for d in caught.value.details}
    assert paths == {"body.line[5].volunteers_needed", "body.line[5].place.digital", "body.line[6]"}


def test_csv_header_and_limits() -> None:
    with pytest.raises(UnprocessableError) as caught:
        parse_import(b"title,colour\nx,y\n", "text/csv", max_rows=10)
    paths = {d["path"] for d in caught.value.details}
    assert "body.line[1].colour" in paths and "body.line[1].deadline" in paths
    rows = "".join(f"T{i},D,{_DEADLINE},1,one_off,true\n" for i in range(3))
    with pytest.raises(UnprocessableError, match="problem"):
        parse_import(
            f"title,duties,deadline,volunteers_needed,kind,digital\n{rows}".encode(),
            "text/csv",
            max_rows=2,
        )
    with pytest.raises(UnprocessableError):
        parse_import(b"\xff\xfe", "text/csv", max_rows=2)


def test_json_array_items_are_located_by_line() -> None:
    item = {
        "title": "A",
        "duties": "B",
        "deadline": _DEADLINE,
        "volunteers_needed": 1,
        "kind": "one_off",
        "place": {"digital": True},
    }
    text = "[\n" + json.dumps(item) + ",\n\n" + json.dumps({**item, "kind": "x"}) + "\n]"
    with pytest.raises(UnprocessableError) as caught:
        parse_import(text.encode(), "application/json", max_rows=10)
    assert [d["path"] for d in caught.value.details] == ["body.line[4].kind"]
    assert len(parse_import(f"[{json.dumps(item)}]".encode(), "application/json", max_rows=1)) == 1
    with pytest.raises(UnprocessableError) as caught:
        parse_import(b'[{"title": 1} {"x": 2}]', "application/json", max_rows=10)
    assert caught.value.details[0]["path"] == "body.line[1]"


# -- suppression ---------------------------------------------------------------------------


def _hours(municipality: str, volunteers: int) -> list[dict[str, Any]]:
    return [
        {
            "work_date": date(2026, 5, 1),
            "volunteer_id": f"{municipality}-{i}",
            "organisation_id": "o",
            "municipality": municipality,
            "digital": False,
            "kind": "regular",
            "field": "culture",
            "minutes": 60,
        }
        for i in range(volunteers)
    ]


def test_primary_and_secondary_suppression() -> None:
    rows = _hours("Rīga", 20) + _hours("Cēsis", 7) + _hours("Ape", 2)
    cells, total = build_cut(rows, [], "municipality")
    out, out_total = suppress(cells, total, 5)
    by = {c["key"]: c for c in out}
    assert by["Ape"]["suppressed"] and by["Ape"]["volunteers"] is None
    # Ape alone withheld would follow from the total: the next smallest (Cēsis) goes too.
    assert by["Cēsis"]["suppressed"] and by["Cēsis"]["approved_hours"] is None
    assert not by["Rīga"]["suppressed"] and by["Rīga"]["volunteers"] == 20
    assert out_total["volunteers"] == 29
    small_total = suppress(*build_cut(_hours("Ape", 3), [], "municipality"), 5)[1]
    assert small_total["suppressed"]


def test_two_small_cells_are_not_left_to_each_other() -> None:
    """Two withheld cells of 1 would each be 1 by subtraction (total - the rest = 2): the
    open data rule (one implementation, gateway/opendata/disclosure.py) hides a third."""
    rows = _hours("Rīga", 20) + _hours("Cēsis", 7) + _hours("Ape", 1) + _hours("Aloja", 1)
    out, total = suppress(*build_cut(rows, [], "municipality"), 5)
    hidden = {c["key"] for c in out if c["suppressed"]}
    assert hidden == {"Ape", "Aloja", "Cēsis"}
    assert total["volunteers"] == 29 and not total["suppressed"]


def test_no_withheld_cell_can_be_recovered_from_what_is_published() -> None:
    """The attacker of the open data tests, on the facade's published table."""
    for sizes in ([20, 7, 2], [9, 1, 1, 1], [3, 3, 30], [1], [6, 6, 6, 2, 40]):
        rows = [r for i, n in enumerate(sizes) for r in _hours(f"m{i}", n)]
        out, total = suppress(*build_cut(rows, [], "municipality"), 5)
        values = {c["key"]: n for c, n in zip(out, sorted_sizes(rows), strict=True)}
        values["total"] = sum(values.values())
        hidden = {c["key"] for c in out if c["suppressed"]} | (
            {"total"} if total["suppressed"] else set()
        )
        small = [k for k, v in values.items() if 0 < v < 5]
        intervals = attack(values, [("total", tuple(c["key"] for c in out))], hidden, small)
        assert all(i.protects(5) for i in intervals.values()), (sizes, intervals)


def sorted_sizes(rows: list[dict[str, Any]]) -> list[int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["municipality"]] = counts.get(row["municipality"], 0) + 1
    return [counts[k] for k in sorted(counts)]


# -- the certificate and its seal ----------------------------------------------------------


def test_rendered_certificate_seal_validates_and_one_byte_breaks_it(keys_dir: Path) -> None:
    seal = Seal(keys_dir / "facade-seal-key.pem", keys_dir / "facade-seal-cert.pem")
    pdf = render_pdf(
        CertificateData(
            number="BD-2026-000001",
            holder="Jānis Ķēniņš",
            organisation="Biedrība “Ūdens”",
            registration_number="40000000001",
            opportunity="Šķirošana",
            period_from=date(2026, 5, 1),
            period_to=date(2026, 5, 3),
            hours=7.5,
            competences=["Komandas darbs"],
            description=None,
            issued_at=datetime(2026, 5, 4, tzinfo=UTC),
            verification_url="http://127.0.0.1/v1/volunteering/certificates/BD-2026-000001/verify",
            attachments=[
                {"filename": "a.png", "sha256": "0" * 64, "content": b"\x89PNG\r\n\x1a\n"}
            ],
        )
    )
    sealed = seal.seal(pdf, reason="test")
    status = validate_pdf_signature(
        PdfFileReader(io.BytesIO(sealed)).embedded_signatures[0],
        ValidationContext(trust_roots=seal.roots),
    )
    assert status.bottom_line and status.intact and status.trusted
    assert seal.check(sealed).ok
    assert not seal.check(pdf).ok  # unsealed
    altered = bytearray(sealed)
    altered[len(pdf) // 2] ^= 0x20
    assert not seal.check(bytes(altered)).ok
    other = Seal(keys_dir / "intruder-key.pem", keys_dir / "intruder-cert.pem")
    assert not seal.check(other.seal(pdf, reason="forged")).ok  # sealed, but not by us
