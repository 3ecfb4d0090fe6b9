"""Prometheus metrics, on a registry per runtime so tests and simulators never collide."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.pipeline.exchange import Exchange

__all__ = ["Metrics"]


#: ``(partner, operation, status, count, oldest age in seconds)`` rows from the store.
OutboxGauges = Callable[[], list[tuple[str, str, str, int, float | None]]]


class _OutboxCollector(Collector):
    """Queue depth and age per partner, operation and status, read from the store at scrape."""

    def __init__(self, gauges: OutboxGauges) -> None:
        self._gauges = gauges

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "plusgw_outbox_messages",
            "Outbox messages by partner, operation and status (dead = dead letters)",
            labels=["partner", "operation", "status"],
        )
        oldest = GaugeMetricFamily(
            "plusgw_outbox_oldest_age_seconds",
            "Age of the oldest message waiting (pending or sending) per partner and operation",
            labels=["partner", "operation"],
        )
        try:
            rows = self._gauges()
        except Exception:
            rows = []
        waiting: dict[tuple[str, str], float] = {}
        for partner, operation, status, n, age in sorted(rows, key=lambda r: r[:3]):
            depth.add_metric([partner, operation, status], n)
            if status in ("pending", "sending") and age is not None:
                key = (partner, operation)
                waiting[key] = max(waiting.get(key, 0.0), age)
        for (partner, operation), age in sorted(waiting.items()):
            oldest.add_metric([partner, operation], age)
        yield depth
        yield oldest


#: The delivery worker's :meth:`~gateway.delivery.DeliveryWorker.health`: ``partners`` (breaker
#: state and waiting messages per partner) and ``pools`` (concurrency and in flight per endpoint).
DeliveryHealth = Callable[[], dict[str, Any]]


class _DeliveryCollector(Collector):
    """Breaker state, waiting messages and pool use of the delivery worker, at scrape time."""

    def __init__(self) -> None:
        self.source: DeliveryHealth | None = None

    def collect(self) -> Iterable[Metric]:
        state = GaugeMetricFamily(
            "plusgw_delivery_breaker_state",
            "Delivery circuit breaker state per partner (1 for the current state)",
            labels=["partner", "state"],
        )
        waiting = GaugeMetricFamily(
            "plusgw_delivery_waiting_messages",
            "Undelivered messages waiting for a partner whose breaker is not closed",
            labels=["partner"],
        )
        concurrency = GaugeMetricFamily(
            "plusgw_delivery_concurrency",
            "Messages a delivery pool sends at once (per endpoint)",
            labels=["pool"],
        )
        in_flight = GaugeMetricFamily(
            "plusgw_delivery_in_flight",
            "Messages a delivery pool holds right now (queued or being sent)",
            labels=["pool"],
        )
        try:
            health = self.source() if self.source else {}
        except Exception:
            health = {}
        for partner, info in sorted(health.get("partners", {}).items()):
            for name in ("closed", "open", "half_open"):
                state.add_metric([partner, name], 1.0 if info["state"] == name else 0.0)
            waiting.add_metric([partner], info.get("waiting", 0))
        for pool, info in sorted(health.get("pools", {}).items()):
            concurrency.add_metric([pool], info["concurrency"])
            in_flight.add_metric([pool], info["in_flight"])
        yield state
        yield waiting
        yield concurrency
        yield in_flight


class Metrics:
    """Counters and histograms of the gateway."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "plusgw_messages_total",
            "Messages through the pipeline",
            ["direction", "partner", "operation", "outcome"],
            registry=self.registry,
        )
        self.pipeline_seconds = Histogram(
            "plusgw_pipeline_seconds",
            "Time spent in a route's steps",
            ["direction", "partner"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.rejections = Counter(
            "plusgw_rejections_total",
            "Messages refused, by stable error code",
            ["direction", "partner", "code"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "plusgw_delivery_attempts_total",
            "Outbound delivery attempts by outcome (delivered, retry, dead; waiting: failed "
            "while the partner's breaker was open, not counted against the message)",
            ["partner", "operation", "outcome"],
            registry=self.registry,
        )
        self.breaker_transitions = Counter(
            "plusgw_delivery_breaker_transitions_total",
            "Delivery circuit breaker changes per partner, by the state entered",
            ["partner", "state"],
            registry=self.registry,
        )
        self.pulled_forward = Counter(
            "plusgw_delivery_pulled_forward_total",
            "Waiting messages made due at once when a partner's breaker closed",
            ["partner"],
            registry=self.registry,
        )
        self._delivery = _DeliveryCollector()
        self.registry.register(self._delivery)
        self.dead_letters = Counter(
            "plusgw_dead_letters_total",
            "Outbound messages given up on (dead letter), by reason code",
            ["partner", "operation", "code"],
            registry=self.registry,
        )
        self.push_age = Histogram(
            "plusgw_push_age_seconds",
            "Age of an inbox message (from receipt) when the PLUS webhook took it; urgent is "
            "true for messages a mapping marks urgent (e.g. monitoring violations)",
            ["message_type", "urgent"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
            registry=self.registry,
        )
        self.pushes = Counter(
            "plusgw_push_attempts_total",
            "Pushes of inbox messages to the PLUS webhook by outcome (delivered, retry, dead)",
            ["outcome"],
            registry=self.registry,
        )

    def watch_delivery(self, health: DeliveryHealth) -> None:
        """Publish the delivery worker's breakers and pools (the latest worker wins)."""
        self._delivery.source = health

    def watch_outbox(self, gauges: OutboxGauges) -> None:
        """Publish outbox depth and oldest age, read lazily from ``gauges`` at scrape time."""
        self.registry.register(_OutboxCollector(gauges))

    def observe(self, exchange: Exchange, seconds: float) -> None:
        """Count one message that crossed its route."""
        outcome = "accepted" if exchange.created else "duplicate"
        self.messages.labels(
            exchange.direction, exchange.partner, exchange.operation or "?", outcome
        ).inc()
        self.pipeline_seconds.labels(exchange.direction, exchange.partner).observe(seconds)

    def rejected(self, direction: str, partner: str, code: str) -> None:
        """Count one refused message."""
        self.rejections.labels(direction, partner, code).inc()
