"""The partner kit: what an institution's developers need to build and check their side.

``plus-gateway harness kit --institution NAME --out DIR`` writes (any institution the
configuration names; nothing here knows one by name)::

    DIR/README.md                 the exact steps (also read by the test that follows them)
    DIR/config.yaml               a configuration pointing into the kit (paths are relative)
    DIR/contract/wsdl/ecase.wsdl  the universal contract, and the XSDs it imports
    DIR/contract/xsd/...
    DIR/contract/mappings/...     the message mappings the harness derives its cases from
    DIR/samples/<type>/...        valid and invalid samples of the institution's types
    DIR/SIGNATURE-PROFILE.md      the signature profile
    DIR/keys/                     test keys and certificates made now (never committed)

The keys are the simulator environment's: the test gateway's pair (your endpoint pins its
certificate; the harness signs with it in partner mode) and the simulated institution's pair.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from gateway.channels.ecase import ECASE_ENDPOINT
from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.signing.keys import init_keys

__all__ = ["KIT_SIM_PORT", "write_kit"]

#: The port of the simulated E-case platform in the kit's configuration.
KIT_SIM_PORT = 8083


def write_kit(config: Path | str | None, institution: str, out: Path) -> Path:
    """Write the kit for ``institution`` into ``out`` (created; must be empty if it exists)."""
    config_path = Path(config or "config.yaml")
    settings = load_settings(config_path)
    found = settings.institution(institution)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"harness kit: {out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    contract = out / "contract"
    shutil.copytree(Path(settings.paths.xsd), contract / "xsd")
    # Every WSDL (the gateway started by the self-check loads the registries' one too).
    shutil.copytree(Path(settings.paths.wsdl), contract / "wsdl")
    shutil.copytree(Path(settings.paths.mappings), contract / "mappings")
    samples = Path(settings.paths.samples)
    (out / "samples").mkdir()
    from gateway.mapping import MappingRegistry

    mappings = MappingRegistry.load(settings.paths.mappings)
    types = {*found.sends, *found.receives}
    for query in found.answers:
        types |= {
            mappings.query_request(query).message_type,
            mappings.query_answer(query).message_type,
        }
    # Samples of every type (the harness reads the ones it needs); the institution's own
    # types are listed in the README.
    for folder in sorted(p for p in samples.iterdir() if p.is_dir() and p.name in mappings):
        shutil.copytree(folder, out / "samples" / folder.name)
    for name in ("invalid.yaml", "README.md"):
        if (samples / name).is_file():
            shutil.copy2(samples / name, out / "samples" / name)
    profile = Path(__file__).resolve().parents[2] / "docs" / "SIGNATURE-PROFILE.md"
    if profile.is_file():
        shutil.copy2(profile, out / "SIGNATURE-PROFILE.md")
    init_keys(out / "keys", ["gateway", f"{institution}-sim"])
    endpoint = _write_config(config_path, out, institution)
    (out / "README.md").write_text(_readme(institution, found, sorted(types), endpoint), "utf-8")
    return out


def _write_config(config_path: Path, out: Path, institution: str) -> str:
    """Write the kit's config.yaml; return the URL of ``institution``'s simulator in it (the
    E-case platform for an E-case institution, its own simulator for a direct one)."""
    data: dict[str, Any] = yaml.safe_load(config_path.read_text("utf-8")) or {}
    # Paths into the project's folders point into the kit's: keys/ (the project's var/keys/
    # names) and contract/ (any other section naming a mapping, schema or WSDL file).
    paths = data.get("paths") or {}
    moves = {str(paths.get("keys", "var/keys")).rstrip("/") + "/": "keys/"}
    for name in ("mappings", "wsdl", "xsd"):
        moves[str(paths.get(name, name)).rstrip("/") + "/"] = f"contract/{name}/"
    data = _rekey(data, moves)
    data["paths"] = {
        "xsd": "contract/xsd",
        "wsdl": "contract/wsdl",
        "mappings": "contract/mappings",
        "samples": "samples",
        "keys": "keys",
    }
    data["signing"] = {"key": "keys/gateway-key.pem", "certificate": "keys/gateway-cert.pem"}
    data.setdefault("ecase", {})["wsdl"] = "contract/wsdl/ecase.wsdl"
    if "registries" in data:
        data["registries"]["wsdl"] = "contract/wsdl/viss.wsdl"
    # The self-check's gateway runs no scheduled jobs: an empty schedules folder.
    data["jobs"] = {**(data.get("jobs") or {}), "enabled": False, "schedules": "schedules"}
    (out / "schedules").mkdir(exist_ok=True)
    data["ecase"]["endpoint"] = f"http://127.0.0.1:{KIT_SIM_PORT}/soap/{ECASE_ENDPOINT}"
    # Every institution stays (other sections name them), each pinned to its simulator's
    # certificate under keys/; only this institution's pair is in the kit. The self-check
    # (--sim) makes every pair afresh for its run.
    for name, cfg in (data.get("institutions") or {}).items():
        cfg["trust"] = {"certificates": [f"keys/{name}-sim-cert.pem"]}
    simulators = data.get("simulators") or {}
    data["simulators"] = {
        # Simulators that are no institution (identity, viss, ...) stay as configured.
        **{k: v for k, v in simulators.items() if k not in data["institutions"]},
        "ecase": {"host": "127.0.0.1", "port": KIT_SIM_PORT},
        institution: {
            # A direct institution's simulator keeps its own host and port.
            **simulators.get(institution, {}),
            "key": f"keys/{institution}-sim-key.pem",
            "certificate": f"keys/{institution}-sim-cert.pem",
            "trust": {"certificates": ["keys/gateway-cert.pem"]},
            "gateway_url": "http://127.0.0.1:8080",
        },
    }
    data["store"] = {"url": "sqlite:///harness-gateway.db"}
    own = data["institutions"][institution]
    endpoint = str(own["endpoint"]) if own.get("channel") == "direct" else data["ecase"]["endpoint"]
    data["logging"] = {"environment": "development", "level": "WARNING"}
    (out / "config.yaml").write_text(
        "# The partner kit's configuration: the contract and keys in this directory.\n"
        + yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
        "utf-8",
    )
    return endpoint


def _rekey(value: Any, moves: dict[str, str]) -> Any:
    """``value`` with every string starting with a key of ``moves`` moved to its value."""
    if isinstance(value, dict):
        return {k: _rekey(v, moves) for k, v in value.items()}
    if isinstance(value, list):
        return [_rekey(v, moves) for v in value]
    if isinstance(value, str):
        for old, new in moves.items():
            if value.startswith(old):
                return new + value[len(old) :]
    return value


def _readme(institution: str, found: Any, types: list[str], sim: str) -> str:
    up = institution.upper()
    # The endpoint path an E-case institution shares, or a direct one's own (as the gateway
    # serves it: gateway.channels.ecase.Channels.endpoint_of).
    path = ECASE_ENDPOINT if found.channel == "ecase" else institution
    return f"""# PLUS gateway partner kit: {institution} ({found.title})

