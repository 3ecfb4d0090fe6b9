"""``plus-gateway classifiers sync`` against the simulated classifier service on loopback.

The service router is mounted in a test app of its own and served for real; the command runs
as a subprocess once (the installed entry point) and in-process otherwise. Every test works on
copies of the contract (mappings, XSDs, samples) in a temporary directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from sqlalchemy import select

from gateway.cli import main
from gateway.mapping.spec import load_classifier
from gateway.server import stop_app_threads
from gateway.sim.classifiers import ClassifierCatalogue, create_classifiers_router
from gateway.store import create_store_engine
from gateway.store.schema import journal
from tests.conftest import ROOT, free_port

from .conftest import serve_in_thread

pytestmark = pytest.mark.integration

FIXTURE = ROOT / "tests" / "unit" / "classifiers" / "fixture"


@dataclass
class Service:
    """A contract copy, its config file, and the classifier service serving it."""

    root: Path
    config: Path
    url: str
    db: Path

    def published(self, source: str) -> dict[str, Any]:
        return httpx.get(f"{self.url}/classifiers/{source}").raise_for_status().json()

    def publish(self, body: dict[str, Any]) -> None:
        httpx.put(f"{self.url}/sim/classifiers/{body['source']}", json=body).raise_for_status()

    def sync(self, *args: str) -> int:
        return main(["--config", str(self.config), "classifiers", "sync", *args])

    def journal(self) -> list[dict[str, Any]]:
        engine = create_store_engine(f"sqlite:///{self.db}")
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(journal).where(journal.c.status == "classifier_synced"))
                return [dict(r._mapping) for r in rows]
        finally:
            engine.dispose()


def _contract(tmp: Path, source: str) -> Path:
    root = tmp / "contract"
    if source == "fixture":
        shutil.copytree(FIXTURE, root)
    else:  # the repository's own contract
        for name in ("mappings", "xsd"):
            shutil.copytree(ROOT / name, root / name)
        shutil.copytree(ROOT / "tests" / "samples", root / "samples")
    return root


@pytest.fixture
def service_for(tmp_path: Path) -> Iterator[Callable[[str], Service]]:
    servers = []

    def start(source: str) -> Service:
        root = _contract(tmp_path, source)
        app = FastAPI()
        app.include_router(
            create_classifiers_router(ClassifierCatalogue.from_mappings(root / "mappings"))
        )
        port = free_port()
        servers.append(serve_in_thread(app, port))
        url = f"http://127.0.0.1:{port}"
        db = tmp_path / "gateway.db"
        config = tmp_path / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "signing": {"key": "unused-key.pem", "certificate": "unused-cert.pem"},
                    "institutions": {},
                    "paths": {
                        "mappings": str(root / "mappings"),
                        "xsd": str(root / "xsd"),
                        "samples": str(root / "samples"),
                    },
                    "store": {"url": f"sqlite:///{db}"},
                    "classifiers": {"service_url": f"{url}/classifiers", "timeout": 5},
                }
            )
        )
        return Service(root, config, url, db)

    yield start
    for server in servers:
        stop_app_threads(server)


@pytest.fixture
def service(service_for: Callable[[str], Service]) -> Service:
    return service_for("fixture")


def test_in_sync_exits_0_through_the_installed_command(service: Service) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(service.config), "classifiers", "sync"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "evaluation_purpose (VPD.EVALUATION_PURPOSE): in sync at version 2026.1" in done.stdout
    assert "function_subtype (VPD.FUNCTION_SUBTYPE): in sync" in done.stdout
    assert "risk_level" not in done.stdout  # no source: not synced
    assert "all classifiers in sync" in done.stderr


def test_label_only_version_is_shown_then_applied_and_journaled(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    body = service.published("VPD.EVALUATION_PURPOSE")
    body["version"] = "2026.2"
    body["codes"][0]["label_en"] = "Pre-trial evaluation report"
    service.publish(body)
    path = service.root / "mappings" / "classifiers" / "evaluation_purpose.yaml"
    before = path.read_text()

    assert service.sync() == 0  # a dry run changes nothing
    out = capsys.readouterr()
    assert "evaluation_purpose (VPD.EVALUATION_PURPOSE): 2026.1 -> 2026.2 (differs)" in out.out
    assert "~ PIRMSTIESAS  canonical pre_trial  label_en: 'Pre-trial evaluation' ->" in out.out
    assert "run with --apply" in out.err
    assert path.read_text() == before

    assert service.sync("--apply", "--actor", "ops-anna") == 0
    out = capsys.readouterr()
    assert "applied 1 classifier(s), journaled" in out.err
    new = load_classifier(path)
    assert new.version == "2026.2"
    assert new.labels["pre_trial"]["label_en"] == "Pre-trial evaluation report"
    assert path.read_text().startswith("# Why an evaluation report is requested (test fixture).")
    [entry] = service.journal()
    assert (entry["actor"], entry["partner"], entry["direction"]) == ("ops-anna", "ecase", "local")
    assert "2026.1 -> 2026.2: 0 added, 0 removed, 1 relabelled" in entry["detail"]

    assert service.sync() == 0  # and now in sync
    assert "all classifiers in sync" in capsys.readouterr().err


def test_a_new_code_the_xsd_lacks_is_reported_and_blocks(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    body = service.published("VPD.FUNCTION_SUBTYPE")
    body["version"] = "2027.1"
    body["codes"].append(
        {
            "code": "PROBACIJAS_PROGRAMMAS",
            "label_lv": "Dalība probācijas programmās",
            "label_en": "Participation in probation programmes",
        }
    )
    service.publish(body)
    path = service.root / "mappings" / "classifiers" / "function_subtype.yaml"
    before = path.read_text()

    assert service.sync("--apply", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    [item] = [c for c in report["classifiers"] if c["name"] == "function_subtype"]
    assert item["added"] == [
        {
            "code": "PROBACIJAS_PROGRAMMAS",
            "canonical": "participation_in_probation_programmes",
            "canonical_proposed": True,
            "label_lv": "Dalība probācijas programmās",
            "label_en": "Participation in probation programmes",
        }
    ]
    assert [(b["kind"], b["field"], b["codes"]) for b in item["breaks"]] == [
        ("xsd_missing_code", "case.function_subtype", ["PROBACIJAS_PROGRAMMAS"])
    ]
    assert report["applied"] == [] and not item["applied"]
    assert path.read_text() == before
    assert not service.db.exists() or service.journal() == []

    # The text report names the break; --force applies it and the journal says so.
    assert service.sync("--name", "function_subtype") == 1
    assert "BREAK xsd_missing_code [evaluation_report_request case.function_subtype]" in (
        capsys.readouterr().out
    )
    assert service.sync("--apply", "--force", "--name", "function_subtype") == 0
    assert "forced: function_subtype" in capsys.readouterr().err
    assert (
        load_classifier(path).to_wire["ecase"]["participation_in_probation_programmes"]
        == "PROBACIJAS_PROGRAMMAS"
    )
    [entry] = service.journal()
    assert entry["detail"].startswith("FORCED over 1 break(s) (xsd_missing_code)")


def test_a_list_the_service_does_not_publish_blocks(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    httpx.delete(f"{service.url}/sim/classifiers/VPD.FUNCTION_SUBTYPE").raise_for_status()
    assert service.sync("--apply") == 1
    out = capsys.readouterr()
    assert "function_subtype (VPD.FUNCTION_SUBTYPE): ERROR the service does not publish" in out.out
    httpx.post(f"{service.url}/sim/classifiers/reset").raise_for_status()
    assert service.sync() == 0


def test_usage_and_config_errors_exit_2(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    assert service.sync("--force") == 2
    assert service.sync("--name", "no_such_list") == 2
    assert service.sync("--name", "risk_level") == 2
    assert "has no source" in capsys.readouterr().err


def test_service_down_exits_1_with_a_clear_message(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    assert service.sync("--url", f"http://127.0.0.1:{free_port()}/classifiers") == 1
    assert "PARTNER_UNAVAILABLE" in capsys.readouterr().err


def test_ls_lists_every_classifier(service: Service, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(service.config), "classifiers", "ls", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["function_subtype"]["source"] == "VPD.FUNCTION_SUBTYPE"
    assert rows["function_subtype"]["codes"] == 3
    assert rows["risk_level"]["source"] is None


def test_the_repository_contract_is_in_sync_with_its_own_simulation(
    service_for: Callable[[str], Service], capsys: pytest.CaptureFixture[str]
) -> None:
    # Every classifier file with a source survives the trip through the service contract.
    service = service_for("repository")
    assert service.sync() == 0, capsys.readouterr()
    assert "all classifiers in sync" in capsys.readouterr().err


def test_every_repository_classifier_takes_a_label_only_version(
    service_for: Callable[[str], Service], capsys: pytest.CaptureFixture[str]
) -> None:
    # The repository's XSDs list exactly each classifier's E-case codes and its samples use
    # only current codes, so a new version that changes labels only applies everywhere.
    service = service_for("repository")
    sources = [v["source"] for v in httpx.get(f"{service.url}/classifiers").json()]
    for source in sources:
        body = service.published(source)
        body["version"] = "2099.1"
        body["codes"][0]["label_en"] += " (revised)"
        service.publish(body)
    assert service.sync("--apply", "--json") == 0, capsys.readouterr().out
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["applied"]) == sorted(c["name"] for c in report["classifiers"])
    assert len(service.journal()) == len(sources)
    assert service.sync() == 0
