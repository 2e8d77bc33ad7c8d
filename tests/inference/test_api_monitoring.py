"""The scoring API as the local stack starts it (``make demo``), scraped by the stack's
Prometheus: after traffic, the dashboard's served-model panel reads the champion, and
``/metrics`` exports the API's own metrics only. The process that starts the API has
imported Feast, which gave it a folder of metric files that it deletes on exit: an API
that inherited it exported the starter's pipeline gauges, then failed every scrape."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.monitor import panel_queries, query, wait_for_scrape
from fraud_platform.devstack.services import METRICS_DIR_VARIABLES, free_port
from fraud_platform.devstack.stack import LocalStack
from tests.conftest import monitoring_bin
from tests.inference.conftest import API_KEY, ServingWorld
from tests.inference.test_api import last_day_transactions, payload

pytestmark = pytest.mark.integration
MODEL_PANEL = "Served model version"


@pytest.fixture
def parent_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's folder of metric files, holding a pipeline's gauge, as after a
    pipeline ran in the process that starts the API."""
    folder = tmp_path / "parent-metrics"
    folder.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from prometheus_client import Gauge; Gauge('fraud_pipeline_rows', 'Rows.').set(7)",
        ],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)},
        check=True,
    )
    assert list(folder.glob("gauge_*.db"))
    for variable in METRICS_DIR_VARIABLES:
        monkeypatch.setenv(variable, str(folder))
    return folder


@pytest.fixture
def observed_api(
    world: ServingWorld, stack_env: dict[str, str], parent_metrics: Path, tmp_path: Path
) -> Iterator[LocalStack]:
    """The world's API started by a stack of its own, with that stack's Prometheus."""
    stack = LocalStack(
        StackConfig(
            dir=tmp_path / ".local",
            monitoring_bin=monitoring_bin(),
            api_port=free_port(),
            prometheus_port=free_port(),
            pushgateway_port=free_port(),
        )
    )
    try:
        stack.prometheus.start()
        stack.start_api(
            env={
                **stack_env,
                **world.env,
                "FRAUD_API_KEY": API_KEY,
                "FRAUD_MODEL_REFRESH_SECONDS": "1",
            }
        )
        yield stack
    finally:
        stack.down()


def test_the_model_panel_reads_the_champion_and_metrics_are_the_apis_own(
    world: ServingWorld, observed_api: LocalStack, parent_metrics: Path
) -> None:
    url = f"http://127.0.0.1:{observed_api.config.api_port}"
    deadline = time.monotonic() + 90
    while httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the API did not load the champion in 90 s"
        time.sleep(0.5)
    exported = httpx.get(f"{url}/metrics", timeout=5).text
    assert "fraud_api_model_info" in exported
    assert "fraud_pipeline_rows" not in exported

    shutil.rmtree(parent_metrics)  # as Feast does when the process that imported it exits
    row = last_day_transactions(world).iloc[0]
    body = payload(
        "monitoring-1",
        row["card_id"],
        row["merchant_id"],
        float(row["amount"]),
        row["event_timestamp"],
    )
    scored = httpx.post(f"{url}/v1/score", json=body, headers={"X-API-Key": API_KEY}, timeout=10)
    assert scored.status_code == 200, scored.text

    port = observed_api.config.prometheus_port
    assert wait_for_scrape(port, after=time.time())
    assert [s["value"][1] for s in query(port, 'up{job="scoring-api"}')] == ["1"]
    expr = dict(panel_queries())[MODEL_PANEL]
    served = [sample["metric"] for sample in query(port, expr)]
    assert served == [{"name": world.model_name, "version": world.champion, "alias": "champion"}]