This kit lets the developers of {up} build and check their side of the E-case contract with
PLUS: the WSDL and XSDs (`contract/`), valid and invalid samples (`samples/`), the signature
profile (`SIGNATURE-PROFILE.md`), test keys made when this kit was written (`keys/`, for the
simulator environment only, never for production), and the conformance harness.

- {up} sends to PLUS: {", ".join(found.sends) or "nothing"}
- {up} receives from PLUS: {", ".join(found.receives) or "nothing"}
- {up} answers the queries: {", ".join(found.answers) or "none"}
- message types in this kit for {up}: {", ".join(types)}

What you need: Python 3.11 or newer, and the plus-gateway package (it carries the harness).
Run every step in this directory.

## 1. Install the harness

<!-- step: install -->
```sh
python3 -m venv .venv && . .venv/bin/activate
pip install plus-gateway   # the wheel or source tree PLUS hands over: pip install ./plus-gateway
```

## 2. Check the kit on your machine (our simulators and gateway, both directions)

This starts the E-case platform simulator with simulated {up} behind it and a PLUS gateway on
loopback, and runs the harness both ways (partner mode against simulated {up}, gateway mode
against the gateway as {up} calls it). It must end `harness PASSED`.

<!-- step: self-check -->
```sh
plus-gateway --config config.yaml harness --sim --mode soap --institution {institution} \\
  --out reports/self-check
```

## 3. See partner mode against the {up} simulator

Partner mode calls an endpoint as the PLUS gateway would: every operation {up} receives with
valid samples (a signed acknowledgement `ACCEPTED`, then `DUPLICATE` for the same message),
every invalid sample and XSD-facet negative (a fault with the code), the queries {up} answers,
and what {up} must refuse (unsigned, altered, wrong signer, a type it does not receive).

<!-- step: simulator -->
```sh
plus-gateway --config config.yaml sim ecase &
```

<!-- step: partner -->
```sh
plus-gateway --config config.yaml harness --mode partner --institution {institution} \\
  --url {sim} --out reports/partner
```

## 4. Check your implementation

Your endpoint pins `keys/gateway-cert.pem` (the test gateway's signing certificate: the
harness signs with `keys/gateway-key.pem`) and signs its acknowledgements and answers with
your test key. Point the harness at it and give your signing certificate:

```sh
plus-gateway --config config.yaml harness --mode partner --institution {institution} \\
  --url https://YOUR-TEST-ENDPOINT/soap/{path} --peer-cert YOUR-SIGNING-CERT.pem \\
  --tls-cert YOUR-TLS-CLIENT-CERT.pem --tls-key YOUR-TLS-CLIENT-KEY.pem --tls-ca TLS-CA.pem \\
  --out reports/mine
```

To check the PLUS test gateway as {up} calls it (gateway mode: signature-profile negatives,
duplicates, E-case headers), sign with your key and pin the gateway's certificate:

```sh
plus-gateway --config config.yaml harness --mode gateway --institution {institution} \\
  --url https://PLUS-TEST-GATEWAY/soap/{path} --sign-key YOUR-KEY.pem --sign-cert YOUR-CERT.pem \\
  --peer-cert keys/gateway-cert.pem --out reports/gateway
```

## Reading the result

The harness prints one line (`harness PASSED` or `harness FAILED`, counts, operation
coverage) and exits 0 when every case passed, 1 otherwise, 2 on a configuration error.
`reports/*/report.html` shows every case with the request and answer on the wire (personal
data masked), the verdict and why; `reports/*/junit.xml` is for your CI. An unreachable
endpoint, a TLS failure, an endpoint that does not answer in time, or a WSDL that differs from
`contract/wsdl/ecase.wsdl` each appear as a report entry.
"""
