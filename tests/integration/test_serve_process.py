"""`plus-gateway serve --with-simulators` as a real process: what `make run` starts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.config import Settings
from tests.conftest import SAMPLES

# Standalone only: request ids are hex and may hold eleven digits in a row.
PERSONAL_CODE = re.compile(r"(?<![0-9A-Za-z])\d{6}-?\d{5}(?![0-9A-Za-z])")


@pytest.fixture
def served(config_file: Path, settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "--config",
                str(config_file),
                "serve",
                "--with-simulators",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{settings.api.port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gateway did not become ready:\n{log.read_text()}")
                time.sleep(0.2)
            yield base, log
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_serves_ready_docs_wsdl_and_keeps_personal_data_out_of_logs(
    served: tuple[str, Path], settings: Settings
) -> None:
    base, log = served
    with httpx.Client(timeout=10) as http:
        ready = http.get(f"{base}/ready").json()
        assert ready["status"] == "ready" and ready["checks"]["delivery"] == "ok"
        assert "swagger" in http.get(f"{base}/docs").text.lower()
        spec = http.get(f"{base}/openapi.json").json()
        assert "/v1/outbound/execution_notification" in spec["paths"]
        assert "court_ruling" in spec["components"]["schemas"]
        wsdl = http.get(f"{base}/soap/ecase?wsdl")
        assert wsdl.status_code == 200 and f'location="{base}/soap/ecase"' in wsdl.text
        assert "plusgw_messages_total" in http.get(f"{base}/metrics").text

        # both flows through the real process, with the simulators it started: TIS sends the
        # sample ruling (its own id kept), and PLUS's notification answering it is routed back
        sim = f"http://127.0.0.1:{settings.simulators['ecase'].port}"
        sent = http.post(f"{sim}/sim/ecase/send/tis/court_ruling", params={"keep_id": "true"})
        assert sent.status_code == 200, sent.text
        body = json.loads((SAMPLES / "execution_notification" / "valid.json").read_text())
        accepted = http.post(
            f"{base}/v1/outbound/execution_notification",
            json=body,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        message_id = accepted.json()["id"]
        for _ in range(100):
            if http.get(f"{base}/v1/messages/{message_id}").json()["status"] == "delivered":
                break
            time.sleep(0.1)
        else:
            raise AssertionError("not delivered")
        # a rejected message's error path is logged too
        http.post(f"{base}/soap/ecase", content=b"<broken", headers={"Content-Type": "text/xml"})

    text = log.read_text(encoding="utf-8", errors="replace")
    assert "inbound accepted" in text and "delivered" in text and "inbound rejected" in text
    assert body["person"]["personal_code"] not in text
    assert body["person"]["last_name"] not in text
    assert not PERSONAL_CODE.search(text), PERSONAL_CODE.search(text)
