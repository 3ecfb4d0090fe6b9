"""The simulated classifier service: serves the local files, publishes what tests give it."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.sim.classifiers import ClassifierCatalogue, create_classifiers_router

from .conftest import Tree


def client_for(tree: Tree) -> TestClient:
    app = FastAPI()
    app.include_router(create_classifiers_router(ClassifierCatalogue.from_mappings(tree.mappings)))
    return TestClient(app)


def test_serves_the_local_files_with_a_source(tree: Tree) -> None:
    http = client_for(tree)
    assert http.get("/classifiers").json() == [
        {"source": "VPD.EVALUATION_PURPOSE", "version": "2026.1"},
        {"source": "VPD.FUNCTION_SUBTYPE", "version": "2026.1"},
    ]
    body = http.get("/classifiers/VPD.FUNCTION_SUBTYPE").json()
    assert body["codes"][0] == {
        "code": "PIESPIEDU_DARBS",
        "label_lv": "Piespiedu darbs",
        "label_en": "Forced labour",
    }
    assert http.get("/classifiers/VPD.NOPE").status_code == 404


def test_publish_withdraw_and_reset(tree: Tree) -> None:
    http = client_for(tree)
    body = http.get("/classifiers/VPD.FUNCTION_SUBTYPE").json()
    body["version"] = "2027.1"
    body["codes"] = body["codes"][:2]
    assert http.put("/sim/classifiers/VPD.FUNCTION_SUBTYPE", json=body).json() == {
        "source": "VPD.FUNCTION_SUBTYPE",
        "version": "2027.1",
    }
    assert len(http.get("/classifiers/VPD.FUNCTION_SUBTYPE").json()["codes"]) == 2
    assert http.delete("/sim/classifiers/VPD.FUNCTION_SUBTYPE").status_code == 200
    assert http.get("/classifiers/VPD.FUNCTION_SUBTYPE").status_code == 404
    assert http.delete("/sim/classifiers/VPD.FUNCTION_SUBTYPE").status_code == 404
    assert http.post("/sim/classifiers/reset").json() == {"status": "reset"}
    assert http.get("/classifiers/VPD.FUNCTION_SUBTYPE").json()["version"] == "2026.1"


def test_a_new_list_can_be_published_without_repeating_its_source(tree: Tree) -> None:
    http = client_for(tree)
    body = {
        "version": "1",
        "title": "Zones",
        "codes": [{"code": "A", "label_lv": "A", "label_en": "A"}],
    }
    assert http.put("/sim/classifiers/VPD.EM_ZONE_KIND", json=body).status_code == 200
    assert {"source": "VPD.EM_ZONE_KIND", "version": "1"} in http.get("/classifiers").json()


def test_bad_publications_are_refused(tree: Tree) -> None:
    http = client_for(tree)
    body = http.get("/classifiers/VPD.FUNCTION_SUBTYPE").json()
    wrong = http.put("/sim/classifiers/VPD.OTHER", json=body)
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "CLASSIFIER_INVALID"
    empty = http.put("/sim/classifiers/VPD.FUNCTION_SUBTYPE", json={**body, "codes": []})
    assert empty.status_code == 422
    assert "codes" in empty.json()["error"]["message"]
