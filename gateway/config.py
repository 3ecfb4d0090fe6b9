"""Typed, frozen settings loaded once from ``config.yaml`` with ``PLUSGW_...`` overrides.

Precedence: environment variables (``PLUSGW_API__PORT=9000``, nested keys joined by ``__``)
over the YAML file over the defaults below. Relative paths are resolved against the directory
of the config file, so the gateway behaves the same whatever the working directory.

A bad or missing key raises :class:`~gateway.errors.ConfigError` naming the key; the CLI turns
that into a message on stderr and exit status 2.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.errors import ConfigError

# Institution names appear in URLs (/soap/<name>), metrics labels and key file names.
_SAFE_INSTITUTION = re.compile(r"[a-z][a-z0-9]{0,15}")

__all__ = [
    "ApiSettings",
    "CalendarServerSettings",
    "CalendarSettings",
    "CkanSettings",
    "ClassifiersSettings",
    "DeliverySettings",
    "EServicesSettings",
    "EcaseSettings",
    "FacadeAuthSettings",
    "FacadeSealSettings",
    "FacadeSettings",
    "InstitutionSettings",
    "JobsSettings",
    "JournalSettings",
    "OpendataSettings",
    "OperationSettings",
    "PushSettings",
    "RegistriesSettings",
    "RegistrySettings",
    "RetentionSettings",
    "RetrySettings",
    "Settings",
    "SigningSettings",
    "SimulatorSettings",
    "StoreSettings",
    "TrustSettings",
    "load_settings",
]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ApiSettings(_Section):
    """The local HTTP API for PLUS and the inbound SOAP endpoints."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    #: When set, every /v1 call must carry it in the X-API-Key header.
    api_key: SecretStr | None = None
    #: Base URL partners use to reach us; the served WSDL's soap:address is built from it.
    public_url: str | None = None
    #: Largest request body of the JSON API (/v1/...); larger ones get 413 before they are
    #: read whole. The SOAP endpoints have their own cap, ``xml.max_bytes``.
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    #: Deepest nesting of arrays and objects in a JSON API body (422 JSON_TOO_DEEP beyond).
    max_json_depth: int = Field(32, ge=1, le=1000)
    #: Processes accepting HTTP on the one port (issue 14): ``serve`` itself plus
    #: ``workers - 1`` HTTP-only processes (gateway/workers.py); delivery, jobs and anchors
    #: run in ``serve`` only. 1 = one process, as before.
    workers: int = Field(1, ge=1, le=64)

    def base_url(self) -> str:
        """The URL partners should use for this gateway."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class StoreSettings(_Section):
    """Where journal, inbox, outbox and idempotency keys live."""

    url: str = "sqlite:///var/gateway.db"
    echo: bool = False


class XmlSettings(_Section):
    """Limits for every parsed XML document (``gateway.xml.XmlLimits.from_settings``).

    Checked while parsing, before any canonicalisation or signature work, so a hostile 10 MB
    request is refused in well under a second and 100 MB (docs/PERFORMANCE.md).
    """

    max_bytes: int = Field(10 * 1024 * 1024, gt=0)
    #: Elements, comments and processing instructions in one document.
    max_elements: int = Field(20_000, gt=0)
    #: Attributes on one element, and in the whole document.
    max_attributes: int = Field(64, gt=0)
    max_total_attributes: int = Field(50_000, gt=0)
    #: Namespace declarations on one element, and in scope at any element.
    max_namespaces: int = Field(32, gt=0)
    max_namespaces_in_scope: int = Field(64, gt=0)
    #: Characters in one text node, and in one attribute value.
    max_text: int = Field(1024 * 1024, gt=0)
    max_attribute_value: int = Field(64 * 1024, gt=0)
    #: Certificates in one signature's KeyInfo (the trust store refuses more).
    max_certificates: int = Field(4, gt=0)


class SigningSettings(_Section):
    """The gateway's own signing key and certificate."""

    key: Path
    certificate: Path
    algorithm: Literal["rsa-sha256", "ecdsa-sha256"] = "rsa-sha256"
    #: Also accept partner signatures in the earlier profile (Reference URI="" over the
    #: payload cut out of the message) during a transition; off by default. Our own
    #: signatures always use the in-place profile (docs/SIGNATURE-PROFILE.md).
    accept_legacy_uri: bool = False


