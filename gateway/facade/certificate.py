"""The certificate PDF (fpdf2) and its PAdES seal (pyHanko): render, seal, validate.

Why fpdf2: a pure-Python wheel (no Cairo/Pango system libraries as WeasyPrint needs, no C
extension as ReportLab has), so a clean clone installs it from pyproject.toml alone; it embeds
and subsets TrueType fonts (DejaVu Sans ships in ``fonts/``, covering Latvian ā č ē ģ ī ķ ļ ņ
š ū ž, which the PDF core fonts cannot show) and embeds attachments as PDF file attachments,
so they sit under the seal. Its output is a plain PDF that pyHanko appends a signature to.

The seal is a PAdES baseline B-B certification signature (``/ETSI.CAdES.detached``, DocMDP
"no changes"), made with the facade's seal key. Validation uses pyHanko's own validator with
the seal certificate (and ``facade.seal.trust``) as trust roots, and demands an intact, valid,
trusted signature covering the whole file: one changed byte anywhere fails it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from fpdf import FPDF
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from gateway.errors import ConfigError
from gateway.facade.errors import UnprocessableError

__all__ = ["CertificateData", "Seal", "SealCheck", "render_pdf"]

_FONTS = Path(__file__).parent / "fonts"


@dataclass(frozen=True)
class CertificateData:
    """What a certificate says."""

    number: str
    holder: str
    organisation: str
    registration_number: str
    opportunity: str
    period_from: date | None
    period_to: date | None
    hours: float
    competences: Sequence[str]
    description: str | None
    issued_at: datetime
    verification_url: str
    attachments: Sequence[dict[str, Any]] = field(default_factory=tuple)
    sample: bool = False


def _hours(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def render_pdf(data: CertificateData) -> bytes:
    """The certificate as an unsealed PDF (A4, DejaVu Sans, attachments embedded)."""
    pdf = FPDF(format="A4")
    pdf.set_title(f"Izziņa par brīvprātīgo darbu {data.number}")
    pdf.set_author(data.organisation)
    pdf.set_creator("plus-gateway volunteer facade")
    pdf.set_creation_date(data.issued_at)
    pdf.add_font("DejaVu", "", str(_FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(_FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    width = pdf.epw

    pdf.set_font("DejaVu", "B", 16)
    pdf.multi_cell(width, 9, "IZZIŅA par brīvprātīgo darbu", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 11)
    pdf.multi_cell(width, 6, "Certificate of volunteer work", new_x="LMARGIN", new_y="NEXT")
    if data.sample:
        pdf.set_font("DejaVu", "B", 12)
        pdf.multi_cell(
            width, 8, "PARAUGS / SAMPLE: nav derīga / not valid", new_x="LMARGIN", new_y="NEXT"
        )
    pdf.ln(4)

    def row(label: str, value: str) -> None:
        pdf.set_font("DejaVu", "B", 10)
        pdf.multi_cell(width, 6, label, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 11)
        pdf.multi_cell(width, 6, value, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    period = "—"
    if data.period_from and data.period_to:
        period = f"{data.period_from.isoformat()} \u2013 {data.period_to.isoformat()}"
    row("Numurs / Number", data.number)
    row("Brīvprātīgais / Volunteer", data.holder)
    row(
        "Organizācija / Organisation",
        f"{data.organisation} (reģ. nr. {data.registration_number})",
    )
    row("Brīvprātīgā darba iespēja / Opportunity", data.opportunity)
    row("Periods / Period", period)
    row("Apstiprinātās stundas / Approved hours", _hours(data.hours))
    row(
        "Iegūtās kompetences / Competences gained",
        "\n".join(f"• {c}" for c in data.competences) or "—",
    )
    if data.description:
        row("Apraksts / Description", data.description)
    if data.attachments:
        row(
            "Pielikumi / Attachments (iegulti šajā PDF / embedded in this PDF)",
            "\n".join(f"{a['filename']}  sha256 {a['sha256']}" for a in data.attachments),
        )
    row("Izsniegta / Issued", data.issued_at.strftime("%Y-%m-%d %H:%M UTC"))
    pdf.ln(4)
    pdf.set_font("DejaVu", "", 9)
    pdf.multi_cell(
        width,
        5,
        "Izziņa sagatavota elektroniski un apzīmogota ar elektronisko zīmogu (PAdES). "
        "Tās autentiskumu un nemainīgumu var pārbaudīt / Prepared electronically and sealed "
        "(PAdES); check that it is authentic and unchanged at:",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("DejaVu", "B", 9)
    pdf.multi_cell(width, 5, data.verification_url, new_x="LMARGIN", new_y="NEXT")
    for attachment in data.attachments:
        pdf.embed_file(
            basename=attachment["filename"],
            bytes=attachment["content"],
            desc=f"sha256 {attachment['sha256']}",
            compress=True,
        )
    return bytes(pdf.output())


@dataclass(frozen=True)
class SealCheck:
    """The outcome of validating a sealed PDF."""

    ok: bool
    summary: str


class Seal:
    """The facade's seal: PAdES signing with its key, validation against its trust roots."""

    def __init__(self, key: Path, certificate: Path, trust: Sequence[Path] = ()) -> None:
        for path, what in ((key, "key"), (certificate, "certificate")):
            if not Path(path).is_file():
                raise ConfigError(
                    f"facade.seal.{what}: {path} not found (run `plus-gateway keys init`)"
                )
        signer = signers.SimpleSigner.load(str(key), str(certificate))
        if signer is None:
            raise ConfigError(f"facade.seal: cannot load the key {key} with {certificate}")
        self.signer = signer
        self.roots = [_asn1_certificate(certificate), *(_asn1_certificate(p) for p in trust)]

    def seal(self, pdf: bytes, *, reason: str) -> bytes:
        """``pdf`` with a PAdES certification signature appended (DocMDP: no changes)."""
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        meta = signers.PdfSignatureMetadata(
            field_name="Seal",
            subfilter=SigSeedSubFilter.PADES,
            certify=True,
            docmdp_permissions=fields.MDPPerm.NO_CHANGES,
            reason=reason,
            location="Latvija",
        )
        out = signers.sign_pdf(writer, meta, signer=self.signer)
        return bytes(out.getvalue())

    def check(self, pdf: bytes) -> SealCheck:
        """Validate the one seal of ``pdf`` with pyHanko; never raises for bad input."""
        try:
            reader = PdfFileReader(io.BytesIO(pdf), strict=False)
            signatures = reader.embedded_signatures
            if len(signatures) != 1:
                return SealCheck(False, f"expected one seal, found {len(signatures)}")
            status = validate_pdf_signature(
                signatures[0], ValidationContext(trust_roots=self.roots)
            )
        except Exception as exc:
            return SealCheck(False, f"not a readable sealed PDF ({type(exc).__name__})")
        coverage = getattr(status.coverage, "name", str(status.coverage))
        ok = bool(
            status.bottom_line
            and status.intact
            and status.valid
            and status.trusted
            and coverage == "ENTIRE_FILE"
        )
        summary = (
            f"intact={status.intact} valid={status.valid} trusted={status.trusted} "
            f"coverage={coverage}"
        )
        return SealCheck(ok, summary)

    def require_valid(self, pdf: bytes) -> SealCheck:
        """Like :meth:`check`, but a failing seal is a 422 SEAL_INVALID."""
        result = self.check(pdf)
        if not result.ok:
            raise UnprocessableError(
                "SEAL_INVALID",
                f"the certificate's seal does not validate: {result.summary}",
                path="body.pdf_base64",
            )
        return result


def _asn1_certificate(path: Path) -> asn1_x509.Certificate:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"facade.seal: cannot read {path}: {exc.strerror}") from exc
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return asn1_x509.Certificate.load(data)
