"""Static checks of the monitoring stack: the Grafana dashboard, Prometheus's config and
rules, and their wiring in compose. No Grafana is run here (its code is AGPL and stays in
its published image): the dashboard JSON is validated against what the code exports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from fraud_platform import run_metrics
from inference_pipeline.api.metrics import ApiMetrics

pytestmark = pytest.mark.static

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER = REPO_ROOT / "docker"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "fraud-feature-store.json"
PROMETHEUS = DOCKER / "prometheus"
RULES = PROMETHEUS / "rules" / "fraud.rules.yml"

_METRIC = re.compile(r"\b(fraud[:_][a-z0-9_:]+|ALERTS)\b")
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")
# Drift metrics are pushed by the drift report (inference_pipeline.drift).
DRIFT_METRICS = {
    "fraud_drift_share_drifted_features",
    "fraud_drift_missing_share",
    "fraud_drift_score_psi",
}


def _api_metric_names() -> set[str]:
    return {metric.name for metric in ApiMetrics().registry.collect()}


def _pushed_metric_names() -> set[str]:
    source = Path(run_metrics.__file__).read_text()
    return set(re.findall(r'Gauge\(\s*"([a-z_]+)"', source))


def _recorded_names() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def _base(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_is_a_provisionable_grafana_dashboard(dashboard: dict) -> None:
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs))
    provider = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/fraud.yml").read_text())
    source = yaml.safe_load(
        (DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert source["datasources"][0]["uid"] == "prometheus"


def test_dashboard_shows_what_the_issue_asks_for(dashboard: dict) -> None:
    titles = " | ".join(panel["title"].lower() for panel in dashboard["panels"])
    for wanted in (
        "latency p50 / p99",
        "requests",
        "errors by reason",
        "decisions",
        "model version",
        "feature age",
        "freshness per feature view",
        "run durations",
        "pipeline rows",
        "quarantine",
    ):
        assert wanted in titles, wanted


def test_every_query_reads_metrics_that_something_exports(dashboard: dict) -> None:
    known = (
        _api_metric_names()
        | _pushed_metric_names()
        | _recorded_names()
        | DRIFT_METRICS
        | {"ALERTS"}
    )
    assert {"fraud_api_request_seconds", "fraud_pipeline_rows"} <= known
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = {_base(name) for name in _METRIC.findall(target["expr"])}
            assert used, target["expr"]
            assert used <= known, f"{panel['title']}: unknown {used - known}"
            assert target["expr"].count("(") == target["expr"].count(")")


def test_alert_rules_read_exported_metrics_and_cover_the_issue() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    known = _api_metric_names() | _pushed_metric_names() | _recorded_names()
    alerts = set()
    for group in groups:
        for rule in group["rules"]:
            used = {_base(name) for name in _METRIC.findall(rule["expr"])}
            assert used <= known, f"{rule.get('alert') or rule.get('record')}: {used - known}"
            if "alert" in rule:
                alerts.add(rule["alert"])
                assert rule["annotations"]["summary"]
    assert alerts >= {
        "FraudApiErrorRateHigh",
        "FraudApiP99OverBudget",
        "FraudFeatureAgeOverBound",
        "FraudPipelineFailed",
        "FraudFeaturePipelineLate",
        "FraudMaterializationLate",
        "FraudQuarantineRateJump",
    }


def test_compose_runs_the_same_prometheus_config_and_pinned_images() -> None:
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("prometheus", "pushgateway", "grafana"):
        image = services[name]["image"]
        assert re.search(r":v?\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$", image), (
            f"{name} image not pinned: {image}"
        )
        assert "build" not in services[name], f"{name} must run its published image"
    assert "./prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules/*.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["pushgateway"]["honor_labels"] is True
    for job in ("scoring-api", "pushgateway"):
        [sd] = jobs[job]["file_sd_configs"]
        for path in sd["files"]:
            assert (PROMETHEUS / path).is_file(), path
    assert services["airflow-scheduler"]["environment"]["PROMETHEUS_PUSHGATEWAY_URL"]
    assert services["scoring-api"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