class TrustSettings(_Section):
    """Whom we believe: pinned certificates and/or a CA bundle."""

    certificates: tuple[Path, ...] = ()
    ca: Path | None = None

    @model_validator(mode="after")
    def _something_trusted(self) -> TrustSettings:
        if not self.certificates and self.ca is None:
            raise ValueError("trust needs at least one pinned certificate or a ca")
        return self


class RetrySettings(_Section):
    """Backoff for outbound delivery: full jitter between 0 and min(cap, base * 2**n)."""

    base_delay: float = Field(1.0, gt=0)
    max_delay: float = Field(300.0, gt=0)
    max_attempts: int = Field(12, ge=1)
    #: Seconds after acceptance past which a still-failing message goes to dead letter.
    max_age: float = Field(7 * 24 * 3600, gt=0)


class BreakerSettings(_Section):
    """Circuit breaker per registry, or per institution for delivery: open after N consecutive
    failures, retry after a pause."""

    failure_threshold: int = Field(5, ge=1)
    #: Seconds an open breaker waits before letting one trial query (or trial message) through
    #: (half-open). Delivery probes at least as often as the retry cap (``retry.max_delay``).
    reset_timeout: float = Field(30.0, gt=0)


class OperationSettings(_Section):
    """Per-operation (route) overrides of a partner's delivery settings; unset keys inherit."""

    #: Hold a message while an earlier one with the same ordering key is undelivered.
    ordered: bool | None = None
    retry: RetrySettings | None = None


class EcaseSettings(_Section):
    """The E-case platform: the universal contract, its endpoint, and who we are on it.

    The WSDL is also the contract of a ``direct`` institution, which serves ``service``/``port``
    at its own endpoint; the gateway serves ``inbound_service``/``inbound_port`` at
    ``/soap/ecase`` (and at ``/soap/<institution>`` for each direct one).
    """

    wsdl: Path = Path("wsdl/ecase.wsdl")
    #: Service and port the platform (or a direct institution) serves; we call it.
    service: str = "EcaseService"
    port: str = "EcasePort"
    #: Service and port we serve to the platform and to direct institutions.
    inbound_service: str = "PlusService"
    inbound_port: str = "PlusPort"
    endpoint: str = "http://127.0.0.1:8083/soap/ecase"
    #: Our X-Road style identifier on the platform: instance/class/member code/subsystem.
    client_id: str = "LV/GOV/90000000000/PLUS"
    protocol_version: str = "4.0"
    #: Version of the contract, sent as serviceVersion and expected in inbound service headers.
    service_version: str = "v1"
    #: userId header when PLUS names no officer (X-User-Id on the local API).
    user_id: str = "PLUS"
    connect_timeout: float = Field(5.0, gt=0)
    operation_timeout: float = Field(30.0, gt=0)
    #: Messages sent at once to the platform (all E-case institutions together); unset:
    #: ``delivery.concurrency``.
    concurrency: int | None = Field(None, ge=1, le=256)


class PollSettings(_Section):
    """How the gateway fetches a poll-only institution's messages (``delivery_mode: poll``).

    The ``institutions-poll`` job (schedules/institutions-poll.yaml) ticks; an institution is
    polled on the ticks that fall on its ``interval`` (one grid for every instance, so the
    runs table makes each poll happen once). Operations are those of the universal contract.
    """

    #: The contract operation that returns pending messages (wsdl/ecase.wsdl).
    operation: str = "PollMessages"
    #: The contract operation that tells the institution what was taken.
    acknowledge: str = "AcknowledgePolledMessages"
    #: Seconds between polls; a multiple of the job's interval (rounded to one).
    interval: float = Field(60.0, gt=0)
    #: Messages asked for per request (the contract allows up to 500).
    max_messages: int = Field(50, ge=1, le=500)
    #: Requests per run at most (then the next run goes on): bounds a run's time.
    max_batches: int = Field(20, ge=1, le=1000)


