"""Publishable packages: CSV, Frictionless Data Package and DCAT-AP 3 metadata per set and period.

For data set N and period P the package directory ``<out>/<P>/<slug>/`` holds:

- the data, ``<file>.csv``: UTF-8, a header of stable column names, one row per cell group;
  a suppressed count is empty with ``c`` in its ``<column>_flag`` column;
- ``codes.csv``: every code used in the data with its Latvian and English meaning;
- ``datapackage.json``: a Frictionless Data Package (both resources, Table Schemas with types,
  enumerations and descriptions, licence, contributors, temporal coverage);
- ``dcat.ttl``: DCAT-AP 3 metadata of the data set and this period's distribution (author,
  publisher, contact point for feedback, licence, update frequency, temporal coverage,
  structure, code meanings, stable URIs), serialised with rdflib.

The SHACL shapes of DCAT-AP 3.0.0 ship in ``gateway/opendata/shapes/`` (no network at run
time); :func:`validate_dcat` checks a graph against them.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, SKOS, XSD

from gateway.opendata.datasets import (
    AGE_GROUPS,
    OFFENCE_TYPES,
    Average,
    Cell,
    DataSetInfo,
    PeriodSpan,
)
from gateway.opendata.extract import ExtractCodes

__all__ = ["SHAPES", "DataFile", "code_labels", "dcat_graph", "render", "validate_dcat"]

SHAPES = Path(__file__).parent / "shapes" / "dcat-ap-3.0.0-SHACL.ttl"
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
_EU = "http://publications.europa.eu/resource/authority/"
_FLAG = "c"


@dataclass(frozen=True)
class DataFile:
    """One set's files for one period, in memory."""

    info: DataSetInfo
    period: str
    csv: bytes
    codes_csv: bytes
    datapackage: dict[str, Any]
    dcat: str
    suppressed: int
    rows: int

    @property
    def sha256(self) -> str:
        """SHA-256 of the data file (the published resource's hash)."""
        return hashlib.sha256(self.csv).hexdigest()

    def write(self, directory: Path) -> Path:
        """Write the package under ``directory/<period>/<slug>/``; the package directory."""
        target = directory / self.period / self.info.slug
        target.mkdir(parents=True, exist_ok=True)
        (target / self.info.file).write_bytes(self.csv)
        (target / "codes.csv").write_bytes(self.codes_csv)
        (target / "datapackage.json").write_text(
            json.dumps(self.datapackage, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (target / "dcat.ttl").write_text(self.dcat, encoding="utf-8")
        return target


def code_labels(codes: ExtractCodes) -> dict[str, dict[str, tuple[str, str]]]:
    """column -> code -> (Latvian, English) meaning, for every coded column."""

    def from_classifier(classifier: Any) -> dict[str, tuple[str, str]]:
        return {
            c: (
                classifier.labels.get(c, {}).get("label_lv", c),
                classifier.labels.get(c, {}).get("label_en", c),
            )
            for c in classifier.canonical_codes
        }

    activity = from_classifier(codes.economic_activity)
    total = {"total": ("Kopā", "Total")}
    categories: dict[str, tuple[str, str]] = {
        "M": ("Vīrietis", "Male"),
        "F": ("Sieviete", "Female"),
        "under_18": ("Līdz 17 gadiem", "Under 18"),
        "55_and_over": ("55 un vairāk", "55 and over"),
        "sexual": ("Dzimumnoziegums", "Sexual offence"),
        "violent": ("Vardarbīgs noziegums (nav dzimumnoziegums)", "Violent, not sexual"),
        "other": ("Cits", "Other"),
        **{g: (f"{g} gadi", f"Aged {g}") for g in AGE_GROUPS if "-" in g},
        **activity,
        **total,
    }
    assert set(OFFENCE_TYPES) <= set(categories)
    return {
        "function_subtype": from_classifier(codes.function_subtype),
        "breakdown": {
            "total": ("Kopā", "Total of the sub-type"),
            "sex": ("Dzimums", "Sex"),
            "age_group": ("Vecuma grupa", "Age group (year of the period minus birth year)"),
            "offence": ("Nozieguma veids", "Offence type"),
            "economic_activity": ("Ekonomiskā aktivitāte", "Economic activity at the start"),
        },
        "category": categories,
        "activity_at_start": {**activity, **total},
        "activity_at_end": {**activity, **total},
        "participation": {
            "participating": ("Piedalās", "Took part in a probation programme"),
            "not_participating": ("Nepiedalās", "Did not take part"),
            **total,
        },
        "outcome": {
            **from_classifier(codes.mediation_outcome),
            "unknown": ("Nav zināms", "Outcome not recorded"),
            **total,
        },
        "reoffending": {
            "not_reoffended": ("Nav izdarījis recidīvu", "Did not reoffend"),
            "reoffended": ("Izdarījis recidīvu", "Reoffended during supervision"),
            "unknown": ("Nav zināms", "Not recorded"),
            **total,
        },
        "work_type": {
            "forced_labour": ("Piespiedu darbs", "Forced labour (both kinds)"),
            "public_work": ("Sabiedriskais darbs", "Public work (minors)"),
        },
        "measure": {
            "persons": ("Personas", "Active persons"),
            "clients": ("Klienti", "Active clients (cases)"),
        },
    }


_DESCRIPTIONS = {
    "period": "The period: a month YYYY-MM or a year YYYY",
    "function_subtype_lv": "The function sub-type's name in Latvian",
    "active_clients": "Clients (cases) active in the period",
    "supervision_clients": "Active supervision clients",
    "average_term_months": "Average planned supervision term in months",
    "clients": "Clients",
    "mediations": "Mediations closed in the period",
    "average_hours": "Average hours worked so far",
    "count": "Count",
}


def render(
    info: DataSetInfo,
    period: PeriodSpan,
    rows: list[dict[str, Any]],
    values: dict[str, int],
    suppressed: set[str],
    codes: ExtractCodes,
    *,
    base_uri: str,
    publisher: str,
    publisher_uri: str,
    contact_email: str,
    licence: str,
) -> DataFile:
    """The files of set ``info`` for ``period`` from its rows, with suppression applied."""
    labels = code_labels(codes)
    columns: list[str] = []
    for name, value in rows[0].items():
        columns.append(name)
        if isinstance(value, Cell | Average):
            columns.append(f"{name}_flag")
    out_rows: list[list[str]] = []
    hidden = 0
    for row in rows:
        line: list[str] = []
        for value in row.values():
            if isinstance(value, Cell):
                if value.key in suppressed:
                    line += ["", _FLAG]
                    hidden += 1
                else:
                    line += [str(values[value.key]), ""]
            elif isinstance(value, Average):
                if value.n in suppressed:
                    line += ["", _FLAG]
                elif value.value is None:
                    line += ["", ""]
                else:
                    line += [f"{value.value:.{value.digits}f}", ""]
            else:
                line.append(str(value))
        out_rows.append(line)
    data = _csv([columns, *out_rows])
    used = {name: sorted({str(r[name]) for r in rows}) for name in rows[0] if name in labels}
    codes_rows = [["field", "code", "label_lv", "label_en"]]
    for name, found in used.items():
        for code in found:
            lv, en = labels[name].get(code, (code, code))
            codes_rows.append([name, code, lv, en])
    codes_csv = _csv(codes_rows)
    fields = []
    for name in columns:
        sample = rows[0].get(name)
        if name.endswith("_flag"):
            fields.append(
                {
                    "name": name,
                    "type": "string",
                    "description": f"'c': {name[:-5]} suppressed (confidential)",
                    "constraints": {"enum": ["", _FLAG]},
                }
            )
        elif isinstance(sample, Cell):
            fields.append(
                {
                    "name": name,
                    "type": "integer",
                    "description": _DESCRIPTIONS.get(name, name),
                    "constraints": {"minimum": 0},
                }
            )
        elif isinstance(sample, Average):
            fields.append(
                {
                    "name": name,
                    "type": "number",
                    "description": _DESCRIPTIONS.get(name, name),
                    "constraints": {"minimum": 0},
                }
            )
        elif name in labels:
            fields.append(
                {
                    "name": name,
                    "type": "string",
                    "description": "; ".join(
                        f"{c}: {labels[name].get(c, (c, c))[1]}" for c in used[name]
                    ),
                    "constraints": {"required": True, "enum": used[name]},
                }
            )
        else:
            fields.append(
                {
                    "name": name,
                    "type": "string",
                    "description": _DESCRIPTIONS.get(name, name),
                    "constraints": {"required": True},
                }
            )
    dataset_uri = f"{base_uri.rstrip('/')}/{info.slug}"
    descriptor: dict[str, Any] = {
        "profile": "data-package",
        "name": f"{info.slug}-{period.key}",
        "id": f"{dataset_uri}/{period.key}",
        "title": f"{info.title_en} ({period.key})",
        "description": info.description,
        "homepage": dataset_uri,
        "version": period.key,
        "licenses": [
            {"name": "CC-BY-4.0", "path": licence, "title": "Creative Commons Attribution 4.0"}
        ],
        "contributors": [
            {"title": publisher, "path": publisher_uri, "email": contact_email, "role": "publisher"}
        ],
        "keywords": ["probation", "probācija", "VPD"],
        "temporal": {"start": period.first_day.isoformat(), "end": period.last_day.isoformat()},
        "resources": [
            {
                "name": info.slug.split("-", 1)[0],
                "path": info.file,
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "hash": f"sha256:{hashlib.sha256(data).hexdigest()}",
                "bytes": len(data),
                "schema": {"fields": fields, "missingValues": [""]},
            },
            {
                "name": "codes",
                "path": "codes.csv",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "description": "The meaning of every code in the data",
                "schema": {"fields": [{"name": n, "type": "string"} for n in codes_rows[0]]},
            },
        ],
    }
    graph = dcat_graph(
        info,
        period,
        data,
        base_uri=base_uri,
        publisher=publisher,
        publisher_uri=publisher_uri,
        contact_email=contact_email,
        licence=licence,
    )
    return DataFile(
        info=info,
        period=period.key,
        csv=data,
        codes_csv=codes_csv,
        datapackage=descriptor,
        dcat=graph.serialize(format="turtle"),
        suppressed=hidden,
        rows=len(out_rows),
    )


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def dcat_graph(
    info: DataSetInfo,
    period: PeriodSpan,
    data: bytes,
    *,
    base_uri: str,
    publisher: str,
    publisher_uri: str,
    contact_email: str,
    licence: str,
) -> Graph:
    """DCAT-AP 3 description of set ``info`` and its distribution for ``period``."""
    g = Graph()
    for prefix, ns in (
        ("dcat", DCAT),
        ("dct", DCTERMS),
        ("foaf", FOAF),
        ("vcard", VCARD),
        ("skos", SKOS),
        ("adms", ADMS),
    ):
        g.bind(prefix, ns)
    base = base_uri.rstrip("/")
    dataset = URIRef(f"{base}/{info.slug}")
    distribution = URIRef(f"{base}/{info.slug}/{period.key}")
    download = URIRef(f"{base}/{info.slug}/{period.key}/{info.file}")
    agent = URIRef(publisher_uri)
    contact = URIRef(f"{base}/contact")
    licence_ref = URIRef(licence)
    frequency = URIRef(_EU + "frequency/" + ("ANNUAL" if period.yearly else "MONTHLY"))
    theme = URIRef(_EU + "data-theme/JUST")
    csv_type = URIRef(_EU + "file-type/CSV")
    media = URIRef("http://www.iana.org/assignments/media-types/text/csv")
    structure = URIRef(f"{base}/{info.slug}/{period.key}/datapackage.json")
    codes_page = URIRef(f"{base}/{info.slug}/{period.key}/codes.csv")
    # A URI, not a blank node: the Turtle of one period is the same on every build.
    temporal = URIRef(f"{base}/{info.slug}/{period.key}#temporal")

    g.add((dataset, RDF.type, DCAT.Dataset))
    g.add((dataset, RDF.type, RDFS.Resource))
    g.add((dataset, DCTERMS.title, Literal(info.title_lv, lang="lv")))
    g.add((dataset, DCTERMS.title, Literal(info.title_en, lang="en")))
    g.add((dataset, DCTERMS.description, Literal(info.description, lang="en")))
    g.add((dataset, DCTERMS.identifier, Literal(f"{base}/{info.slug}")))
    g.add((dataset, DCTERMS.publisher, agent))
    g.add((dataset, DCTERMS.creator, agent))
    g.add((dataset, DCAT.contactPoint, contact))
    g.add((dataset, DCTERMS.accrualPeriodicity, frequency))
    g.add((dataset, DCAT.theme, theme))
    g.add((dataset, DCAT.keyword, Literal("probācija", lang="lv")))
    g.add((dataset, DCAT.keyword, Literal("probation", lang="en")))
    g.add((dataset, DCTERMS.temporal, temporal))
    g.add((dataset, DCTERMS.conformsTo, structure))
    g.add((dataset, FOAF.page, codes_page))
    g.add((dataset, DCAT.distribution, distribution))

    g.add((agent, RDF.type, FOAF.Agent))
    g.add((agent, FOAF.name, Literal(publisher, lang="lv")))
    g.add((contact, RDF.type, VCARD.Organization))
    # Typed as the shapes' classes too: validation runs without RDFS inference.
    g.add((contact, RDF.type, VCARD.Kind))
    g.add((contact, VCARD.fn, Literal(publisher, lang="lv")))
    g.add((contact, VCARD.hasEmail, URIRef(f"mailto:{contact_email}")))
    g.add((frequency, RDF.type, DCTERMS.Frequency))
    g.add((theme, RDF.type, SKOS.Concept))
    g.add((theme, SKOS.prefLabel, Literal("Justice, legal system and public safety", lang="en")))
    g.add((temporal, RDF.type, DCTERMS.PeriodOfTime))
    g.add((temporal, DCAT.startDate, Literal(period.first_day.isoformat(), datatype=XSD.date)))
    g.add((temporal, DCAT.endDate, Literal(period.last_day.isoformat(), datatype=XSD.date)))
    g.add((structure, RDF.type, DCTERMS.Standard))
    g.add(
        (structure, RDFS.label, Literal("Frictionless Data Package with Table Schema", lang="en"))
    )
    g.add((codes_page, RDF.type, FOAF.Document))
    g.add((codes_page, RDFS.label, Literal("Meaning of the codes", lang="en")))

    g.add((distribution, RDF.type, DCAT.Distribution))
    g.add((distribution, DCTERMS.title, Literal(f"{info.title_en} {period.key}", lang="en")))
    g.add((distribution, DCAT.accessURL, dataset))
    g.add((distribution, DCAT.downloadURL, download))
    g.add((download, RDF.type, RDFS.Resource))
    g.add((distribution, DCTERMS.format, csv_type))
    g.add((distribution, DCAT.mediaType, media))
    g.add((distribution, DCTERMS.license, licence_ref))
    g.add((distribution, DCTERMS.conformsTo, structure))
    g.add((distribution, DCTERMS.temporal, temporal))
    g.add((distribution, DCAT.byteSize, Literal(len(data), datatype=XSD.nonNegativeInteger)))
    g.add((csv_type, RDF.type, DCTERMS.MediaTypeOrExtent))
    g.add((media, RDF.type, DCTERMS.MediaType))
    g.add((licence_ref, RDF.type, DCTERMS.LicenseDocument))
    return g


@functools.cache
def _shapes() -> Graph:
    return Graph().parse(SHAPES, format="turtle")


def validate_dcat(turtle: str) -> tuple[bool, str]:
    """Validate DCAT-AP Turtle against the shipped DCAT-AP 3 SHACL shapes: (conforms, report)."""
    from pyshacl import validate

    data = Graph().parse(data=turtle, format="turtle")
    conforms, _graph, text = validate(data, shacl_graph=_shapes(), inference="none")
    return bool(conforms), str(text)
