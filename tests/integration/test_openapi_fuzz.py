"""The local API keeps its own OpenAPI document under schema-driven fuzzing (schemathesis).

One real gateway on loopback with its delivery worker, the E-case platform simulator, the
direct EM simulator, the VISS simulator and the calendar (Radicale), so that outbound messages
route and are signed, queries reach an institution, registry queries reach a registry and a
calendar sync reaches its server. schemathesis reads
``/openapi.json`` from it and sends, for every operation, the schema's examples, the coverage
phase's boundary values and a bounded number of generated requests (valid and invalid), with a
fixed seed, and checks every answer:

- ``not_a_server_error``: no 5xx (except the SOAP endpoint, below);
- ``status_code_conformance``: every status is documented for the operation;
- ``content_type_conformance``: every content type is documented for that status;
- ``response_schema_conformance``: every JSON body matches the documented schema;
- ``response_headers_conformance``: documented response headers are present and match.

Excluded from ``not_a_server_error`` only: ``POST /soap/{endpoint}``. SOAP 1.1 (section 6.2)
requires a fault to travel with HTTP 500, and that is what partners' toolkits expect; the
operation is still fuzzed and its 500 is documented as ``text/xml`` (a SOAP Fault), which
the other checks enforce. Its real contract is the WSDL; hostile XML is covered by
tests/integration/test_bad_input.py and test_soap_strict.py.

Nothing is excluded. The admin operations are included: replay and discard only act on
message ids the fuzzer cannot guess (UUIDs), bulk replay only re-queues dead messages of this
throw-away database, journal verify only reads, and a job runs only under its exact name.
The volunteer facade's operations mostly answer 401 (no bearer token here): their
documented 401s and body shapes are what is checked there.

schemathesis runs as its command line (``schemathesis run``), the interface it keeps stable;
its pytest plugin does not work with pytest 9.2 (it sets ``Node._nodeid``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.calendar.radicale import RadicaleServer
from gateway.registries.sim import VissSimulator, create_viss_app
from gateway.server import stop_app_threads
from tests.conftest import build_settings, free_port
from tests.integration.conftest import Live, running, serve_in_thread

pytestmark = pytest.mark.integration

#: Generated requests per operation in the fuzzing phase; examples and coverage come on top.
MAX_EXAMPLES = 10
SEED = 20260815
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)

CONFIG = f"""
seed = {SEED}
workers = 1
suppress-health-check = ["all"]
# Generous for a loaded CI machine; a slow answer is not what this test measures.
request-timeout = 30

[generation]
max-examples = {MAX_EXAMPLES}
database = "none"
mode = "all"

[phases.stateful]
enabled = false

# Exactly these checks (the command line's --checks would override the per-operation table).
[checks]
enabled = false
{chr(10).join(f"{name}.enabled = true" for name in CHECKS)}

# SOAP 1.1 answers a fault with HTTP 500 (see the module docstring); any other 5xx still fails.
[[operations]]
include-method = "POST"
include-path = "/soap/{{endpoint}}"
checks.not_a_server_error.expected-statuses = ["2XX", "3XX", "4XX", 500]
"""


@pytest.fixture(scope="module")
def fuzz_live(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[Live]:
    """The gateway with every simulator: E-case, EM, VISS and the calendar (Radicale)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    radicale = RadicaleServer(
        host="127.0.0.1",
        port=free_port(),
        storage=tmp / "radicale",
        username="plus-gateway",
        password="plus-gateway",
    ).start()
    settings = build_settings(
        tmp, keys_dir, calendar={"url": radicale.url, "server": {"port": radicale.port}}
    )
    viss = serve_in_thread(
        create_viss_app(VissSimulator(settings)), settings.simulators["viss"].port
    )
    try:
        with running(settings) as live:
            yield live
    finally:
        stop_app_threads(viss)
        radicale.stop()


def test_api_keeps_its_openapi(fuzz_live: Live, tmp_path: Path) -> None:
    """0 server errors and 0 schema violations over every operation of /openapi.json."""
    # The document is built once, on the first request; build it before the fuzzer's clock runs.
    assert fuzz_live.http.get(f"{fuzz_live.gateway}/openapi.json").status_code == 200
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    report = tmp_path / "report.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{fuzz_live.gateway}/openapi.json",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]
    # About 4 minutes for the 94 operations on a busy 2-CPU machine; the cap only stops a hang.
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    print(done.stdout[-20000:], done.stderr[-5000:])  # shown with -s, and on failure
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
