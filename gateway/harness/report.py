"""Results, coverage and the reports: JUnit XML, a self-contained HTML page, one line.

Everything written leaves personal data masked: personal codes anywhere, and the text of
elements or JSON keys that name a person, a name or a birth date (the key rules of
:func:`gateway.logging.mask_personal_data`), in the requests and answers shown.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from gateway.harness.cases import Case
from gateway.harness.transport import Wire
from gateway.logging import mask_personal_data, mask_text

__all__ = ["Plan", "Result", "Run", "mask_wire_body", "write_html", "write_junit"]

_MAX_SHOWN = 20_000  # characters of one body in the reports
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")


@dataclass
class Result:
    """The verdict on one case, with what went over the wire."""

    case: Case
    verdict: str  # passed | failed | skipped
    reason: str
    wires: list[Wire] = field(default_factory=list)
    seconds: float = 0.0
    observed: str | None = None  # the code, status or answer seen
    exercised: bool = False  # the operation answered in the contract's shape


@dataclass
class Plan:
    """What one mode against one institution covers: its operations and fault codes."""

    mode: str
    institution: str
    operations: set[str]
    declared_codes: set[str]


@dataclass
class Run:
    """A whole harness run."""

    target: str
    plans: list[Plan] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        """Cases per verdict."""
        out = {"passed": 0, "failed": 0, "skipped": 0}
        for r in self.results:
            out[r.verdict] = out.get(r.verdict, 0) + 1
        return out

    @property
    def ok(self) -> bool:
        """No case failed (and at least one ran)."""
        c = self.counts()
        return c["failed"] == 0 and c["passed"] > 0

    def coverage(self) -> list[dict[str, Any]]:
        """Per plan: operations exercised of the total, fault codes seen of those declared."""
        rows = []
        for plan in self.plans:
            mine = [
                r
                for r in self.results
                if r.case.mode == plan.mode and r.case.institution == plan.institution
            ]
            exercised = {r.case.operation for r in mine if r.exercised and r.case.operation}
            seen = {r.observed for r in mine if r.observed in plan.declared_codes}
            rows.append(
                {
                    "mode": plan.mode,
                    "institution": plan.institution,
                    "operations_total": len(plan.operations),
                    "operations_exercised": len(exercised & plan.operations),
                    "operations_missing": sorted(plan.operations - exercised),
                    "codes_declared": len(plan.declared_codes),
                    "codes_seen": sorted(seen),
                    "codes_not_seen": sorted(plan.declared_codes - seen),
                }
            )
        return rows

    def summary(self) -> str:
        """The one-line summary."""
        c = self.counts()
        cov = self.coverage()
        ops = sum(r["operations_exercised"] for r in cov), sum(r["operations_total"] for r in cov)
        pct = 100.0 * ops[0] / ops[1] if ops[1] else 0.0
        verdict = "PASSED" if self.ok else "FAILED"
        return (
            f"harness {verdict}: {c['passed']} passed, {c['failed']} failed, "
            f"{c['skipped']} skipped; operations {ops[0]}/{ops[1]} ({pct:.0f} %); "
            f"{self.seconds:.1f} s; target {self.target}"
        )


# -- masking -------------------------------------------------------------------------------


def mask_wire_body(body: bytes, content_type: str = "") -> str:
    """A request or answer body fit for a report: personal data masked, size bounded."""
    if not body:
        return ""
    text = body.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError:
            return mask_text(text)[:_MAX_SHOWN]
        masked = json.dumps(_mask(data), indent=2, ensure_ascii=False)
        return masked[:_MAX_SHOWN]
    if stripped.startswith("<"):
        try:
            # The harness's own parse of what it sent or received: recover=False, no network,
            # no entities (the target's answer is untrusted input).
            parser = etree.XMLParser(
                resolve_entities=False, no_network=True, huge_tree=False, remove_comments=False
            )
            root = etree.fromstring(body, parser)
        except etree.XMLSyntaxError:
            return mask_text(text)[:_MAX_SHOWN]
        for element in root.iter():
            if not isinstance(element.tag, str):
                continue
            local = etree.QName(element).localname
            if element.tag.startswith("{http://www.w3.org/2000/09/xmldsig#}"):
                continue  # signature values and certificates: no personal data, keep them
            if element.text and element.text.strip() and not len(element):
                masked = _mask({local: element.text})[local]
                element.text = masked if isinstance(masked, str) else "***"
        pretty = etree.tostring(root, pretty_print=True, encoding="unicode")
        return mask_text(pretty)[:_MAX_SHOWN]
    return mask_text(text)[:_MAX_SHOWN]


def _mask(data: Any) -> Any:
    """The log pipeline's masking (the same key rules), applied to one value, and to what a
    string carries inside: JSON (a form's data) or base64 (an identity assertion)."""
    return mask_personal_data(None, "", {"value": _unwrap(data)})["value"]


def _unwrap(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _unwrap(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_unwrap(v) for v in data]
    if isinstance(data, str):
        return _inner(data)
    return data


def _inner(text: str) -> Any:
    """JSON inside a string, masked as JSON; base64 whose content holds personal data, out."""
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            return json.dumps(_mask(json.loads(stripped)), ensure_ascii=False)
        except ValueError:
            return text
    if len(stripped) >= 40 and _BASE64.fullmatch(stripped):
        try:
            decoded = base64.b64decode(stripped, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return text
        if mask_text(decoded) != decoded or "PersonalCode" in decoded:
            return "*** (base64 content with personal data)"
    return text


# -- JUnit ---------------------------------------------------------------------------------


def write_junit(run: Run, path: Path) -> None:
    """JUnit XML: one testsuite per mode and institution, one testcase per case."""
    groups: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for r in run.results:
        groups[(r.case.mode, r.case.institution)].append(r)
    out = ['<?xml version="1.0" encoding="UTF-8"?>']
    c = run.counts()
    out.append(
        f'<testsuites name="plus-gateway harness" tests="{len(run.results)}" '
        f'failures="{c["failed"]}" skipped="{c["skipped"]}" time="{run.seconds:.3f}">'
    )
    for (mode, institution), results in sorted(groups.items()):
        failed = sum(r.verdict == "failed" for r in results)
        skipped = sum(r.verdict == "skipped" for r in results)
        seconds = sum(r.seconds for r in results)
        out.append(
            f'<testsuite name={quoteattr(f"{mode}.{institution}")} tests="{len(results)}" '
            f'failures="{failed}" errors="0" skipped="{skipped}" time="{seconds:.3f}">'
        )
        for r in results:
            out.append(
                f"<testcase classname={quoteattr(f'{mode}.{institution}')} "
                f'name={quoteattr(r.case.id)} time="{r.seconds:.3f}">'
            )
            if r.verdict == "failed":
                out.append(
                    f"<failure message={quoteattr(mask_text(r.reason)[:500])}>"
                    f"{escape(_wire_text(r))}</failure>"
                )
            elif r.verdict == "skipped":
                out.append(f"<skipped message={quoteattr(mask_text(r.reason)[:500])}/>")
            out.append("</testcase>")
        out.append("</testsuite>")
    out.append("</testsuites>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def _wire_text(r: Result) -> str:
    parts = [f"expected: {r.case.expect}; observed: {r.observed}; {mask_text(r.reason)}"]
    for w in r.wires:
        parts.append(f"--> {w.method} {w.url}\n{mask_wire_body(w.request)}")
        parts.append(
            f"<-- {w.status if w.status is not None else w.problem}\n"
            f"{mask_wire_body(w.response, w.content_type)}"
        )
    return "\n".join(parts)


# -- HTML ----------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2430}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.sum{padding:10px 14px;border-radius:6px;font-weight:600;margin:12px 0}
.ok{background:#e3f4e8;color:#14532d} .ko{background:#fde8e8;color:#7f1d1d}
table{border-collapse:collapse;width:100%} table.cases{table-layout:fixed}
th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #e3e6ea;vertical-align:top}
table.cases td{overflow-wrap:anywhere} th{background:#f4f6f8}
.passed{color:#15803d;font-weight:600} .failed{color:#b91c1c;font-weight:600}
.skipped{color:#92400e;font-weight:600}
details{margin:2px 0} summary{cursor:pointer}
pre{background:#f7f7f9;border:1px solid #e3e6ea;padding:8px;overflow:auto;max-height:360px;
font-size:12px;white-space:pre-wrap;word-break:break-all}
.muted{color:#5b6472} .bar{background:#e5e7eb;border-radius:3px;height:8px;width:120px;
display:inline-block;vertical-align:middle} .bar i{display:block;height:8px;border-radius:3px;
background:#2563eb}
"""


def write_html(run: Run, path: Path) -> None:
    """A self-contained HTML report (no scripts, no external resources)."""
    e = html.escape
    c = run.counts()
    rows = []
    for cov in run.coverage():
        total = cov["operations_total"] or 1
        pct = 100 * cov["operations_exercised"] / total
        missing = ""
        if cov["operations_missing"]:
            missing = (
                f" <span class=muted>missing: {e(', '.join(cov['operations_missing']))}</span>"
            )
        rows.append(
            f"<tr><td>{e(cov['mode'])}</td><td>{e(cov['institution'])}</td>"
            f"<td><span class=bar><i style='width:{pct:.0f}%'></i></span> "
            f"{cov['operations_exercised']}/{cov['operations_total']}"
            f"{missing}</td>"
            f"<td>{len(cov['codes_seen'])}/{cov['codes_declared']} "
            f"<span class=muted>{e(', '.join(cov['codes_seen']))}</span></td></tr>"
        )
    cases = []
    for r in run.results:
        wires = []
        for w in r.wires:
            got = f"HTTP {w.status}" if w.status is not None else (w.problem or "")
            wires.append(
                f"<div class=muted>&rarr; {e(w.method)} {e(w.url)}</div>"
                f"<pre>{e(mask_wire_body(w.request))}</pre>"
                f"<div class=muted>&larr; {e(got)} in {w.seconds * 1000:.0f} ms</div>"
                f"<pre>{e(mask_wire_body(w.response, w.content_type))}</pre>"
            )
        # A failed case shows its wire at once: that is what the reader came for.
        opened = " open" if r.verdict == "failed" else ""
        cases.append(
            f"<tr><td class={r.verdict}>{r.verdict}</td><td>{e(r.case.mode)}</td>"
            f"<td>{e(r.case.institution)}</td><td><details{opened}>"
            f"<summary>{e(r.case.title)}</summary>"
            f"<div class=muted>{e(r.case.id)}</div>{''.join(wires)}</details></td>"
            f"<td>{e(r.case.expect)}</td><td>{e(str(r.observed or ''))}</td>"
            f"<td>{e(mask_text(r.reason))}</td></tr>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>plus-gateway conformance report</title>
<style>{_CSS}</style></head><body>
<h1>plus-gateway conformance report</h1>
<div class=muted>target {e(run.target)} &middot; {e(run.started.isoformat(timespec="seconds"))}
&middot; {run.seconds:.1f} s &middot; personal data masked</div>
<div class="sum {"ok" if run.ok else "ko"}">{e(run.summary())}</div>
<h2>Coverage</h2>
<table><tr><th>mode</th><th>institution</th><th>operations exercised</th>
<th>fault codes seen / declared</th></tr>{"".join(rows)}</table>
<h2>Cases ({c["passed"]} passed, {c["failed"]} failed, {c["skipped"]} skipped)</h2>
<table class=cases><colgroup><col style="width:6%"><col style="width:6%">
<col style="width:7%"><col style="width:41%"><col style="width:11%"><col style="width:11%">
<col style="width:18%"></colgroup>
<tr><th>verdict</th><th>mode</th><th>institution</th><th>case (click: the wire)</th>
<th>expected</th><th>observed</th><th>why</th></tr>{"".join(cases)}</table>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
