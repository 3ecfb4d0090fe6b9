"""Registry queries end to end: PLUS -> gateway HTTP API -> VISS simulator, over loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.api import create_app
from gateway.config import Settings
from gateway.mapping.spec import Field
from gateway.registries.cache import TTLCache
from gateway.registries.contract import REGISTRIES
from gateway.registries.population import Person
from gateway.registries.sim import VissSimulator, create_viss_app
from gateway.runtime import Runtime
from gateway.server import stop_app_threads
from tests.conftest import ROOT, build_settings, free_port
from tests.integration.conftest import serve_in_thread

pytestmark = pytest.mark.integration

READ_TIMEOUT = 0.6
RESET_TIMEOUT = 0.5
THRESHOLD = 3


@dataclass
class Viss:
    settings: Settings
    runtime: Runtime
    sim: VissSimulator
    gateway: str
    sim_url: str
    http: httpx.Client

    def ask(self, registry: str, person: Person | str, **extra: Any) -> httpx.Response:
        code = person if isinstance(person, str) else person.personal_code
        return self.http.post(
            f"{self.gateway}/v1/registries/{registry}/queries", json=_body(code, **extra)
        )

    def fault(self, mode: str, registry: str = "*", **plan: Any) -> None:
        r = self.http.post(
            f"{self.sim_url}/control/fault", json={"registry": registry, "mode": mode, **plan}
        )
        r.raise_for_status()

    def received(self) -> int:
        return int(self.http.get(f"{self.sim_url}/control/stats").json()["total"])


def _body(code: str, **extra: Any) -> dict[str, Any]:
    return {
        "personal_code": code,
        "purpose": "Izvērtēšanas ziņojuma sagatavošana",
        "officer_id": "officer-17",
        "case_id": "VPD-2026-000123",
        **extra,
    }


def _timeouts() -> dict[str, Any]:
    return {n: {"connect_timeout": 0.5, "read_timeout": READ_TIMEOUT} for n in REGISTRIES}


@pytest.fixture(scope="module")
def viss(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[Viss]:
    """One gateway and one VISS simulator for the module (starting them costs seconds)."""
    # The project's test settings (every key, the facade's demo pairs, free ports), with
    # this module's registry timeouts and breaker.
    settings = build_settings(
        tmp_path_factory.mktemp("registries"),
        keys_dir,
        registries={
            "registries": _timeouts(),
            "breaker": {"failure_threshold": THRESHOLD, "reset_timeout": RESET_TIMEOUT},
        },
    )
    api_port, viss_port = settings.api.port, settings.simulators["viss"].port
    sim = VissSimulator(settings)
    sim_server = serve_in_thread(create_viss_app(sim), viss_port)
    runtime = Runtime(settings)
    gw_server = serve_in_thread(create_app(runtime, None), api_port)
    http = httpx.Client(timeout=20)
    try:
        yield Viss(
            settings,
            runtime,
            sim,
            f"http://127.0.0.1:{api_port}",
            f"http://127.0.0.1:{viss_port}",
            http,
        )
    finally:
        http.close()
        stop_app_threads(gw_server)
        stop_app_threads(sim_server)
        runtime.close()


@pytest.fixture(autouse=True)
def _fresh(viss: Viss) -> None:
    """Each test starts with no fault, zero counters and closed breakers."""
    viss.sim.reset()
    for breaker in viss.runtime.registries.breakers.values():
        breaker.record_success()


# -- every field of every registry ---------------------------------------------------------


def _paths(fields: tuple[Field, ...], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for f in fields:
        path = prefix + f.json
        out.add(path)
        if f.fields is not None:
            out |= _paths(f.fields, path + ".")
    return out


def _present(data: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    items = data if isinstance(data, list) else [data]
    for item in items:
        if isinstance(item, dict):
            for key, value in item.items():
                out.add(prefix + key)
                if isinstance(value, dict | list):
                    out |= _present(value, prefix + key + ".")
    return out


@pytest.mark.parametrize("registry", list(REGISTRIES))
def test_every_field_end_to_end(viss: Viss, registry: str) -> None:
    mapping = viss.runtime.mappings.get(REGISTRIES[registry].message_type)
    wanted = _paths(mapping.fields)
    seen: set[str] = set()
    asked = 0
    for code in viss.sim.population.codes:
        person = viss.sim.population.persons[code]
        record = person.record(registry)
        if record is None or _present(record) <= seen:
            continue  # adds no field we have not checked yet
        r = viss.ask(registry, person)
        assert r.status_code == 200, r.text
        answer = r.json()
        asked += 1
        assert answer["registry"] == registry and answer["status"] == "ok"
        data = answer["data"]
        assert data["request_id"] == answer["query_id"]
        assert data["personal_code"] == code and data["result"] == "FOUND"
        head = {"request_id", "response_id", "answered_at", "personal_code", "result"}
        assert {k: v for k, v in data.items() if k not in head} == record
        seen |= _present(data)
        if seen >= wanted:
            break
    assert seen >= wanted, f"fields never seen: {sorted(wanted - seen)}"
    assert asked <= 12


def test_unknown_persons_are_an_explicit_not_found(viss: Viss) -> None:
    stranger = "329999-99999"  # valid format, in no registry
    assert viss.sim.population.get(stranger) is None
    for registry in REGISTRIES:
        r = viss.ask(registry, stranger)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "not_found"
        assert r.json()["data"]["result"] == "NOT_FOUND"
    no_vid = viss.sim.population.find("no_vid", "employed") or viss.sim.population.find("no_vid")
    r = viss.ask("vid", no_vid[0])
    assert r.json()["status"] == "not_found" and "employed" not in r.json()["data"]


# -- bad input never leaves the gateway ----------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["161175-19990", "16117519997", "311375-19997", "161175-39997", "", "32000-00001"],
)
def test_bad_personal_code_is_422_and_nothing_is_sent(viss: Viss, code: str) -> None:
    for url in ("/v1/registries/viis/queries", "/v1/registries/profile"):
        r = viss.http.post(viss.gateway + url, json=_body(code))
        assert r.status_code == 422, r.text
        paths = [d["path"] for d in r.json()["error"]["details"]]
        assert paths == ["body.personal_code"]
        if code:
            assert code not in r.text
    assert viss.received() == 0
    # Nothing was audited: no query left. The audit endpoint itself refuses a code that is not
    # even of the form (422) and answers an empty list for a well-formed one.
    assert viss.runtime.registries.audit.search(code) == []
    audit = viss.http.get(f"{viss.gateway}/v1/audit/queries", params={"personal_code": code})
    if audit.status_code == 200:
        assert audit.json()["items"] == []
    else:
        assert audit.status_code == 422, audit.text


def test_other_fields_are_checked_too(viss: Viss) -> None:
    person = viss.sim.population.codes[0]
    r = viss.http.post(
        f"{viss.gateway}/v1/registries/viis/queries", json=_body(person, officer_id="a b")
    )
    assert r.status_code == 422
    r = viss.http.post(f"{viss.gateway}/v1/registries/xyz/queries", json=_body(person))
    assert r.status_code == 422
    assert viss.received() == 0


# -- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "code", "detail"),
    [
        ("http_503", 503, "REGISTRY_UNAVAILABLE", None),
        ("server_fault", 502, "REGISTRY_FAULT", "VISS_INTERNAL"),
        ("client_fault", 502, "REGISTRY_REJECTED", "BAD_INPUT"),
        ("malformed", 502, "REGISTRY_BAD_ANSWER", None),
        ("bad_signature", 502, "REGISTRY_SIGNATURE_INVALID", "SIG_INVALID"),
        ("untrusted_signature", 502, "REGISTRY_SIGNATURE_INVALID", "SIG_UNTRUSTED"),
        ("wrong_header", 502, "REGISTRY_BAD_ANSWER", None),
        ("timeout", 504, "REGISTRY_TIMEOUT", None),
    ],
)
def test_fault_kinds(viss: Viss, mode: str, status: int, code: str, detail: str | None) -> None:
    person = viss.sim.population.find("education")[0]
    viss.fault(mode, "viis", count=1, delay=READ_TIMEOUT * 2)
    r = viss.ask("viis", person)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["registry"] == "viis"
    if detail:
        assert detail in str(error["details"])
    assert person.personal_code not in r.text.replace(
        f'"personal_code":"{person.personal_code}"', ""
    )
    # The fault was for one request: the next one is answered.
    assert viss.ask("viis", person).status_code == 200


def test_latency_is_tolerated_below_the_timeout(viss: Viss) -> None:
    viss.fault("latency", "iis", delay=READ_TIMEOUT / 3)
    started = time.perf_counter()
    r = viss.ask("iis", viss.sim.population.codes[5])
    assert r.status_code == 200
    assert time.perf_counter() - started >= READ_TIMEOUT / 3


def test_unreachable_registry_is_503_naming_it(viss: Viss) -> None:
    partner = viss.runtime.registries.clients["rd"].partner
    endpoint = partner.endpoint
    partner.endpoint = f"http://127.0.0.1:{free_port()}/soap/viss/rd"
    try:
        r = viss.ask("rd", viss.sim.population.codes[0])
    finally:
        partner.endpoint = endpoint
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "REGISTRY_UNAVAILABLE"
    assert "rd" in r.json()["error"]["message"]


# -- circuit breaker over HTTP -------------------------------------------------------------


def _breaker_metric(viss: Viss, registry: str, state: str) -> float:
    text = viss.http.get(f"{viss.gateway}/metrics").text
    line = f'plusgw_registry_breaker_state{{registry="{registry}",state="{state}"}}'
    return float(next(x for x in text.splitlines() if x.startswith(line)).split()[-1])


class _Clock:
    """Time the test moves by hand, so a loaded machine cannot make the breaker cool down."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_half_opens_and_closes(viss: Viss, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    # Only the breaker's notion of time is replaced; the breaker itself, the client and the
    # simulator are the real ones. Real sleeps made this flaky under load (half_open too soon).
    monkeypatch.setattr(viss.runtime.registries.breakers["vid"], "_clock", clock)
    person = viss.sim.population.codes[1]
    viss.fault("http_503", "vid")
    for _ in range(THRESHOLD):
        assert viss.ask("vid", person).status_code == 503
    assert viss.received() == THRESHOLD
    r = viss.ask("vid", person)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "REGISTRY_CIRCUIT_OPEN"
    assert "vid" in r.json()["error"]["message"]
    assert viss.received() == THRESHOLD  # not even sent
    ready = viss.http.get(f"{viss.gateway}/ready").json()
    assert ready["checks"]["registries"]["vid"]["state"] == "open"
    assert ready["checks"]["registries"]["viis"]["state"] == "closed"
    assert _breaker_metric(viss, "vid", "open") == 1.0
    # Other registries are unaffected.
    assert viss.ask("viis", person).status_code == 200

    clock.now += RESET_TIMEOUT + 0.05
    assert _breaker_metric(viss, "vid", "half_open") == 1.0
    # A failing trial opens it again.
    assert viss.ask("vid", person).status_code == 503
    assert viss.ask("vid", person).json()["error"]["code"] == "REGISTRY_CIRCUIT_OPEN"
    clock.now += RESET_TIMEOUT + 0.05
    viss.fault("none")
    assert viss.ask("vid", person).status_code == 200
    assert _breaker_metric(viss, "vid", "closed") == 1.0
    ready = viss.http.get(f"{viss.gateway}/ready").json()
    assert ready["checks"]["registries"]["vid"]["state"] == "closed"