class InstitutionSettings(_Section):
    """One institution (a court system, the prosecution, the prisons, monitoring, ...): data.

    ``sends``, ``receives`` and ``answers`` name business message types and queries of the
    universal contract; nothing in the code knows any institution by name.
    """

    title: str
    #: ``ecase``: through the E-case platform; ``direct``: its own endpoint (``endpoint``).
    channel: Literal["ecase", "direct"] = "ecase"
    #: X-Road style identifier: instance/member class/member code/subsystem.
    member: str
    endpoint: str | None = None
    #: Direct channel timeouts; on E-case the platform's apply.
    connect_timeout: float = Field(5.0, gt=0)
    operation_timeout: float = Field(30.0, gt=0)
    sends: tuple[str, ...] = ()
    receives: tuple[str, ...] = ()
    #: Synchronous queries the institution answers (T-02), by query name.
    answers: tuple[str, ...] = ()
    trust: TrustSettings
    retry: RetrySettings = RetrySettings()
    #: Delivery's circuit breaker of this institution: while it is open, messages wait without
    #: spending attempts, and one trial message probes the institution (docs/DELIVERY.md).
    breaker: BreakerSettings = BreakerSettings(reset_timeout=10.0)
    #: Direct channel: messages sent at once to the endpoint; unset: ``delivery.concurrency``
    #: (on E-case, ``ecase.concurrency`` applies).
    concurrency: int | None = Field(None, ge=1, le=256)
    #: Deliver messages sharing an ordering key (the case number) in submission order.
    ordered: bool = True
    #: Overrides by operation name or message type, e.g. ``SubmitExecutionNotification``.
    operations: dict[str, OperationSettings] = {}
    #: ``push``: it sends its messages to our endpoint; ``poll``: it only holds them for us,
    #: and the ``institutions-poll`` job fetches them (``poll:``) on its channel.
    delivery_mode: Literal["push", "poll"] = "push"
    poll: PollSettings | None = None

    @model_validator(mode="after")
    def _direct_needs_endpoint(self) -> InstitutionSettings:
        if self.channel == "direct" and not self.endpoint:
            raise ValueError("a direct institution needs an endpoint")
        if self.delivery_mode == "poll":
            if not self.sends:
                raise ValueError("a poll-only institution must send something (sends: [...])")
            if self.poll is None:
                # Defaults are data too: the block may be left out.
                object.__setattr__(self, "poll", PollSettings())
        elif self.poll is not None:
            raise ValueError("poll: applies only with delivery_mode: poll")
        return self

    def _override(self, operation: str, message_type: str | None) -> OperationSettings | None:
        return self.operations.get(operation) or (
            self.operations.get(message_type) if message_type else None
        )

    def retry_for(self, operation: str, message_type: str | None = None) -> RetrySettings:
        """The retry policy of one route: its override, else the institution's."""
        found = self._override(operation, message_type)
        return found.retry if found and found.retry else self.retry

    def ordered_for(self, operation: str, message_type: str | None = None) -> bool:
        """Whether one route keeps per-case order: its override, else the institution's."""
        found = self._override(operation, message_type)
        return found.ordered if found and found.ordered is not None else self.ordered


class PushSettings(_Section):
    """Optional push of inbox messages to a PLUS webhook (pull with ack keeps working)."""

    #: Where to POST each inbox message as JSON; unset disables push.
    url: str | None = None
    connect_timeout: float = Field(3.0, gt=0)
    read_timeout: float = Field(10.0, gt=0)
    batch_size: int = Field(20, ge=1)
    retry: RetrySettings = RetrySettings()


class DeliverySettings(_Section):
    """The outbox worker."""

    enabled: bool = True
    poll_interval: float = Field(0.5, gt=0)
    batch_size: int = Field(20, ge=1)
    lease_seconds: float = Field(120.0, gt=0)
    pool_maxsize: int = Field(10, ge=1)
    #: Messages sent at once per endpoint (the E-case platform, each direct institution),
    #: each of another case; a case's messages still leave one at a time, in order.
    concurrency: int = Field(8, ge=1, le=256)
    #: Seconds a SIGTERM/SIGINT may take: drain requests, finish or give back deliveries,
    #: release leases, checkpoint the store (gateway/lifecycle.py).
    shutdown_timeout: float = Field(10.0, gt=0)


class SimulatorSettings(_Section):
    """A simulator (``plus-gateway sim NAME``): the E-case platform, an institution, VISS.

    A simulated institution signs with ``key``/``certificate`` and believes ``trust`` (the
    gateway's certificate); host and port matter for servers (the platform, a direct
    institution, VISS). The E-case platform simulator needs no key of its own.
    """

    host: str = "127.0.0.1"
    port: int = Field(8081, ge=1, le=65535)
    key: Path | None = None
    certificate: Path | None = None
    #: Whom the simulator believes (the gateway's certificate).
    trust: TrustSettings | None = None
    #: The gateway's base URL, where simulated institutions send their messages.
    gateway_url: str = "http://127.0.0.1:8080"


