"""The local stack's monitoring: with ``monitoring_bin`` set, Prometheus and the
Pushgateway start as services of the stack, the pipelines' environment points at the
Pushgateway, and a run's pushed metrics come back from Prometheus through the compose
stack's own config. Needs the executables ``make monitor`` builds (skipped otherwise)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.monitor import query, wait_for_scrape
from fraud_platform.devstack.services import free_port
from fraud_platform.devstack.stack import LocalStack
from fraud_platform.run_metrics import reported
from tests.conftest import monitoring_bin

pytestmark = pytest.mark.integration


@pytest.fixture
def monitored(tmp_path: Path):
    config = StackConfig(
        dir=tmp_path / ".local",
        monitoring_bin=monitoring_bin(),
        prometheus_port=free_port(),
        pushgateway_port=free_port(),
        api_port=free_port(),
    )
    stack = LocalStack(config)
    for service in stack.monitoring:
        service.start()
    yield stack
    assert set(stack.down()) == {"prometheus", "pushgateway"}
    assert all(service.pid() is None for service in stack.monitoring)


def test_a_pushed_run_is_scraped_by_the_stacks_prometheus(monitored: LocalStack, monkeypatch):
    env = monitored.environment()
    url = f"http://127.0.0.1:{monitored.config.pushgateway_port}"
    assert env["PROMETHEUS_PUSHGATEWAY_URL"] == url
    monkeypatch.setenv("PROMETHEUS_PUSHGATEWAY_URL", url)
    reported("monitoring_probe", "step", lambda: 7, counts=lambda n: [("probe", "rows", n)])

    port = monitored.config.prometheus_port
    before = time.time()
    assert wait_for_scrape(port, after=before)  # a scrape of the API's target after `before`
    scraped = query(port, 'timestamp(up{job="scoring-api"})')
    assert float(scraped[0]["value"][1]) > before
    expr = 'fraud_pipeline_rows{job="monitoring_probe",step="step",table="probe"}'
    deadline = time.monotonic() + 60  # the config scrapes every 15 s
    while not (samples := query(port, expr)) and time.monotonic() < deadline:
        time.sleep(1)
    assert [float(s["value"][1]) for s in samples] == [7.0]
    targets = {s["metric"]["job"]: s["metric"]["instance"] for s in query(port, "up")}
    assert targets == {
        "pushgateway": f"127.0.0.1:{monitored.config.pushgateway_port}",
        "scoring-api": f"127.0.0.1:{monitored.config.api_port}",
    }


def test_without_monitoring_nothing_points_at_a_pushgateway(tmp_path: Path) -> None:
    stack = LocalStack(StackConfig(dir=tmp_path / ".local"))
    assert "PROMETHEUS_PUSHGATEWAY_URL" not in stack.environment()
    assert stack.monitoring[0] not in stack.services
