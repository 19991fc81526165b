"""Prometheus metrics of one server, named after vLLM's so dashboards carry over.

Each server owns its ``CollectorRegistry`` (not the process-global one), so several
servers (tests, the benchmark's batched and unbatched runs) live in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PREFIX = "codemill"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model_name: str):
        self.registry = CollectorRegistry()
        r, labels = self.registry, ["model_name"]
        self.running = Gauge(
            f"{PREFIX}_num_requests_running", "Requests whose sequences are being decoded.", labels, registry=r
        ).labels(model_name)
        self.waiting = Gauge(
            f"{PREFIX}_num_requests_waiting", "Requests queued for the next batch.", labels, registry=r
        ).labels(model_name)
        self.ttft = Histogram(
            f"{PREFIX}_time_to_first_token_seconds",
            "From request received to its first generated token.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ).labels(model_name)
        self.e2e = Histogram(
            f"{PREFIX}_e2e_request_latency_seconds",
            "From request received to its last generated token.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ).labels(model_name)
        self.prompt_tokens = Counter(
            f"{PREFIX}_prompt_tokens", "Prompt tokens of finished requests.", labels, registry=r
        ).labels(model_name)
        self.generation_tokens = Counter(
            f"{PREFIX}_generation_tokens", "Tokens generated for finished requests.", labels, registry=r
        ).labels(model_name)
        self._success = Counter(
            f"{PREFIX}_request_success", "Finished choices by finish reason.", labels + ["finished_reason"], registry=r
        )
        self._errors = Counter(
            f"{PREFIX}_request_errors",
            "Requests answered with an error, by kind (the OpenAI error code: invalid_type, max_tokens_over_cap, ...).",
            labels + ["kind"],
            registry=r,
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size",
            "Sequences decoded together, per decode step.",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=r,
        ).labels(model_name)
        self.ready = Gauge(
            f"{PREFIX}_model_ready",
            "1 once the model is loaded and a warm-up generation succeeded.",
            labels,
            registry=r,
        ).labels(model_name)
        self.model_name = model_name

    def error(self, kind: str) -> None:
        self._errors.labels(self.model_name, kind).inc()

    def success(self, finish_reason: str) -> None:
        self._success.labels(self.model_name, finish_reason).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