# -- profile fan-out -----------------------------------------------------------------------


def test_profile_all_ok(viss: Viss) -> None:
    person = viss.sim.population.find("disability", "employed", "social")[0]
    r = viss.http.post(f"{viss.gateway}/v1/registries/profile", json=_body(person.personal_code))
    assert r.status_code == 200
    registries = r.json()["registries"]
    assert {n: e["status"] for n, e in registries.items()} == dict.fromkeys(REGISTRIES, "ok")
    assert registries["iis"]["answer"]["data"]["disabilities"] == person.iis


def test_profile_with_one_registry_down_and_one_slow(viss: Viss) -> None:
    person = viss.sim.population.find("disability", "employed", "social", "education")[0]
    viss.fault("http_503", "iis")
    viss.fault("timeout", "vid", delay=READ_TIMEOUT * 3)
    started = time.perf_counter()
    r = viss.http.post(f"{viss.gateway}/v1/registries/profile", json=_body(person.personal_code))
    elapsed = time.perf_counter() - started
    assert r.status_code == 200
    registries = r.json()["registries"]
    assert registries["viis"]["status"] == "ok"
    assert registries["rd"]["status"] == "ok"
    assert registries["iis"]["status"] == "unavailable"
    assert registries["iis"]["error"]["code"] == "REGISTRY_UNAVAILABLE"
    assert registries["vid"]["status"] == "timeout"
    assert registries["vid"]["error"]["code"] == "REGISTRY_TIMEOUT"
    # In parallel: bounded by the one slow registry's timeout, not the sum.
    assert elapsed < READ_TIMEOUT * 2.5


