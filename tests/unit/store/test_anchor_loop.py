"""The anchor loop of ``serve`` and the admin API's verify, over real settings and files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import delete, update

from gateway.api import create_app
from gateway.config import Settings
from gateway.runtime import Runtime
from gateway.store import Store, create_store_engine, migrate
from gateway.store.anchor import AnchorLoop, verify_anchored
from gateway.store.schema import journal, journal_chain
from tests.conftest import free_port


def anchors(directory: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob("anchors-*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def note(store: Store, text: str) -> None:
    store.journal.append(direction="local", partner="gateway", status="note", detail=text)


def test_loop_anchors_at_start_skips_an_unchanged_head_and_anchors_the_end(
    settings: Settings,
) -> None:
    engine = create_store_engine(settings.store.url)
    migrate(engine)
    store = Store(engine)
    note(store, "one")
    loop = AnchorLoop(store, settings)
    assert loop.enabled
    assert loop.anchor_once() and loop.anchor_once()  # the second: same head, not repeated
    assert [a["entry_id"] for a in anchors(settings.journal.anchor_path)] == [1]
    loop.start()
    note(store, "two")
    loop.stop(5)
    written = anchors(settings.journal.anchor_path)
    assert written[-1]["entry_id"] == 2 and written[-1]["count"] == 2
    assert verify_anchored(store, settings).ok
    engine.dispose()


def test_loop_survives_a_sink_that_is_down(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        journal={"anchor_sink": "http", "anchor_url": f"http://127.0.0.1:{free_port()}/a"}
    )
    engine = create_store_engine(settings.store.url)
    migrate(engine)
    loop = AnchorLoop(Store(engine), settings)
    assert loop.anchor_once() is False  # logged; tried again at the next interval
    engine.dispose()


def test_loop_is_off_with_no_sink_or_no_interval(make_settings: Callable[..., Settings]) -> None:
    for journal_settings in ({"anchor_sink": "none"}, {"anchor_interval": 0}):
        settings = make_settings(journal=journal_settings)
        engine = create_store_engine(settings.store.url)
        loop = AnchorLoop(Store(engine), settings)
        assert not loop.enabled
        loop.start()
        loop.stop(1)
        engine.dispose()


def test_admin_verify_uses_the_anchors(runtime: Runtime) -> None:
    client = TestClient(create_app(runtime))
    for i in range(3):
        note(runtime.store, f"n{i}")
    AnchorLoop(runtime.store, runtime.settings).anchor_once()
    ok = client.get("/v1/admin/journal/verify")
    assert ok.status_code == 200 and ok.json()["anchors"] == 1
    assert ok.json()["anchored_id"] == 3
    with runtime.engine.begin() as conn:
        conn.execute(delete(journal))
        conn.execute(update(journal_chain).values(last_id=0, last_hash=None))
    tampered = client.get("/v1/admin/journal/verify")
    assert tampered.status_code == 409 and tampered.json()["bad_id"] == 1
