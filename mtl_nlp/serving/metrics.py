"""The server's Prometheus metrics: requests by endpoint and status, request latency, batch sizes and times,
queue length. Each application has its own registry, so that two servers in one process never mix counts."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServeMetrics:
    """The metrics of one server, exposed at ``GET /metrics`` in the Prometheus text format."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queued_texts: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mtl_nlp_requests",
            "HTTP requests answered, by endpoint and status code.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mtl_nlp_request_duration_seconds",
            "Time from a request's arrival to its response, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "mtl_nlp_batch_size_texts",
            "Texts per model batch.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.batch_duration = Histogram(
            "mtl_nlp_batch_duration_seconds",
            "Time to run one model batch (encoding, encoder and heads, decoding).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        queue = Gauge("mtl_nlp_queue_texts", "Texts waiting for a batch.", registry=self.registry)
        queue.set_function(queued_texts)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_batch(self, texts: int, seconds: float) -> None:
        """Record one model batch."""
        self.batch_size.observe(texts)
        self.batch_duration.observe(seconds)

    def render(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)
