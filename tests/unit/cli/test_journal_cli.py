"""``plus-gateway journal anchor|verify`` against a real database and anchor directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from gateway.cli import main
from gateway.config import Settings
from gateway.store import Store, create_store_engine, migrate
from gateway.store.schema import journal, journal_chain


def run(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


@pytest.fixture
def store(settings: Settings) -> Store:
    engine = create_store_engine(settings.store.url)
    migrate(engine)
    store = Store(engine)
    for i in range(4):
        store.journal.append(direction="local", partner="gateway", status="note", detail=f"n{i}")
    return store


def test_anchor_then_verify_then_detect_a_cut_tail(
    config_file: Path, settings: Settings, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_file, "journal", "verify") == 0
    out, err = capsys.readouterr()
    assert "journal intact: 4 entries" in out and "no anchors in file" in err

    assert run(config_file, "journal", "anchor") == 0
    assert "anchored entry 4 (4 entries)" in capsys.readouterr().out
    [path] = settings.journal.anchor_path.glob("anchors-*.jsonl")
    document = json.loads(path.read_text())
    assert document["entry_id"] == 4 and document["sig"]

    assert run(config_file, "journal", "verify") == 0
    assert "1 signed anchors hold" in capsys.readouterr().out

    with store.engine.begin() as conn:
        conn.execute(delete(journal).where(journal.c.id > 2))
        last_hash = conn.execute(select(journal.c.entry_hash).where(journal.c.id == 2)).scalar()
        conn.execute(update(journal_chain).values(last_id=2, last_hash=last_hash))
    assert run(config_file, "journal", "verify", "--no-anchors") == 0  # the chain alone: blind
    capsys.readouterr()
    assert run(config_file, "journal", "verify") == 1
    assert "journal TAMPERED at entry 3: entries 3..4 deleted" in capsys.readouterr().out


def test_verify_reads_anchors_copied_back_from_an_archive(
    config_file: Path,
    settings: Settings,
    store: Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(config_file, "journal", "anchor") == 0
    archive = tmp_path / "archive"
    shutil.copytree(settings.journal.anchor_path, archive)
    shutil.rmtree(settings.journal.anchor_path)
    with store.engine.begin() as conn:
        conn.execute(delete(journal))
        conn.execute(update(journal_chain).values(last_id=0, last_hash=None))
    capsys.readouterr()
    assert run(config_file, "journal", "verify") == 0  # the configured sink was emptied too
    capsys.readouterr()
    assert run(config_file, "journal", "verify", "--anchors", str(archive)) == 1
    assert "every entry deleted" in capsys.readouterr().out


def test_forged_anchor_fails_verify(
    config_file: Path, settings: Settings, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_file, "journal", "anchor") == 0
    [path] = settings.journal.anchor_path.glob("anchors-*.jsonl")
    document = json.loads(path.read_text())
    document["entry_id"] = 2
    path.write_text(json.dumps(document) + "\n")
    capsys.readouterr()
    assert run(config_file, "journal", "verify") == 1
    out = capsys.readouterr().out
    assert "journal TAMPERED: anchor store:" in out and "signature invalid" in out
