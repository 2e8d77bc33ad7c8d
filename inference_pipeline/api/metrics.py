"""Prometheus metrics of the scoring API, in a registry of their own (one per app, so two
apps in one process, as in the tests, do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25,
                   0.5, 1.0)
"""Seconds; dense around the 1 ms (p50) and 3 ms (p99) targets."""


class ApiMetrics:
    """Latency, decisions, errors, batch sizes, feature age and the served model."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "fraud_api_request_seconds", "Time to score a request, from its parsed payload "
            "to its response.", ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.decisions = Counter(
            "fraud_api_decisions_total", "Scored transactions by decision.", ["decision"],
            registry=self.registry)
        self.errors = Counter(
            "fraud_api_errors_total", "Requests not scored, by reason.", ["reason"],
            registry=self.registry)
        self.batch_size = Histogram(
            "fraud_api_batch_transactions", "Transactions per Redis round trip and model "
            "call (concurrent requests share them).", buckets=(1, 2, 4, 8, 16, 32, 64, 128,
                                                               256, 512),
            registry=self.registry)
        self.feature_age = Histogram(
            "fraud_api_feature_age_seconds", "Age of the newest stored feature row at the "
            "transaction's time.", buckets=(60, 300, 900, 1800, 3600, 7200, 21600, 86400,
                                            259200, 604800), registry=self.registry)
        self.model_version = Gauge(
            "fraud_api_model_info", "The served model version (value 1).",
            ["name", "version", "alias"], registry=self.registry)
        self._served: tuple[str, str, str] | None = None

    def set_model(self, labels: tuple[str, str, str] | None) -> None:
        """Mark ``(name, version, alias)`` as the served model (None: no model)."""
        if self._served is not None and self._served != labels:
            self.model_version.remove(*self._served)
        if labels is not None:
            self.model_version.labels(*labels).set(1)
        self._served = labels
