"""The partner kit, unpacked into an empty directory, followed step by step by its README.

Only Python and the kit are used: the README's ``pip install plus-gateway`` step is the
installed package this test runs in (``python -m gateway`` is the ``plus-gateway`` script);
every other step runs exactly as written, in the unpacked directory. The simulator's port is
the only change: the kit's 8083 becomes a free port, in config.yaml and in the commands alike.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gateway.cli import main
from gateway.harness.kit import KIT_SIM_PORT
from tests.conftest import ROOT, free_port

_STEP = re.compile(r"<!-- step: ([a-z-]+) -->\s*```sh\n(.*?)```", re.S)


def _steps(readme: str) -> dict[str, list[list[str]]]:
    steps = {}
    for name, block in _STEP.findall(readme):
        commands = []
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                commands.append(line)
        steps[name] = [shlex.split(c) for c in commands]
    return steps


def _argv(words: list[str]) -> list[str]:
    assert words[0] == "plus-gateway", words
    return [sys.executable, "-m", "gateway", *words[1:]]


def test_kit_unpacked_in_an_empty_directory_checks_an_endpoint(tmp_path: Path) -> None:
    written = tmp_path / "written"
    assert (
        main(
            [
                "--config",
                str(ROOT / "config.yaml"),
                "harness",
                "kit",
                "--institution",
                "prois",
                "--out",
                str(written),
            ]
        )
        == 0
    )
    # Nothing is committed: the keys are made now, and only there.
    assert (written / "keys" / "gateway-key.pem").is_file()
    archive = shutil.make_archive(str(tmp_path / "prois-kit"), "zip", written)
    kit = tmp_path / "unpacked"
    kit.mkdir()
    shutil.unpack_archive(archive, kit)
    for part in (
        "README.md",
        "SIGNATURE-PROFILE.md",
        "contract/wsdl/ecase.wsdl",
        "contract/xsd/ecase/messages.xsd",
        "samples/mediation_result/valid.json",
        "samples/invalid.yaml",
        "keys/prois-sim-cert.pem",
    ):
        assert (kit / part).is_file(), part
    port = free_port()
    config = kit / "config.yaml"
    config.write_text(config.read_text("utf-8").replace(str(KIT_SIM_PORT), str(port)), "utf-8")
    steps = _steps((kit / "README.md").read_text("utf-8").replace(str(KIT_SIM_PORT), str(port)))
    assert list(steps) == ["install", "self-check", "simulator", "partner"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = str(ROOT)  # the installed package is the project under test

    # Step 2: the self-check (our simulators and gateway, both directions).
    (self_check,) = steps["self-check"]
    done = subprocess.run(
        _argv(self_check), cwd=kit, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "harness PASSED" in done.stdout
    assert (kit / "reports/self-check/report.html").is_file()

    # Step 3: the simulator in the background, then partner mode against it.
    (simulator,) = steps["simulator"]
    assert simulator[-1] == "&"
    log = (tmp_path / "sim.log").open("wb")
    sim = subprocess.Popen(
        _argv(simulator[:-1]), cwd=kit, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        (partner,) = steps["partner"]
        done = subprocess.run(
            _argv(partner), cwd=kit, env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        sim.terminate()
        sim.wait(10)
        log.close()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "harness PASSED" in done.stdout and "operations 5/5 (100 %)" in done.stdout
    assert (kit / "reports/partner/junit.xml").is_file()
