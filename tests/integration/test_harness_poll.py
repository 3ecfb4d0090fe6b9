"""The harness against a poll-only institution (``delivery_mode: poll``): partner mode polls
the simulated institution, judges what it holds, acknowledges and polls again; a simulator
that offers acknowledged messages again, or holds a message signed by another key, is named.

IeVP IS is made poll-only in these settings (a test variant of config.yaml: data only)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.harness.command import run_harness
from gateway.harness.environment import SimEnvironment, sim_environment, sim_settings
from gateway.harness.partner import POLL_CASES
from gateway.harness.report import Run
from gateway.soap.envelope import build_envelope
from tests.conftest import ROOT
from tests.integration.test_harness import _args as harness_args

pytestmark = pytest.mark.integration

POLL_ONLY = {"ievp": {"delivery_mode": "poll", "poll": {"max_messages": 3}}}


def _args(**kw: Any) -> argparse.Namespace:
    """The harness options of test_harness, for partner mode against IeVP IS."""
    return harness_args(**{"mode": "partner", "institution": ["ievp"], **kw})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimEnvironment]:
    settings = sim_settings(
        ROOT / "config.yaml", tmp_path_factory.mktemp("harness-poll"), institutions=POLL_ONLY
    )
    with sim_environment(settings, seed=False) as started:
        yield started


def _poll_results(run: Run) -> dict[str, Any]:
    return {r.case.kind: r for r in run.results if r.case.kind in POLL_CASES}


def test_poll_only_institution_passes_with_its_poll_operations_covered(
    env: SimEnvironment,
) -> None:
    sim = env.institution_sim("ievp")
    sim.polls.reset()
    run = run_harness(_args(), env=env)
    failed = {r.case.id: r.reason for r in run.results if r.verdict == "failed"}
    assert failed == {}
    polls = _poll_results(run)
    assert set(polls) == set(POLL_CASES)
    assert {k: r.verdict for k, r in polls.items()} == {k: "passed" for k in POLL_CASES}
    # Every type IeVP IS sends was held, offered and judged (not an empty answer's shape).
    sends = set(env.settings.institution("ievp").sends)
    assert all(t in polls["poll-messages"].reason for t in sends), polls["poll-messages"].reason
    assert polls["poll-unsigned"].observed == "SIG_MISSING"
    (plan,) = run.plans
    assert {"PollMessages", "AcknowledgePolledMessages"} <= plan.operations
    (row,) = [c for c in run.coverage() if c["mode"] == "partner"]
    assert row["operations_missing"] == []
    assert row["operations_exercised"] == row["operations_total"]
    # What the harness acknowledged is gone from the simulator; the rest still waits there.
    outcomes = sim.polls.snapshot()["outcomes"]
    assert outcomes and all(o["status"] == "ACCEPTED" for o in outcomes)


def test_a_simulator_offering_acknowledged_messages_again_is_named(
    env: SimEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = env.institution_sim("ievp")
    sim.polls.reset()
    monkeypatch.setattr(sim.polls, "acknowledge", lambda items: True)  # forgets nothing
    polls = _poll_results(run_harness(_args(), env=env))
    result = polls["poll-acknowledge"]
    assert result.verdict == "failed"
    assert "was offered again" in result.reason


def test_a_held_message_signed_by_another_key_is_named(env: SimEnvironment) -> None:
    sim = env.institution_sim("ievp")
    sim.polls.reset()
    # A message TIS built and signed, held by IeVP IS as if it were its own.
    other = env.institution_sim("tis")
    _, message_id, payload, header = other.build("court_ruling", any_type=True)
    sim.polls.hold(message_id, "court_ruling", build_envelope(payload, header.serialize()))
    polls = _poll_results(run_harness(_args(), env=env))
    result = polls["poll-messages"]
    assert result.verdict == "failed"
    assert message_id in result.reason
