"""Applying a new version: the rewritten file, the journal entry, and never half of it."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from gateway.classifiers.apply import JOURNAL_STATUS, PlannedChange, apply_change, plan
from gateway.classifiers.breaks import Break
from gateway.classifiers.diff import diff_classifier
from gateway.classifiers.remote import RemoteCode
from gateway.errors import ConfigError, StoreUnavailableError
from gateway.mapping import MappingRegistry
from gateway.mapping.spec import load_classifier
from gateway.store import Store
from gateway.store.schema import journal

from .conftest import Tree, published

DAY = date(2026, 6, 1)
NEW_CODE = RemoteCode(
    "UZR_PIRMS_TERMINA_EU",
    "Nosacīti pirms termiņa atbrīvotas personas uzraudzība ar elektronisko uzraudzību",
    "Supervision after conditional early release with electronic monitoring",
)


def planned(tree: Tree, name: str, **changes: Any) -> PlannedChange:
    path = tree.classifier_file(name)
    remote = published(tree.remote(name), "2027.1", **changes)
    return plan(path, diff_classifier(load_classifier(path), remote, day=DAY))


def journal_rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(journal).where(journal.c.status == JOURNAL_STATUS))
        return [dict(r._mapping) for r in rows]


def test_rendered_file_keeps_header_canonical_codes_and_loads(tree: Tree) -> None:
    change = planned(
        tree,
        "function_subtype",
        add=(NEW_CODE,),
        drop=("IZLIGUMS",),
        relabel={"PIESPIEDU_DARBS": "Forced labour (community service)"},
    )
    text = change.new_text
    assert text.startswith("# Function sub-types (test fixture: three of the thirteen).\n")
    assert 'version: "2027.1"' in text
    assert "IZLIGUMS" not in text
    new = change.new
    assert new.version == "2027.1" and new.source == "VPD.FUNCTION_SUBTYPE"
    assert new.canonical_codes == (
        "forced_labour",
        "public_work",
        # Long labels are cut at a word boundary (60 characters at most).
        "supervision_after_conditional_early_release_with_electronic",
    )
    assert new.to_wire["ecase"]["forced_labour"] == "PIESPIEDU_DARBS"
    assert new.labels["forced_labour"]["label_en"] == "Forced labour (community service)"
    # Long entries wrap like the hand-written files: codes first, then each label on its line.
    assert text.splitlines()[-3:] == [
        "  - {canonical: supervision_after_conditional_early_release_with_electronic, "
        "ecase: UZR_PIRMS_TERMINA_EU,",
        f'     label_lv: "{NEW_CODE.label_lv}",',
        f'     label_en: "{NEW_CODE.label_en}"}}',
    ]
    assert "  - {canonical: public_work, ecase: SABIEDRISKAIS_DARBS,\n     label_lv: " in text


def test_other_columns_and_descriptions_of_existing_entries_are_kept(tree: Tree) -> None:
    path = tree.classifier_file("function_subtype")
    path.write_text(
        path.read_text().replace(
            "ecase: IZLIGUMS,", 'ecase: IZLIGUMS, legacy: "IZ", description: "Section 9",'
        )
    )
    change = planned(tree, "function_subtype", relabel={"IZLIGUMS": "Mediation (izlīgums)"})
    entry = yaml.safe_load(change.new_text)["codes"][2]
    assert entry == {
        "canonical": "mediation",
        "ecase": "IZLIGUMS",
        "legacy": "IZ",
        "label_lv": "Izlīgums",
        "label_en": "Mediation (izlīgums)",
        "description": "Section 9",
    }


def test_tricky_labels_survive_the_round_trip(tree: Tree) -> None:
    odd = 'Quote " colon: hash # yes'
    change = planned(tree, "function_subtype", relabel={"IZLIGUMS": odd})
    assert change.new.labels["mediation"]["label_en"] == odd


def test_apply_writes_the_file_and_journals(tree: Tree, store: Store) -> None:
    change = planned(tree, "function_subtype", relabel={"IZLIGUMS": "Mediation (izlīgums)"})
    apply_change(change, store, actor="officer-7", forced=False)
    path = tree.classifier_file("function_subtype")
    assert path.read_text(encoding="utf-8") == change.new_text
    assert load_classifier(path).version == "2027.1"
    MappingRegistry.load(tree.mappings)  # the contract still loads
    [row] = journal_rows(store)
    assert (row["direction"], row["partner"], row["actor"]) == ("local", "ecase", "officer-7")
    assert row["detail"] == (
        "function_subtype (VPD.FUNCTION_SUBTYPE) 2026.1 -> 2027.1: 0 added, 0 removed, 1 relabelled"
    )
    assert row["payload"] == change.new_text.encode()
    assert store.journal.verify().ok
    assert not list(path.parent.glob(".*.tmp"))


def test_breaks_block_unless_forced_and_forcing_is_journaled(tree: Tree, store: Store) -> None:
    change = planned(tree, "function_subtype", add=(NEW_CODE,))
    broken = dataclasses.replace(
        change,
        breaks=(Break("function_subtype", "xsd_missing_code", "does not list it"),),
    )
    before = tree.classifier_file("function_subtype").read_text()
    with pytest.raises(ConfigError, match="block applying"):
        apply_change(broken, store, actor="ops", forced=False)
    assert tree.classifier_file("function_subtype").read_text() == before
    assert journal_rows(store) == []
    apply_change(broken, store, actor="ops", forced=True)
    [row] = journal_rows(store)
    assert row["detail"].startswith("FORCED over 1 break(s) (xsd_missing_code); ")
    assert "UZR_PIRMS_TERMINA_EU=supervision_after_conditional" in row["detail"]


def test_journal_failure_puts_the_old_file_back(
    tree: Tree, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    change = planned(tree, "function_subtype", relabel={"IZLIGUMS": "Mediation (izlīgums)"})

    def down(**values: Any) -> None:
        raise StoreUnavailableError("database is locked")

    monkeypatch.setattr(store.journal, "append", down)
    with pytest.raises(StoreUnavailableError):
        apply_change(change, store, actor="ops", forced=False)
    assert tree.classifier_file("function_subtype").read_text() == change.old_text


def test_a_file_edited_after_the_diff_is_not_overwritten(tree: Tree, store: Store) -> None:
    change = planned(tree, "function_subtype", relabel={"IZLIGUMS": "Mediation (izlīgums)"})
    path: Path = change.path
    path.write_text(path.read_text() + "# edited by hand\n")
    with pytest.raises(ConfigError, match="changed since the diff"):
        apply_change(change, store, actor="ops", forced=False)
    assert path.read_text().endswith("# edited by hand\n")
    assert journal_rows(store) == []


def test_the_file_is_edited_in_place_so_a_review_shows_only_the_change(tree: Tree) -> None:
    path = tree.classifier_file("function_subtype")
    path.write_text(
        path.read_text()
        .replace(
            "  - {canonical: mediation,",
            "  # Mediation is counted in data set 5.\n  - {canonical: mediation,",
        )
        .replace('label_en: "Forced labour"}', 'label_en: "Forced labour"}  # OD-09 row 6')
    )
    before = path.read_text().splitlines()
    change = planned(tree, "function_subtype", relabel={"SABIEDRISKAIS_DARBS": "Public work"})
    after = change.new_text.splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [
        ('version: "2026.1"', 'version: "2027.1"'),
        (
            '     label_lv: "Sabiedriskais darbs (nepilngadīgajiem 11-18)", '
            'label_en: "Public work (minors 11-18)"}',
            '     label_lv: "Sabiedriskais darbs (nepilngadīgajiem 11-18)", '
            'label_en: "Public work"}',
        ),
    ]
    assert "  # Mediation is counted in data set 5." in after
    assert any(line.endswith("# OD-09 row 6") for line in after)


def test_a_removed_entry_takes_its_comment_with_it(tree: Tree) -> None:
    path = tree.classifier_file("function_subtype")
    path.write_text(
        path.read_text().replace(
            "  - {canonical: mediation,",
            "  # Mediation is counted in data set 5.\n  - {canonical: mediation,",
        )
    )
    text = planned(tree, "function_subtype", drop=("IZLIGUMS",)).new_text
    assert "Mediation" not in text and "IZLIGUMS" not in text


def test_a_block_style_file_is_regenerated_with_its_header(tree: Tree) -> None:
    path = tree.classifier_file("function_subtype")
    path.write_text(
        "# Block style.\n"
        "name: function_subtype\ntitle: Function sub-type\nversion: '2026.1'\n"
        "source: VPD.FUNCTION_SUBTYPE\ncodes:\n"
        "- canonical: forced_labour\n  ecase: PIESPIEDU_DARBS\n"
        "  label_lv: Piespiedu darbs\n  label_en: Forced labour\n"
        "- canonical: public_work\n  ecase: SABIEDRISKAIS_DARBS\n"
        "  label_lv: Sabiedriskais darbs (nepilngadīgajiem 11-18)\n"
        "  label_en: Public work (minors 11-18)\n"
        "- canonical: mediation\n  ecase: IZLIGUMS\n  label_lv: Izlīgums\n  label_en: Mediation\n"
    )
    change = planned(tree, "function_subtype", relabel={"IZLIGUMS": "Mediation (izlīgums)"})
    assert change.new_text.startswith("# Block style.\nname: function_subtype\n")
    assert '  - {canonical: mediation, ecase: IZLIGUMS, label_lv: "Izlīgums", ' in change.new_text
    assert change.new.labels["mediation"]["label_en"] == "Mediation (izlīgums)"