# -- audit ---------------------------------------------------------------------------------


def test_audit_trail_api_and_cli(
    viss: Viss, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Persons no other test asks about: the module shares one audit table.
    person = viss.sim.population.find("social")[-1]
    other = viss.sim.population.find("social")[-2]
    assert viss.ask("rd", person).status_code == 200
    viss.fault("http_503", "viis", count=1)
    assert viss.ask("viis", person, officer_id="officer-2", purpose="Pārbaude").status_code == 503
    assert viss.ask("rd", other).status_code == 200
    viss.http.post(f"{viss.gateway}/v1/registries/profile", json=_body(person.personal_code))

    r = viss.http.get(
        f"{viss.gateway}/v1/audit/queries", params={"personal_code": person.personal_code}
    )
    items = r.json()["items"]
    assert len(items) == 6  # rd, viis (failed), and the profile's four
    assert {i["personal_code"] for i in items} == {person.personal_code}
    failed = next(i for i in items if i["status"] == "unavailable")
    assert failed["officer_id"] == "officer-2" and failed["purpose"] == "Pārbaude"
    assert failed["error_code"] == "REGISTRY_UNAVAILABLE" and failed["answer_sha256"] is None
    ok = next(i for i in items if i["registry"] == "rd" and i["status"] == "ok")
    assert ok["case_id"] == "VPD-2026-000123" and len(ok["answer_sha256"]) == 64
    # The answer hash is the hash of what PLUS received.
    from gateway.registries.client import answer_sha256

    answer = viss.ask("rd", other).json()
    assert answer["answer_sha256"] == answer_sha256(answer["data"])

    today = time.strftime("%Y-%m-%d", time.gmtime())
    params = {"personal_code": person.personal_code, "from": "2000-01-01", "to": "2000-12-31"}
    assert viss.http.get(f"{viss.gateway}/v1/audit/queries", params=params).json()["items"] == []
    params.update({"from": today, "to": today})
    assert (
        len(viss.http.get(f"{viss.gateway}/v1/audit/queries", params=params).json()["items"]) == 6
    )

    from gateway.cli import main

    monkeypatch.setenv("PLUSGW_STORE__URL", viss.settings.store.url)
    config = str(ROOT / "config.yaml")
    assert (
        main(
            [
                "--config",
                config,
                "audit",
                "queries",
                "--personal-code",
                person.personal_code,
                "--from",
                today,
                "--json",
            ]
        )
        == 0
    )
    import json

    out = capsys.readouterr().out
    rows = json.loads(out[out.index("[\n") :])  # log lines may precede the JSON
    assert len(rows) == 6 and {r["officer_id"] for r in rows} == {"officer-17", "officer-2"}
    assert (
        main(
            [
                "--config",
                config,
                "audit",
                "queries",
                "--personal-code",
                person.personal_code,
                "--to",
                "2000-01-01",
            ]
        )
        == 0
    )
    assert "0 queries" in capsys.readouterr().err


# -- cache ---------------------------------------------------------------------------------


def test_no_cache_by_default(viss: Viss) -> None:
    person = viss.sim.population.codes[3]
    assert viss.ask("viis", person).json()["cached"] is False
    assert viss.ask("viis", person).json()["cached"] is False
    assert viss.received() == 2


def test_optional_ttl_cache(viss: Viss) -> None:
    service = viss.runtime.registries
    default = service.cache
    service.cache = TTLCache(60)  # as with registries.cache_ttl: 60
    try:
        person = viss.sim.population.codes[4]
        first = viss.ask("viis", person).json()
        second = viss.ask("viis", person).json()
    finally:
        service.cache = default
    assert first["cached"] is False and second["cached"] is True
    assert second["data"] == first["data"]
    assert viss.received() == 1
    audit = viss.http.get(f"{viss.gateway}/v1/audit/queries", params={"personal_code": person})
    assert [i["cached"] for i in audit.json()["items"]] == [True, False]


def test_openapi_documents_the_registry_api(viss: Viss) -> None:
    spec = viss.http.get(f"{viss.gateway}/openapi.json").json()
    assert "/v1/registries/{registry}/queries" in spec["paths"]
    assert "/v1/registries/profile" in spec["paths"]
    assert "/v1/audit/queries" in spec["paths"]
    assert "viss.viis.education" in spec["components"]["schemas"]
    assert not any(p.startswith("/v1/outbound/viss") for p in spec["paths"])


def test_personal_codes_never_reach_the_logs(viss: Viss, capfd: pytest.CaptureFixture[str]) -> None:
    import logging

    from gateway.logging import configure_logging

    configure_logging("production", "DEBUG")
    try:
        person = viss.sim.population.codes[7]
        viss.fault("server_fault", "iis", count=1)
        assert viss.ask("iis", person).status_code == 502
        assert viss.ask("viis", person).status_code == 200
        out, err = capfd.readouterr()
        assert "registry query failed" in out + err
        assert person not in out + err
    finally:
        # Leave logging as other tests expect it: no handler of ours, structlog defaults.
        import structlog

        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.setLevel(logging.WARNING)
        structlog.reset_defaults()
