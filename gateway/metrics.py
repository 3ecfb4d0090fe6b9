"""Prometheus metrics, on a registry per runtime so tests and simulators never collide."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.pipeline.exchange import Exchange

__all__ = ["Metrics"]


class _OutboxCollector(Collector):
    """Queue depth per partner and status, read from the store at scrape time."""

    def __init__(self, counts: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "plusgw_outbox_messages",
            "Outbox messages by partner and status",
            labels=["partner", "status"],
        )
        try:
            counts = self._counts()
        except Exception:  # noqa: BLE001 - a scrape must not fail because the store is down
            counts = {}
        for (partner, status), n in sorted(counts.items()):
            family.add_metric([partner, status], n)
        yield family


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
            "Outbound delivery attempts by outcome (delivered, retry, dead)",
            ["partner", "operation", "outcome"],
            registry=self.registry,
        )

    def watch_outbox(self, counts: Callable[[], dict[tuple[str, str], int]]) -> None:
        """Publish outbox depth, read lazily from ``counts`` at scrape time."""
        self.registry.register(_OutboxCollector(counts))

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
