"""The API's labelled series exist at zero before the first request, so that Prometheus's
rate() sees the first requests as an increase (a series born at its first increment reads
as flat)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from inference_pipeline.api.metrics import ApiMetrics


def test_every_labelled_counter_starts_at_zero(monkeypatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)  # one process's registry
    families = {
        family.name: family
        for family in text_string_to_metric_families(ApiMetrics().exposition().decode())
    }
    decisions = {
        s.labels["decision"]: s.value
        for s in families["fraud_api_decisions"].samples
        if s.name.endswith("_total")
    }
    assert decisions == {"approve": 0.0, "review": 0.0, "decline": 0.0}
    errors = {
        s.labels["reason"]
        for s in families["fraud_api_errors"].samples
        if s.name.endswith("_total")
    }
    assert {"unauthorized", "invalid_request", "redis_unavailable", "overloaded"} <= errors
    counts = {
        s.labels["endpoint"]: s.value
        for s in families["fraud_api_request_seconds"].samples
        if s.name.endswith("_count")
    }
    assert counts == {"score": 0.0, "score_batch": 0.0}
