"""Publication through the real ckanapi client against the CKAN simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from ckanapi import RemoteCKAN
from ckanapi.errors import NotFound, ValidationError

from gateway.errors import PartnerRejectedError, PartnerUnavailableError
from gateway.opendata.build import Release
from gateway.opendata.ckan import CkanPublisher, PeriodChangedError, dataset_name
from gateway.opendata.ckansim import CkanSimulator, create_ckan_app
from gateway.opendata.datasets import DATASETS, PeriodSpan
from gateway.opendata.extract import ExtractCodes
from gateway.opendata.package import DataFile, render
from gateway.server import start_app_thread, stop_app_threads
from tests.conftest import free_port
from tests.unit.opendata.conftest import hand_checked

KEY = "secret-key"


@pytest.fixture
def ckan() -> Iterator[tuple[str, CkanSimulator]]:
    sim = CkanSimulator(api_key=KEY, organizations=("vpd",))
    port = free_port()
    server = start_app_thread(create_ckan_app(sim), "127.0.0.1", port, "ckan-test")
    yield f"http://127.0.0.1:{port}", sim
    stop_app_threads(server)


def publisher(url: str, key: str = KEY) -> CkanPublisher:
    return CkanPublisher(
        url,
        api_key=key,
        organization="vpd",
        timeout=5,
        publisher="VPD",
        contact_email="dati@vpd.example",
        base_uri="https://data.example/od",
    )


def release(codes: ExtractCodes, period: str = "2026-10", marker: str = "") -> Release:
    from gateway.opendata.datasets import build_period

    built = build_period(hand_checked(), PeriodSpan.of(period), codes)
    files: list[DataFile] = []
    for number in (1, 5, 8):
        info = DATASETS[number]
        f = render(
            info,
            PeriodSpan.of(period),
            built.tables[(period, number)],
            built.values,
            set(),
            codes,
            base_uri="https://data.example/od",
            publisher="VPD",
            publisher_uri="https://vpd.example",
            contact_email="dati@vpd.example",
            licence="https://creativecommons.org/licenses/by/4.0/",
        )
        # A marker changes the content (a corrected extract) without changing the set.
        files.append(replace(f, csv=f.csv + marker.encode()))
    return Release(period, tuple(files))


def resources(sim: CkanSimulator) -> dict[str, list[str]]:
    return {p["name"]: [r["name"] for r in p["resources"]] for p in sim.packages.values()}


def test_a_period_is_published_one_resource_per_set(ckan: Any, codes: ExtractCodes) -> None:
    url, sim = ckan
    done = publisher(url).publish(release(codes))
    assert set(done["sets"].values()) == {"added"}
    assert resources(sim) == {
        "vpd-ds1-active-clients": ["2026-10"],
        "vpd-ds5-mediations": ["2026-10"],
        "vpd-ds8-persons-and-clients": ["2026-10"],
    }
    # What anyone reads back through CKAN's API is what was built.
    reader = RemoteCKAN(url)
    package = reader.action.package_show(id="vpd-ds8-persons-and-clients")
    assert package["license_id"] == "cc-by" and package["maintainer_email"] == "dati@vpd.example"
    (resource,) = package["resources"]
    assert resource["url_type"] == "upload" and resource["format"] == "CSV"
    body = httpx.get(resource["url"]).content
    assert body.decode().splitlines()[1:] == ["2026-10,persons,5,", "2026-10,clients,6,"]
    assert resource["hash"] == release(codes).files[2].sha256
    assert sim.calls["package_update"] == 0  # it would drop resources it is not given


def test_publishing_again_changes_nothing(ckan: Any, codes: ExtractCodes) -> None:
    url, sim = ckan
    publisher(url).publish(release(codes))
    before = {p["name"]: p["metadata_modified"] for p in sim.packages.values()}
    revisions = sim.calls["package_revise"]
    again = publisher(url).publish(release(codes))
    assert set(again["sets"].values()) == {"unchanged"}
    assert sim.calls["package_revise"] == revisions
    assert {p["name"]: p["metadata_modified"] for p in sim.packages.values()} == before


def test_a_second_period_adds_a_resource_and_keeps_the_first(
    ckan: Any, codes: ExtractCodes
) -> None:
    url, sim = ckan
    publisher(url).publish(release(codes, "2026-10"))
    publisher(url).publish(release(codes, "2026"))
    assert resources(sim)["vpd-ds1-active-clients"] == ["2026-10", "2026"]


def test_a_ckan_500_half_way_leaves_nothing_of_the_period(ckan: Any, codes: ExtractCodes) -> None:
    url, sim = ckan
    pub = publisher(url)
    pub.publish(release(codes, "2026-09"))
    # The second package_revise of the next period answers 500.
    calls = sim.calls["package_revise"]
    sim.faults["package_revise"] = []
    original = sim.call

    def failing(action: str, data: dict[str, Any], authorized: bool) -> Any:
        if action == "package_revise" and sim.calls["package_revise"] == calls + 2:
            from gateway.opendata.ckansim import _ActionError

            raise _ActionError(500, "", {})
        return original(action, data, authorized)

    sim.call = failing  # type: ignore[method-assign]
    with pytest.raises(PartnerUnavailableError, match="5xx"):
        pub.publish(release(codes, "2026-10"))
    assert all(names == ["2026-09"] for names in resources(sim).values())
    sim.call = original  # type: ignore[method-assign]
    retried = pub.publish(release(codes, "2026-10"))
    assert set(retried["sets"].values()) == {"added"}
    assert all(names == ["2026-09", "2026-10"] for names in resources(sim).values())


def test_an_outage_before_anything_is_written_is_retryable(ckan: Any, codes: ExtractCodes) -> None:
    url, _ = ckan
    httpx.post(f"{url}/sim/ckan/faults", json={"action": "organization_show", "status": 503})
    with pytest.raises(PartnerUnavailableError):
        publisher(url).publish(release(codes))
    with pytest.raises(PartnerUnavailableError):
        publisher("http://127.0.0.1:9").publish(release(codes))  # nobody listens


def test_a_409_on_the_match_is_retryable(ckan: Any, codes: ExtractCodes) -> None:
    url, sim = ckan
    httpx.post(f"{url}/sim/ckan/faults", json={"action": "package_revise", "status": 409})
    with pytest.raises(PartnerUnavailableError, match="changed meanwhile"):
        publisher(url).publish(release(codes))
    assert all(names == [] for names in resources(sim).values())
    assert set(publisher(url).publish(release(codes))["sets"].values()) == {"added"}


def test_changed_content_needs_force_and_replaces_in_place(ckan: Any, codes: ExtractCodes) -> None:
    url, sim = ckan
    publisher(url).publish(release(codes))
    ids = {p["name"]: p["resources"][0]["id"] for p in sim.packages.values()}
    with pytest.raises(PeriodChangedError):
        publisher(url).publish(release(codes, marker="\n"))
    done = publisher(url).publish(release(codes, marker="\n"), force=True)
    assert set(done["sets"].values()) == {"replaced"}
    assert {p["name"]: [r["id"] for r in p["resources"]] for p in sim.packages.values()} == {
        name: [rid] for name, rid in ids.items()
    }


def test_a_wrong_key_is_refused_for_good(ckan: Any, codes: ExtractCodes) -> None:
    url, _ = ckan
    with pytest.raises(PartnerRejectedError, match="403"):
        publisher(url, key="wrong").publish(release(codes))


def test_the_simulator_speaks_ckans_errors_to_ckanapi(ckan: Any) -> None:
    url, _ = ckan
    client = RemoteCKAN(url, apikey=KEY)
    with pytest.raises(NotFound):
        client.action.package_show(id="nothing-here")
    with pytest.raises(ValidationError) as invalid:
        client.action.package_create(name="Not Valid!", owner_org="vpd")
    assert "name" in invalid.value.error_dict
    client.action.package_create(name="taken", owner_org="vpd")
    with pytest.raises(ValidationError) as taken:
        client.action.package_create(name="taken")
    assert taken.value.error_dict["name"] == ["That URL is already in use."]
    with pytest.raises(ValidationError) as unmatched:
        client.action.package_revise(
            match={"name": "taken", "title": "other"}, update={"notes": "x"}
        )
    assert unmatched.value.error_dict["match"] == ["title"]
    revised = client.action.package_revise(
        match={"name": "taken"}, update__resources__extend=[{"name": "a", "url": "http://x"}]
    )
    assert [r["name"] for r in revised["package"]["resources"]] == ["a"]
    rid = revised["package"]["resources"][0]["id"]
    client.action.package_revise(match__name="taken", filter=[f"-resources__{rid[:6]}"])
    assert client.action.package_show(id="taken")["resources"] == []
    assert dataset_name(DATASETS[1]) == "vpd-ds1-active-clients"
