"""Registry queries as a service: clients, breakers, cache, audit and the profile fan-out.

Built once at start (:meth:`RegistryService.from_settings`); the API calls :meth:`query` and
:meth:`profile`. A query is: breaker check -> (cache) -> registry client -> breaker outcome ->
audit row -> answer. The audit row is written before anything is returned: no audit, no data.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import requests
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.config import Settings
from gateway.errors import GatewayError, PartnerRejectedError
from gateway.mapping import MappingRegistry
from gateway.registries.breaker import STATES, CircuitBreaker
from gateway.registries.cache import TTLCache
from gateway.registries.client import Answer, QueryContext, RegistryClient
from gateway.registries.contract import REGISTRIES
from gateway.registries.errors import (
    RegistryCircuitOpenError,
    RegistryNotConfiguredError,
    RegistryRejectedError,
    query_status,
)
from gateway.registries.header import parse_identifier
from gateway.signing import TrustStore
from gateway.soap.client import PartnerClient, pooled_session
from gateway.store import Store
from gateway.store.audit import AuditEntry, AuditLog
from gateway.xml import SchemaRegistry, XmlLimits

__all__ = ["Outcome", "RegistryService"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    """A query's result: an answer, or the error that stopped it."""

    registry: str
    answer: Answer | None = None
    error: GatewayError | None = None

    @property
    def status(self) -> str:
        """ok, not_found, timeout, unavailable or error."""
        if self.answer is not None:
            return self.answer.status
        assert self.error is not None
        return query_status(self.error)


class _BreakerCollector(Collector):
    def __init__(self, breakers: dict[str, CircuitBreaker]) -> None:
        self._breakers = breakers

    def collect(self) -> Iterable[Metric]:
        state = GaugeMetricFamily(
            "plusgw_registry_breaker_state",
            "Circuit breaker state per registry (1 for the current state)",
            labels=["registry", "state"],
        )
        failures = GaugeMetricFamily(
            "plusgw_registry_breaker_failures",
            "Consecutive failures counted by the registry's breaker",
            labels=["registry"],
        )
        for name, breaker in sorted(self._breakers.items()):
            snap = breaker.snapshot()
            for s in STATES:
                state.add_metric([name, s], 1.0 if snap["state"] == s else 0.0)
            failures.add_metric([name], snap["consecutive_failures"])
        yield state
        yield failures


