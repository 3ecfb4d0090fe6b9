"""Diffing a local classifier against the service's version of it."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from gateway.classifiers.diff import diff_classifier, propose_canonical
from gateway.classifiers.remote import RemoteCode
from gateway.mapping.spec import load_classifier

from .conftest import Tree, published

DAY = date(2026, 6, 1)


def test_same_version_same_codes_is_in_sync(tree: Tree) -> None:
    local = load_classifier(tree.classifier_file("evaluation_purpose"))
    d = diff_classifier(local, tree.remote("evaluation_purpose"), day=DAY)
    assert d.in_sync
    assert not (d.added or d.removed or d.relabelled)


def test_version_change_alone_is_not_in_sync(tree: Tree) -> None:
    local = load_classifier(tree.classifier_file("evaluation_purpose"))
    d = diff_classifier(local, published(tree.remote("evaluation_purpose"), "2026.2"), day=DAY)
    assert not d.in_sync and not d.codes_changed
    assert (d.old_version, d.new_version) == ("2026.1", "2026.2")


def test_added_removed_and_relabelled_codes(tree: Tree) -> None:
    local = load_classifier(tree.classifier_file("evaluation_purpose"))
    remote = published(
        tree.remote("evaluation_purpose"),
        "2027.1",
        add=(RemoteCode("PROBACIJAS_PROG", "Programmas", "Probation programme suitability"),),
        drop=("PIRMS_TERMINA_EU",),
        relabel={"PIRMSTIESAS": "Pre-trial report"},
    )
    d = diff_classifier(local, remote, day=DAY)
    assert [(a.code, a.canonical) for a in d.added] == [
        ("PROBACIJAS_PROG", "probation_programme_suitability")
    ]
    assert [(r.code, r.canonical) for r in d.removed] == [("PIRMS_TERMINA_EU", "early_release_em")]
    assert [(r.code, r.key, r.old, r.new) for r in d.relabelled] == [
        ("PIRMSTIESAS", "label_en", "Pre-trial evaluation", "Pre-trial report")
    ]
    assert d.summary() == (
        "evaluation_purpose (VPD.EVALUATION_PURPOSE) 2026.1 -> 2027.1: "
        "1 added, 1 removed, 1 relabelled"
    )
    assert d.to_json()["added"][0]["canonical_proposed"] is True


def test_codes_outside_their_validity_count_as_absent(tree: Tree) -> None:
    local = load_classifier(tree.classifier_file("function_subtype"))
    remote = tree.remote("function_subtype")
    codes = [
        RemoteCode(c.code, c.label_lv, c.label_en, valid_to=date(2026, 5, 31))
        if c.code == "IZLIGUMS"
        else c
        for c in remote.codes
    ]
    future = RemoteCode("NAKOTNE", "Nākotne", "Future work", valid_from=date(2026, 7, 1))
    remote = published(dataclasses.replace(remote, codes=tuple(codes)), "2026.2", add=(future,))
    d = diff_classifier(local, remote, day=DAY)
    assert [r.code for r in d.removed] == ["IZLIGUMS"]
    assert d.added == ()
    later = diff_classifier(local, remote, day=date(2026, 7, 1))
    assert [a.code for a in later.added] == ["NAKOTNE"]


@pytest.mark.parametrize(
    ("label", "taken", "expected"),
    [
        ("Supervision after early release", set(), "supervision_after_early_release"),
        ("Uzraudzība ar elektronisko uzraudzību", set(), "uzraudziba_ar_elektronisko_uzraudzibu"),
        ("Forced labour", {"forced_labour"}, "forced_labour_2"),
        ("Forced labour", {"forced_labour", "forced_labour_2"}, "forced_labour_3"),
        ("11-18 public work", set(), "code_11_18_public_work"),
        ("—", set(), "x_code"),
        ("word " * 20, set(), "_".join(["word"] * 12)),
    ],
)
def test_proposed_canonical_codes_are_snake_case_and_unique(
    label: str, taken: set[str], expected: str
) -> None:
    assert propose_canonical(label, taken, fallback="X-CODE") == expected


def test_a_removed_canonical_code_is_not_proposed_again(tree: Tree) -> None:
    # Re-using "mediation" for another remote code would re-point stored messages silently.
    local = load_classifier(tree.classifier_file("function_subtype"))
    remote = published(
        tree.remote("function_subtype"),
        "2027.1",
        drop=("IZLIGUMS",),
        add=(RemoteCode("IZLIGUMS_2", "Izlīgums", "Mediation"),),
    )
    d = diff_classifier(local, remote, day=DAY)
    assert [a.canonical for a in d.added] == ["mediation_2"]
