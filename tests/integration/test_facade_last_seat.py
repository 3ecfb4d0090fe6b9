"""The last seat of a volunteer opportunity, raced by many volunteers at once over real HTTP,
on SQLite and on PostgreSQL (PLUSGW_TEST_POSTGRES_URL; skipped with a message without it).

Exactly one application wins; every other gets 409 OPPORTUNITY_FULL with its field path, and
the posting's counts say so. The seat is taken by one conditional UPDATE (applied < needed):
on PostgreSQL the losers wait for the winner's row lock and re-check the condition.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import build_settings, postgres_schema
from tests.integration.conftest import Live, running
from tests.integration.facade_support import API, error, make_org, make_volunteer, post

pytestmark = pytest.mark.integration

SKIP_PG = "PLUSGW_TEST_POSTGRES_URL is not set: the PostgreSQL last-seat race is not run"
RACERS = 12
ROUNDS = 3


@pytest.fixture(params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path: Path, keys_dir: Path) -> Iterator[Live]:
    if request.param == "sqlite":
        with running(build_settings(tmp_path, keys_dir), sim=False, seed=False) as live:
            yield live
        return
    with postgres_schema(migrated=True, skip=SKIP_PG) as scoped:
        settings = build_settings(tmp_path, keys_dir, store={"url": scoped})
        with running(settings, sim=False, seed=False) as live:
            yield live


def test_many_at_once_for_the_last_seat_exactly_one_wins(live: Live) -> None:
    base = live.gateway
    org = make_org(live.http, base, live.settings)
    for _round in range(ROUNDS):
        opp = post(live.http, base, org, volunteers_needed=2)
        first = make_volunteer(live.http, base, live.settings)
        r = live.http.post(
            f"{base}{API}/opportunities/{opp['id']}/applications", headers=first.headers
        )
        assert r.status_code == 201
        racers = [make_volunteer(live.http, base, live.settings) for _ in range(RACERS)]
        barrier = threading.Barrier(RACERS)
        results: list[tuple[int, str, list[str]]] = []

        def apply(
            v: Any,
            opp_id: int = opp["id"],
            barrier: threading.Barrier = barrier,
            results: list[tuple[int, str, list[str]]] = results,
        ) -> None:
            # A client each: the racers' requests really are in flight together.
            with httpx.Client(timeout=60) as client:
                barrier.wait()
                resp = client.post(
                    f"{base}{API}/opportunities/{opp_id}/applications", headers=v.headers
                )
            outcome = (resp.status_code, "", []) if resp.status_code == 201 else error(resp)
            results.append(outcome)  # list.append is atomic

        threads = [threading.Thread(target=apply, args=(v,)) for v in racers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(results) == RACERS
        wins = [r for r in results if r[0] == 201]
        losses = [r for r in results if r[0] != 201]
        assert len(wins) == 1, results
        assert all(r == (409, "OPPORTUNITY_FULL", ["path.opportunity_id"]) for r in losses), results
        listed = live.http.get(f"{base}{API}/opportunities/{opp['id']}").json()
        assert (listed["applied"], listed["seats_left"]) == (2, 0)
