"""Shared fixtures: demo keys, settings on free loopback ports, a loaded runtime."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from gateway.config import Settings, deep_merge, load_settings
from gateway.harness.environment import free_port
from gateway.signing.keys import init_keys
from gateway.store import create_store_engine, migrate

#: The volunteer facade's demo key pairs (gateway/facade/keys.py).
FACADE_KEYS = ("facade-seal", "facade-issuer")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples"
#: The institutions config.yaml configures, each with a simulator and demo keys in tests.
INSTITUTIONS = ("tis", "prois", "ievp", "em", "vraa", "portal", "dvs")


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo keys for the gateway, the TIS and VISS simulators and an untrusted intruder."""
    directory = tmp_path_factory.mktemp("keys")
    init_keys(
        directory,
        # facade-seal and facade-issuer: the volunteer facade's seal and development issuer.
        [
            "gateway",
            *(f"{i}-sim" for i in INSTITUTIONS),
            "viss-sim",
            "identity-sim",  # the E-case platform's identity assertions (e-services)
            "intruder",
            *FACADE_KEYS,
        ],
    )
    return directory


def build_settings(tmp_path: Path, keys_dir: Path, **overrides: Any) -> Settings:
    """Settings from the real config.yaml, pointed at temp keys, a temp DB and free ports."""
    api_port, ecase_port, em_port, viss_port = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    )
    gateway_url = f"http://127.0.0.1:{api_port}"
    calendar_port = free_port()
    fast_retry = {"base_delay": 0.05, "max_delay": 0.2}
    institutions: dict[str, Any] = {
        name: {
            "trust": {"certificates": [str(keys_dir / f"{name}-sim-cert.pem")]},
            "retry": fast_retry,
        }
        for name in INSTITUTIONS
    }
    institutions["em"].update(
        endpoint=f"http://127.0.0.1:{em_port}/soap/em", connect_timeout=1, operation_timeout=5
    )
    simulators: dict[str, Any] = {
        name: {
            "key": str(keys_dir / f"{name}-sim-key.pem"),
            "certificate": str(keys_dir / f"{name}-sim-cert.pem"),
            "trust": {"certificates": [str(keys_dir / "gateway-cert.pem")]},
            "gateway_url": gateway_url,
        }
        for name in INSTITUTIONS
    }
    simulators["em"]["port"] = em_port
    # VRAA (the monthly e-service usage report) is direct too, on a port of its own.
    vraa_port = free_port()
    institutions["vraa"].update(
        endpoint=f"http://127.0.0.1:{vraa_port}/soap/vraa", connect_timeout=1, operation_timeout=5
    )
    simulators["vraa"]["port"] = vraa_port
    # DVS (notifications to official e-addresses) is direct too.
    dvs_port = free_port()
    institutions["dvs"].update(
        endpoint=f"http://127.0.0.1:{dvs_port}/soap/dvs", connect_timeout=1, operation_timeout=5
    )
    simulators["dvs"]["port"] = dvs_port
    # The E-case platform's identity key signs the portal users' identity assertions.
    simulators["identity"] = {
        "key": str(keys_dir / "identity-sim-key.pem"),
        "certificate": str(keys_dir / "identity-sim-cert.pem"),
    }
    simulators["ecase"] = {"port": ecase_port}
    simulators["viss"] = {
        "port": viss_port,
        "key": str(keys_dir / "viss-sim-key.pem"),
        "certificate": str(keys_dir / "viss-sim-cert.pem"),
        "trust": {"certificates": [str(keys_dir / "gateway-cert.pem")]},
    }
    base: dict[str, Any] = {
        # The facade's demo pairs (seal, issuer) are found in paths.keys.
        "paths": {"keys": str(keys_dir)},
        "api": {"port": api_port},
        "store": {"url": f"sqlite:///{tmp_path}/gateway.db"},
        "signing": {
            "key": str(keys_dir / "gateway-key.pem"),
            "certificate": str(keys_dir / "gateway-cert.pem"),
        },
        "ecase": {
            "endpoint": f"http://127.0.0.1:{ecase_port}/soap/ecase",
            "connect_timeout": 1,
            "operation_timeout": 5,
        },
        "institutions": institutions,
        "delivery": {"poll_interval": 0.05},
        # Anchors next to the temp database, never in the project's var/anchors.
        "journal": {"anchor_path": str(tmp_path / "anchors")},
        # The calendar's CalDAV server (the Radicale `serve --with-simulators` starts) on a
        # free port, its files under the temp directory: never the developer's 5232.
        "calendar": {
            "url": f"http://127.0.0.1:{calendar_port}",
            "server": {"port": calendar_port, "storage": str(tmp_path / "radicale")},
        },
        # serve's job ticker stays off unless a test turns it on (tests/integration/
        # test_opendata_run.py): other tests' gateways then do no scheduled work meanwhile.
        "jobs": {"enabled": False},
        # The CKAN simulator of `serve --with-simulators` on a free port, with small synthetic
        # extracts; packages next to the temp database.
        "opendata": {
            "ckan": {"url": f"http://127.0.0.1:{free_port()}"},
            "demo_clients": 500,
            "output": str(tmp_path / "opendata"),
        },
        "simulators": simulators,
        "eservices": {
            "identity_trust": {"certificates": [str(keys_dir / "identity-sim-cert.pem")]},
        },
        "registries": {
            "endpoint": f"http://127.0.0.1:{viss_port}/soap/viss",
            "trust": {"certificates": [str(keys_dir / "viss-sim-cert.pem")]},
        },
    }
    return load_settings(ROOT / "config.yaml", **deep_merge(base, overrides))


