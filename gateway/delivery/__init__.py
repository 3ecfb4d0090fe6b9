"""Outbound delivery: the outbox worker and its retry schedule."""

from gateway.delivery.backoff import backoff_delay, next_attempt
from gateway.delivery.worker import DeliveryWorker

__all__ = ["DeliveryWorker", "backoff_delay", "next_attempt"]