class RegistryService:
    """The four registries, each with its client and breaker; one shared executor."""

    def __init__(
        self,
        clients: dict[str, RegistryClient],
        *,
        audit: AuditLog,
        breakers: dict[str, CircuitBreaker],
        cache: TTLCache[tuple[str, str], Answer],
        max_workers: int = 16,
        metrics_registry: CollectorRegistry | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.clients = clients
        self.audit = audit
        self.breakers = breakers
        self.cache = cache
        self._session = session
        # One pool per registry (a bulkhead): queries to a registry that hangs until its
        # timeout can only fill that registry's threads. With one shared pool, 32 officers'
        # profiles filled every thread with the slow registry's queries while its breaker was
        # still closed, and the other three registries' queries queued behind them for seconds.
        self._executors = {
            name: ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"registry-{name}")
            for name in (breakers or dict.fromkeys(REGISTRIES))
        }
        registry = metrics_registry or CollectorRegistry()
        registry.register(_BreakerCollector(breakers))
        self.queries = Counter(
            "plusgw_registry_queries_total",
            "Registry queries by registry and status",
            ["registry", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "plusgw_registry_query_seconds",
            "Registry query latency (network and verification)",
            ["registry"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        )

    @property
    def enabled(self) -> bool:
        """True when the registries are configured."""
        return bool(self.clients)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        schemas: SchemaRegistry,
        mappings: MappingRegistry,
        limits: XmlLimits,
        store: Store,
        metrics_registry: CollectorRegistry | None = None,
    ) -> RegistryService:
        """Load WSDL, trust and mappings once; a disabled config gives a service with no clients."""
        cfg = settings.registries
        breakers = {
            name: CircuitBreaker(
                name,
                failure_threshold=cfg.breaker.failure_threshold,
                reset_timeout=cfg.breaker.reset_timeout,
            )
            for name in cfg.registries
        }
        cache: TTLCache[tuple[str, str], Answer] = TTLCache(cfg.cache_ttl, cfg.cache_max_entries)
        audit = store.audit
        if not cfg.enabled or cfg.trust is None:
            return cls({}, audit=audit, breakers={}, cache=cache, metrics_registry=metrics_registry)
        trust = TrustStore.from_files(
            list(cfg.trust.certificates),
            cfg.trust.ca,
            max_certificates=settings.xml.max_certificates,
            accept_legacy_uri=settings.signing.accept_legacy_uri,
        )
        client_id = parse_identifier(cfg.client_id, service=False, key="registries.client_id")
        session = pooled_session(cfg.max_workers)
        clients: dict[str, RegistryClient] = {}
        for name, reg in cfg.registries.items():
            contract = REGISTRIES[name]
            partner = PartnerClient(
                partner=name,
                wsdl=cfg.wsdl,
                service=contract.service,
                port=contract.port,
                endpoint=f"{cfg.endpoint.rstrip('/')}/{name}",
                connect_timeout=reg.connect_timeout,
                operation_timeout=reg.read_timeout,
                session=session,
            )
            clients[name] = RegistryClient(
                contract,
                partner=partner,
                trust=trust,
                schemas=schemas,
                mapping=mappings.get(contract.message_type),
                limits=limits,
                client_id=client_id,
                service_id=parse_identifier(
                    reg.service_id, service=True, key=f"registries.registries.{name}.service_id"
                ),
                protocol_version=cfg.protocol_version,
                legal_basis=cfg.legal_basis,
            )
        return cls(
            clients,
            audit=audit,
            breakers=breakers,
            cache=cache,
            max_workers=cfg.max_workers,
            metrics_registry=metrics_registry,
            session=session,
        )

    # -- queries -------------------------------------------------------------------------

    def _ask(
        self, registry: str, personal_code: str, ctx: QueryContext
    ) -> tuple[Outcome, AuditEntry]:
        started = time.perf_counter()
        client = self.clients.get(registry)
        query_id = ""
        outcome: Outcome
        if client is None:
            outcome = Outcome(
                registry,
                error=RegistryNotConfiguredError(
                    f"registry {registry} is not configured", partner=registry
                ),
            )
        elif (cached := self.cache.get((registry, personal_code))) is not None:
            outcome = Outcome(registry, answer=replace(cached, cached=True))
        else:
            breaker = self.breakers[registry]
            if not breaker.allow():
                outcome = Outcome(
                    registry,
                    error=RegistryCircuitOpenError(
                        f"registry {registry} is unavailable (circuit open, next trial in "
                        f"{breaker.retry_after():.0f} s)",
                        partner=registry,
                    ),
                )
            else:
                query_id = f"PLUS-{_uuid()}"
                outcome = self._call(client, breaker, personal_code, ctx, query_id)
        elapsed = time.perf_counter() - started
        answer, error = outcome.answer, outcome.error
        entry = AuditEntry(
            registry=registry,
            officer_id=ctx.officer_id,
            purpose=ctx.purpose,
            case_id=ctx.case_id,
            personal_code=personal_code,
            query_id=answer.query_id if answer else (query_id or "-"),
            status=outcome.status,
            response_id=answer.response_id if answer else None,
            error_code=error.code if error else None,
            answer_sha256=answer.sha256 if answer else None,
            cached=bool(answer and answer.cached),
            duration_ms=round(elapsed * 1000),
        )
        self.queries.labels(registry, outcome.status).inc()
        if answer is not None and not answer.cached:
            self.seconds.labels(registry).observe(elapsed)
        if error is not None:
            log.warning(
                "registry query failed",
                registry=registry,
                code=error.code,
                query_id=entry.query_id,
                error=error.message,
            )
        return outcome, entry

    def _call(
        self,
        client: RegistryClient,
        breaker: CircuitBreaker,
        personal_code: str,
        ctx: QueryContext,
        query_id: str,
    ) -> Outcome:
        try:
            answer = client.query(personal_code, ctx, query_id)
        except RegistryRejectedError as exc:
            # The registry is up and refused *our* request: not a reason to open the circuit.
            breaker.record_success()
            return Outcome(client.name, error=exc)
        except GatewayError as exc:
            if isinstance(exc, PartnerRejectedError) or exc.retryable:
                breaker.record_failure()
            else:
                breaker.release()  # failed before reaching the registry
            return Outcome(client.name, error=exc)
        except Exception:
            breaker.record_failure()
            raise
        breaker.record_success()
        self.cache.put((client.name, personal_code), answer)
        return Outcome(client.name, answer=answer)

    def query(self, registry: str, personal_code: str, ctx: QueryContext) -> Outcome:
        """Ask one registry; the query is audited before the outcome is returned."""
        outcome, entry = self._ask(registry, personal_code, ctx)
        self.audit.record([entry])
        return outcome

    def profile(self, personal_code: str, ctx: QueryContext) -> dict[str, Outcome]:
        """Ask every registry in parallel; each outcome stands alone (one never hides another)."""
        names = list(self.breakers) or list(REGISTRIES)
        futures = {
            n: self._executors[n].submit(self._ask, n, personal_code, ctx)
            if n in self._executors
            else _done(self._ask(n, personal_code, ctx))
            for n in names
        }
        results = {n: f.result() for n, f in futures.items()}
        self.audit.record([entry for _, entry in results.values()])
        return {n: outcome for n, (outcome, _) in results.items()}

    # -- operations ----------------------------------------------------------------------

    def breaker_states(self) -> dict[str, Any]:
        """Breaker state per registry, for /ready."""
        if not self.enabled:
            return {"enabled": False}
        return {name: b.snapshot() for name, b in sorted(self.breakers.items())}

    def close(self) -> None:
        """Stop the executor and release connections."""
        for executor in self._executors.values():
            executor.shutdown(wait=False, cancel_futures=True)
        if self._session is not None:
            self._session.close()


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def _uuid() -> str:
    import uuid

    return uuid.uuid4().hex