@pytest.fixture
def make_settings(tmp_path: Path, keys_dir: Path) -> Callable[..., Settings]:
    """Settings from the real config.yaml, pointed at temp keys, a temp DB and free ports."""

    def factory(**overrides: Any) -> Settings:
        return build_settings(tmp_path, keys_dir, **overrides)

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Default test settings."""
    return make_settings()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Any]:
    """A fully loaded runtime over a temp SQLite database."""
    from gateway.runtime import Runtime

    rt = Runtime(settings)
    yield rt
    rt.close()


def postgres_url() -> str | None:
    """The PostgreSQL URL for tests marked ``postgres``, if configured."""
    return os.environ.get("PLUSGW_TEST_POSTGRES_URL")


#: Why a PostgreSQL test is skipped (never silently) when no URL is configured.
SKIP_PG = (
    "PostgreSQL tests need PLUSGW_TEST_POSTGRES_URL, e.g. "
    "PLUSGW_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test make test"
)


@contextmanager
def postgres_schema(*, migrated: bool = False, skip: str = SKIP_PG) -> Iterator[str]:
    """A throwaway PostgreSQL schema: yields the URL whose search_path is that schema
    (migrated first when ``migrated``) and drops the schema afterwards. Skips the test with
    ``skip`` when PLUSGW_TEST_POSTGRES_URL is unset."""
    url = postgres_url()
    if not url:
        pytest.skip(skip)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_store_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    try:
        if migrated:
            engine = create_store_engine(scoped)
            migrate(engine)  # once, before any instance starts
            engine.dispose()
        yield scoped
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def config_file(tmp_path: Path, settings: Settings) -> Path:
    """A config.yaml on disk equivalent to the ``settings`` fixture (for the CLI)."""
    import yaml

    # Every path in loaded settings is absolute, so the dump works from any directory.
    data = settings.model_dump(mode="json", exclude_none=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def sample_json(message_type: str) -> dict[str, Any]:
    """The valid canonical sample of ``message_type``."""
    import json

    data: dict[str, Any] = json.loads(
        (SAMPLES / message_type / "valid.json").read_text(encoding="utf-8")
    )
    return data


def seed_answered_requests(settings: Settings, store: Any, mappings: Any) -> list[str]:
    """Put in the inbox the requests the outbound samples answer, so their replies route.

    An ``evaluation_report`` sample names an ``evaluation_report_request`` by its MessageId,
    an ``execution_notification`` a ``court_ruling``: the gateway refuses a reply to a request
    it never received, so tests that send samples first need those requests. Returns the ids.
    """
    from gateway.store import InboundRecord

    seeded = []
    for mapping in mappings.all():
        reply_to = mapping.routing.reply_to if mapping.routing else None
        if mapping.direction != "outbound" or reply_to is None:
            continue
        reference = str(mapping.get_path(sample_json(mapping.message_type), reply_to.field))
        # The type whose sample carries that id, and its sender: the institution the id's
        # prefix names (TIS-2026-000123), else the first by name that sends the type.
        message_type = next(
            (t for t in reply_to.types if sample_json(t).get("message_id") == reference),
            reply_to.types[0],
        )
        senders = sorted(n for n, c in settings.institutions.items() if message_type in c.sends)
        prefix = reference.split("-", 1)[0].lower()
        sender = prefix if prefix in senders else senders[0]
        store.inbox.accept(
            InboundRecord(
                message_id=f"seed-{reference}",
                partner=sender,
                operation="seed",
                message_type=message_type,
                partner_message_id=reference,
                correlation_id=None,
                canonical=sample_json(message_type),
                payload=b"<seeded/>",
            )
        )
        seeded.append(reference)
    return seeded
