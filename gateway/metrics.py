"""Prometheus metrics, one registry per app so several apps can live in one process (tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lethe_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "lethe_request_latency_seconds", "HTTP request latency", ["route"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            "lethe_time_to_first_token_seconds", "Time to the first streamed token",
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.generated_tokens = Counter("lethe_generated_tokens", "Completion tokens generated", registry=self.registry)
        self.prompt_tokens = Counter("lethe_prompt_tokens", "Prompt tokens processed", registry=self.registry)
        self.batch_size = Histogram(
            "lethe_batch_size", "Rows per forward pass", buckets=_BATCH_BUCKETS, registry=self.registry
        )
        self.running = Gauge("lethe_running_requests", "Rows in the running batch", registry=self.registry)
        self.waiting = Gauge("lethe_waiting_requests", "Requests waiting to join the batch", registry=self.registry)

    def on_engine_step(self, batch_size: int, new_tokens: int) -> None:
        self.batch_size.observe(batch_size)
        self.generated_tokens.inc(new_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
