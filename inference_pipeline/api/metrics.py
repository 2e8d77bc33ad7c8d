"""Prometheus metrics of the scoring API, in a registry of their own (one per app, so two
apps in one process, as in the tests, do not collide).

With several workers (``inference-pipeline serve --workers N``) each process writes its
samples to files under ``PROMETHEUS_MULTIPROC_DIR``, and ``/metrics`` merges them
(prometheus_client's multiprocess mode): one scrape sees the whole server.
"""

from __future__ import annotations

import os
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from fraud_platform.decision import Decision

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
"""Seconds; dense around the 1 ms (p50) and 3 ms (p99) targets."""
ENDPOINTS = ("score", "score_batch")
ERROR_REASONS = (
    "unauthorized",
    "invalid_request",
    "body_too_large",
    "redis_unavailable",
    "model_unavailable",
    "overloaded",
)


class ApiMetrics:
    """Latency, decisions, errors, batch sizes, feature age and the served model."""

    def __init__(self) -> None:
        # Decided now, before the app opens the Feast store: Feast sets
        # PROMETHEUS_MULTIPROC_DIR for its own metrics when it loads.
        self._multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "fraud_api_request_seconds",
            "Time to score a request, from its parsed payload to its response.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "fraud_api_decisions_total",
            "Scored transactions by decision.",
            ["decision"],
            registry=self.registry,
        )
        self.errors = Counter(
            "fraud_api_errors_total",
            "Requests not scored, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "fraud_api_batch_transactions",
            "Transactions per Redis round trip and model call (concurrent requests share them).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.feature_age = Histogram(
            "fraud_api_feature_age_seconds",
            "Age of the newest stored feature row at the transaction's time.",
            buckets=(60, 300, 900, 1800, 3600, 7200, 21600, 86400, 259200, 604800),
            registry=self.registry,
        )
        # "livemax": across workers, a version is served (1) if a live worker serves it.
        self.model_version = Gauge(
            "fraud_api_model_info",
            "The served model version (value 1).",
            ["name", "version", "alias"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self._served: tuple[str, str, str] | None = None
        # Every labelled series exists at 0 from the start (Prometheus's advice for
        # counters): otherwise a series appears with its first increment, and rate() over
        # its first samples reads 0 however much traffic came.
        for endpoint in ENDPOINTS:
            self.latency.labels(endpoint)
        for decision in get_args(Decision):
            self.decisions.labels(decision)
        for reason in ERROR_REASONS:
            self.errors.labels(reason)

    def exposition(self) -> bytes:
        """The text exposition of ``/metrics``: this process's registry, or every
        worker's samples merged in multiprocess mode."""
        if not self._multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)

    def set_model(self, labels: tuple[str, str, str] | None) -> None:
        """Mark ``(name, version, alias)`` as the served model (None: no model)."""
        if self._served is not None and self._served != labels:
            # Zeroed before it is removed: in multiprocess mode the sample lives on in
            # this worker's file, and must not read as still served.
            self.model_version.labels(*self._served).set(0)
            self.model_version.remove(*self._served)
        if labels is not None:
            self.model_version.labels(*labels).set(1)
        self._served = labels