class RegistrySettings(_Section):
    """One registry reached through VISS: its service identifier and timeouts."""

    #: X-Road style service identifier: instance/class/member code/subsystem/service/version.
    service_id: str
    connect_timeout: float = Field(2.0, gt=0)
    read_timeout: float = Field(5.0, gt=0)


def _default_registries() -> dict[str, RegistrySettings]:
    return {
        "viis": RegistrySettings(service_id="LV/GOV/90000000001/VIIS/GetEducation/v1"),
        "iis": RegistrySettings(service_id="LV/GOV/90000000002/IIS/GetDisability/v1"),
        "vid": RegistrySettings(service_id="LV/GOV/90000000003/VID/GetEmploymentIncome/v1"),
        "rd": RegistrySettings(service_id="LV/GOV/90000000004/RD/GetSocialStatus/v1"),
    }


class RegistriesSettings(_Section):
    """Registry queries through VISS (education, disability, employment/income, social)."""

    #: Off when no trust is configured: the registry endpoints then answer 503.
    enabled: bool = True
    wsdl: Path = Path("wsdl/viss.wsdl")
    #: Base URL of the VISS endpoint; each registry is served at <endpoint>/<registry>.
    endpoint: str = "http://127.0.0.1:8082/soap/viss"
    #: X-Road style client identifier of PLUS: instance/class/member code/subsystem.
    client_id: str = "LV/GOV/90000000000/PLUS"
    protocol_version: str = "4.0"
    legal_basis: str = "Valsts probācijas dienesta likums"
    registries: dict[str, RegistrySettings] = Field(default_factory=_default_registries)
    breaker: BreakerSettings = BreakerSettings()
    #: Seconds to keep answers (personal data) in memory; 0 keeps nothing.
    cache_ttl: float = Field(0.0, ge=0)
    cache_max_entries: int = Field(10_000, ge=1)
    #: Threads for the profile fan-out and concurrent queries.
    max_workers: int = Field(16, ge=1)
    #: Whom we believe for answers (the VISS signing certificate, pinned).
    trust: TrustSettings | None = None

    @field_validator("registries", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        # A config file may tune one registry; the others keep their defaults.
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {k: v.model_dump() for k, v in _default_registries().items()}
        for name, given in value.items():
            if isinstance(given, dict) and name in merged:
                merged[name] = {**merged[name], **given}
            else:
                merged[name] = given
        return merged

    @model_validator(mode="after")
    def _known_registries(self) -> RegistriesSettings:
        unknown = set(self.registries) - {"viis", "iis", "vid", "rd"}
        if unknown:
            raise ValueError(f"unknown registry {sorted(unknown)[0]!r}; use viis, iis, vid, rd")
        return self


class ClassifiersSettings(_Section):
    """The E-case shared-classifier service ``classifiers sync`` reads (docs/CLASSIFIERS.md)."""

    #: The code-list collection: GET lists {source, version}; GET <url>/<source> one list.
    service_url: str = "http://127.0.0.1:8083/classifiers"
    #: Seconds for connecting, for each read, and for a whole answer.
    timeout: float = Field(5.0, gt=0)
    #: Larger answers are refused: a code list is kilobytes.
    max_bytes: int = Field(2 * 1024 * 1024, gt=0)


class JournalSettings(_Section):
    """Anchors of the journal outside the database, and what rejections keep.

    See docs/DELIVERY.md ("Anchored journal") and gateway/store/anchor.py.
    """

    #: Seconds between signed checkpoints of the chain head written by ``serve``; 0: none
    #: (``plus-gateway journal anchor`` still writes one on demand).
    anchor_interval: float = Field(300.0, ge=0)
    #: Where checkpoints go: ``file`` (JSON lines in anchor_path), ``http`` (POST to
    #: anchor_url, GET lists them) or ``none``.
    anchor_sink: Literal["file", "http", "none"] = "file"
    anchor_path: Path = Path("var/anchors")
    anchor_url: str | None = None
    anchor_timeout: float = Field(5.0, gt=0)
    #: Earlier gateway certificates whose checkpoints still verify after a key rotation.
    anchor_certificates: tuple[Path, ...] = ()
    #: Bytes of a rejected request body kept in the journal (its size and SHA-256 always are).
    rejected_prefix_bytes: int = Field(4096, ge=0)
    #: Total bytes of rejected payloads kept; beyond it the oldest are purged first.
    rejected_retention_bytes: int = Field(64 * 1024 * 1024, ge=0)

    @model_validator(mode="after")
    def _url_for_http(self) -> JournalSettings:
        if self.anchor_sink == "http" and not self.anchor_url:
            raise ValueError("anchor_sink http needs anchor_url")
        return self


class JobsSettings(_Section):
    """Scheduled jobs (``schedules/*.yaml``): the ticker in ``serve`` and the runs table.

    See docs/JOBS.md: one run per (job, period) across instances, leases, catch-up, retries.
    """

    #: Off: ``serve`` ticks nothing (``plus-gateway jobs run`` still works).
    enabled: bool = True
    #: The directory of job definitions, one YAML file per job.
    schedules: Path = Path("schedules")
    #: Time zone of cron expressions and of period boundaries (a month is Riga's month).
    timezone: str = "Europe/Riga"
    #: Seconds a run's lease lasts; renewed every third of it while the run works.
    lease_seconds: float = Field(60.0, gt=0)
    #: Seconds between sweeps for due retries, runs whose instance died, and missed periods.
    poll_interval: float = Field(5.0, gt=0)
    #: Threads running jobs in one instance.
    max_workers: int = Field(2, ge=1)


class CkanSettings(_Section):
    """The open data portal (data.gov.lv runs CKAN), reached through its action API."""

    url: str = "http://127.0.0.1:8085"
    api_key: SecretStr | None = None
    #: The CKAN organisation that owns the data sets.
    organization: str = "vpd"
    timeout: float = Field(30.0, gt=0)


class OpendataSettings(_Section):
    """The eight open data sets (DOMAIN.md, OD-01..OD-21) and their publication."""

    #: Which data sets are published: the staging of OD-17 (four first, then all eight).
    datasets: tuple[int, ...] = (1, 2, 3, 8)
    #: Primary suppression: counts from 1 to threshold-1 are not published (docs/OPEN-DATA.md).
    suppression_threshold: int = Field(5, ge=2)
    #: Stable URIs of data sets and distributions are built under this base (OD-07).
    base_uri: str = "https://data.vpd.gov.lv/opendata"
    publisher: str = "Valsts probācijas dienests"
    publisher_uri: str = "https://www.vpd.gov.lv"
    contact_email: str = "atvertie.dati@vpd.gov.lv"
    licence: str = "https://creativecommons.org/licenses/by/4.0/"
    #: Where ``opendata build`` and the publishing job write the packages.
    output: Path = Path("var/opendata")
    #: Largest extract accepted from PLUS (bytes); it is streamed, never held whole.
    max_extract_bytes: int = Field(256 * 1024 * 1024, gt=0)
    #: Errors kept and reported for a refused extract (counting goes on).
    max_errors: int = Field(100, ge=1)
    #: Clients a year in the synthetic extracts ``serve --with-simulators`` stores (make run).
    demo_clients: int = Field(17_500, ge=1)
    ckan: CkanSettings = CkanSettings()

    @field_validator("datasets")
    @classmethod
    def _known_sets(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        unknown = [n for n in value if n not in range(1, 9)]
        if unknown or not value:
            raise ValueError("data sets are numbered 1 to 8 (at least one)")
        return tuple(sorted(set(value)))


class EServicesSettings(_Section):
    """The E-case portal e-services (docs/ESERVICES.md): who the portal and DVS are, whose
    identity assertions we believe, and how long a request may wait before the portal is told
    it is pending."""

    #: The institution the portal's requests come from and its answers go to.
    portal: str = "portal"
    #: The records-management system that reaches official e-addresses (T-18); None: none.
    dvs: str | None = "dvs"
    #: Whom we believe for identity assertions: the E-case platform's identity certificate.
    identity_trust: TrustSettings | None = None
    #: An assertion older than this (from IssuedAt) is refused even before its ExpiresAt.
    assertion_max_age: float = Field(600.0, gt=0)
    #: Clock skew allowed on IssuedAt and ExpiresAt.
    assertion_leeway: float = Field(30.0, ge=0)
    #: Seconds a request may wait for PLUS before the portal gets eservice_pending.
    pending_after: float = Field(10.0, gt=0)
    #: Seconds between sweeps for requests to tell the portal about.
    sweep_interval: float = Field(1.0, gt=0)
    #: The portal's form catalogue: one JSON Schema per form and version.
    forms: Path = Path("mappings/eservices/forms")


class RetentionSettings(_Section):
    """How long each class of data is kept (SEC-07); the retention job applies it, journaled.

    0 keeps that class for ever. Payloads are nulled (hashes stay, so the journal's chain and
    anchors still verify); audit rows keep everything but the personal code, which becomes a
    keyed pseudonym.
    """

    outbox_delivered_days: float = Field(90, ge=0)
    inbox_acked_days: float = Field(90, ge=0)
    journal_payload_days: float = Field(365, ge=0)
    rejected_payload_days: float = Field(30, ge=0)
    extracts_days: float = Field(400, ge=0)
    audit_pseudonymise_years: float = Field(5, ge=0)
    #: Answered e-service requests (who asked, the e-address owner) are deleted.
    eservice_requests_days: float = Field(90, ge=0)


class CalendarServerSettings(_Section):
    """The embedded CalDAV counterpart (Radicale) that ``serve --with-simulators`` starts."""

    host: str = "127.0.0.1"
    port: int = Field(5232, ge=1, le=65535)
    #: Where Radicale keeps its collections (its own files; delete to start afresh).
    storage: Path = Path("var/radicale")


#: Keys that left config.yaml for a schedule: section -> key -> where it went (CHANGELOG).
_MOVED_KEYS: dict[str, dict[str, str]] = {
    "calendar": {
        "sync_interval": "schedules/calendar-publish.yaml (interval:)",
        "poll_interval": "schedules/calendar-poll.yaml (interval:)",
    },
    "facade": {"archive_interval": "schedules/facade-archive.yaml (interval:)"},
}


def _moved_keys(section: str, data: Any) -> Any:
    """Refuse a key that moved to schedules/, saying where, rather than "extra input"."""
    if isinstance(data, dict):
        moved = [k for k in _MOVED_KEYS[section] if k in data]
        if moved:
            raise ValueError(
                "; ".join(
                    f"{section}.{k} is now a scheduled job: set {_MOVED_KEYS[section][k]} "
                    "and remove the key (CHANGELOG)"
                    for k in moved
                )
            )
    return data


class CalendarSettings(_Section):
    """The unified calendar over CalDAV (docs/CALENDAR.md): availability out, bookings both ways.

    By default the embedded Radicale; point ``url`` (and the credentials) at the E-case unified
    calendar instead. Collections live under ``<url><home>``: one per resource (its id), plus
    ``requests`` (where the calendar side puts iTIP REQUEST, CANCEL and REPLY objects) and
    ``replies`` (where our REPLY, COUNTER, REQUEST and CANCEL objects go).
    """

    enabled: bool = True
    url: str = "http://127.0.0.1:5232"
    #: The home collection of our calendars on the server (a principal path on Radicale).
    home: str = "/plus-gateway/"
    username: str = "plus-gateway"
    password: SecretStr = SecretStr("plus-gateway")
    requests_collection: str = "requests"
    replies_collection: str = "replies"
    #: Delete an object from ``requests`` once it is in the inbox (the calendar side's queue).
    consume_requests: bool = True
    # Publishing and reading requests are scheduled jobs (schedules/calendar-publish.yaml and
    # calendar-poll.yaml); the loop's sync_interval and poll_interval are gone (_moved_keys).

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        return _moved_keys("calendar", data)

    #: Zone of times PLUS gives without an offset, of working hours and of floating times.
    time_zone: str = "Europe/Riga"
    #: Days ahead that recurring busy blocks are expanded for conflict checks and exports.
    horizon_days: int = Field(400, ge=7, le=3660)
    #: Occurrences one recurrence may have within the horizon; more is RRULE_UNBOUNDED.
    max_occurrences: int = Field(1000, ge=1, le=100_000)
    #: Largest iCalendar object read from the calendar side.
    max_bytes: int = Field(256 * 1024, gt=0)
    connect_timeout: float = Field(3.0, gt=0)
    timeout: float = Field(10.0, gt=0)
    #: Our calendar user address (ORGANIZER of what PLUS proposes).
    organizer: str = "mailto:kalendars@vp.gov.lv"
    #: A resource's calendar user address is this prefix + its id (ATTENDEE in requests).
    resource_address_prefix: str = "urn:lv:vpd:resource:"
    #: Retry policy of answers in the outbox (partner ``calendar``).
    retry: RetrySettings = RetrySettings(base_delay=1.0, max_delay=60.0)
    server: CalendarServerSettings = CalendarServerSettings()


class FacadeSealSettings(_Section):
    """The key that seals volunteer certificates (PAdES, pyHanko) and what validates them."""

    #: Unset: the demo pair ``facade-seal-key.pem``/``-cert.pem`` in ``paths.keys``.
    key: Path | None = None
    certificate: Path | None = None
    #: Certificates a seal may chain to (default: the seal certificate itself, self-signed
    #: in development); earlier seal certificates go here after a key rotation.
    trust: tuple[Path, ...] = ()


class FacadeAuthSettings(_Section):
    """Bearer tokens of the volunteer facade: an OIDC-style issuer and its JWKS."""

    #: The ``iss`` every token must carry.
    issuer: str = "https://plus-gateway.invalid/dev-issuer"
    #: The ``aud`` every token must carry (this API).
    audience: str = "plus-gateway-volunteering"
    #: The issuer's JWKS (OIDC ``jwks_uri``); fetched, cached and refetched for unknown kids.
    jwks_url: str | None = None
    jwks_cache_seconds: float = Field(300.0, gt=0)
    jwks_timeout: float = Field(5.0, gt=0)
    #: Without ``jwks_url``: the issuer's public keys as PEM certificates or public keys
    #: (unset: the development issuer's ``facade-issuer-cert.pem`` in ``paths.keys``).
    public_keys: tuple[Path, ...] = ()
    #: Development issuer key for ``plus-gateway facade token`` (never needed to verify;
    #: unset: ``facade-issuer-key.pem`` in ``paths.keys``).
    signing_key: Path | None = None
    algorithms: tuple[Literal["RS256", "ES256", "PS256"], ...] = ("RS256", "ES256")
    #: Seconds of clock skew tolerated on exp/nbf/iat.
    leeway: float = Field(30.0, ge=0, le=300)
    #: Longest lifetime ``facade token`` mints (seconds).
    max_token_lifetime: int = Field(12 * 3600, gt=0)


class FacadeSettings(_Section):
    """The volunteer-platform facade under ``/v1/volunteering`` (docs/VOLUNTEERING.md)."""

    enabled: bool = True
    #: Base of the verification URL printed on certificates (default: api.public_url).
    public_url: str | None = None
    # Archiving postings past their deadline is a scheduled job
    # (schedules/facade-archive.yaml); archive_interval is gone (_moved_keys).

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        return _moved_keys("facade", data)

    #: Largest page of the public list.
    max_page_size: int = Field(100, ge=1, le=1000)
    #: Seconds a public list page is served from memory (0: off); this instance's writes
    #: void it at once, other instances' within this time (docs/VOLUNTEERING.md).
    list_cache_seconds: float = Field(2.0, ge=0, le=60)
    #: The list's ``total`` counts up to this many matches (or to the end of the page asked
    #: for), then says ``total_capped`` ("1000+"); 0: always the exact count.
    list_count_cap: int = Field(1000, ge=0)
    #: Attachments of certificates: decoded size limit and accepted media types.
    attachment_max_bytes: int = Field(512 * 1024, gt=0)
    attachment_types: tuple[str, ...] = ("application/pdf", "image/png", "image/jpeg")
    attachments_per_certificate: int = Field(5, ge=0, le=50)
    #: Rows and bytes of one bulk import (CSV or JSON).
    import_max_rows: int = Field(1000, ge=1)
    import_max_bytes: int = Field(1024 * 1024, gt=0)
    #: Small-cell suppression of statistics published beyond the organisation: cells
    #: counting fewer volunteers than this are withheld.
    min_cell: int = Field(5, ge=1)
    #: Prefix of certificate numbers (``BD-2026-000001``).
    certificate_prefix: str = Field("BD", pattern=r"^[A-Z]{1,8}$")
    seal: FacadeSealSettings = FacadeSealSettings()
    auth: FacadeAuthSettings = FacadeAuthSettings()


class LoggingSettings(_Section):
    """Log format and level."""

    environment: Literal["development", "production"] = "development"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class PathSettings(_Section):
    """Where the contracts live."""

    xsd: Path = Path("xsd")
    wsdl: Path = Path("wsdl")
    mappings: Path = Path("mappings")
    keys: Path = Path("var/keys")
    samples: Path = Path("tests/samples")


class Settings(BaseSettings):
    """Everything the gateway needs to start, frozen once loaded."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix="PLUSGW_",
        env_nested_delimiter="__",
        case_sensitive=False,
    )

    instance_name: str = "plus-gateway"
    paths: PathSettings = PathSettings()
    api: ApiSettings = ApiSettings()
    store: StoreSettings = StoreSettings()
    xml: XmlSettings = XmlSettings()
    signing: SigningSettings
    ecase: EcaseSettings = EcaseSettings()
    institutions: dict[str, InstitutionSettings]
    delivery: DeliverySettings = DeliverySettings()
    push: PushSettings = PushSettings()
    simulators: dict[str, SimulatorSettings] = {}
    registries: RegistriesSettings = RegistriesSettings()
    classifiers: ClassifiersSettings = ClassifiersSettings()
    logging: LoggingSettings = LoggingSettings()
    journal: JournalSettings = JournalSettings()
    facade: FacadeSettings = FacadeSettings()
    calendar: CalendarSettings = CalendarSettings()
    jobs: JobsSettings = JobsSettings()
    opendata: OpendataSettings = OpendataSettings()
    retention: RetentionSettings = RetentionSettings()
    eservices: EServicesSettings = EServicesSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then the YAML (passed as init kwargs), then defaults."""
        # The YAML arrives as init kwargs; the environment must win over it.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _institution_names_are_safe(self) -> Settings:
        for name in self.institutions:
            if not _SAFE_INSTITUTION.fullmatch(name):
                raise ValueError(f"institutions.{name}: names are lower-case letters and digits")
            if name == "ecase":
                # /soap/ecase is the platform's endpoint; a direct institution gets /soap/<name>.
                raise ValueError("institutions.ecase: the name is the E-case endpoint's")
        return self

    def ordered_route(self, institution: str, operation: str, message_type: str) -> bool:
        """Whether outbound messages of this route keep per-case order (default: yes)."""
        found = self.institutions.get(institution)
        return found.ordered_for(operation, message_type) if found else True

    def institution(self, name: str) -> InstitutionSettings:
        """Settings of institution ``name``; ConfigError if it is not configured."""
        try:
            return self.institutions[name]
        except KeyError:
            raise ConfigError(f"institutions.{name}: institution is not configured") from None

    def timeouts(self, name: str) -> tuple[float, float]:
        """(connect, operation) timeouts for reaching institution ``name`` on its channel."""
        found = self.institution(name)
        if found.channel == "direct":
            return found.connect_timeout, found.operation_timeout
        return self.ecase.connect_timeout, self.ecase.operation_timeout


def _resolve_paths(value: Any, base: Path) -> Any:
    if isinstance(value, BaseModel):
        updates = {k: _resolve_paths(getattr(value, k), base) for k in type(value).model_fields}
        return value.model_copy(update=updates)
    if isinstance(value, Path):
        return value if value.is_absolute() else (base / value)
    if isinstance(value, tuple):
        return tuple(_resolve_paths(v, base) for v in value)
    if isinstance(value, dict):
        return {k: _resolve_paths(v, base) for k, v in value.items()}
    return value


def _resolve_sqlite_url(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////") and ":memory:" not in url:
        return prefix + str(base / url[len(prefix) :])
    return url


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"{key}: {err['msg']}")
    return "; ".join(lines)


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings from ``path`` (default ``config.yaml`` or ``$PLUSGW_CONFIG``).

    ``overrides`` are merged over the YAML (tests use them); the environment still wins.
    """
    import os

    config_path = Path(path or os.environ.get("PLUSGW_CONFIG", "config.yaml"))
    if not config_path.is_file():
        raise ConfigError(f"config file not found: {config_path}")
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{config_path}: the top level must be a mapping")
    data = deep_merge(data, overrides)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(f"{config_path}: {_format_validation_error(exc)}") from exc
    base = config_path.resolve().parent
    resolved = _resolve_paths(settings, base)
    store = resolved.store.model_copy(update={"url": _resolve_sqlite_url(resolved.store.url, base)})
    return resolved.model_copy(update={"store": store})


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged over it: nested mappings merge, anything else replaces."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
