"""Pipeline run metrics pushed to a real Pushgateway (the pinned release, built by
scripts/install-prometheus.sh), read back as Prometheus scrapes them."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from fraud_platform.devstack.services import free_port
from fraud_platform.run_metrics import push_failure, reported

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pushgateway() -> str:
    built = subprocess.run(
        [str(REPO_ROOT / "scripts" / "install-prometheus.sh"), "pushgateway"],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode == 3:
        pytest.skip(built.stderr.strip())
    assert built.returncode == 0, built.stderr
    port = free_port()
    process = subprocess.Popen(
        [f"{built.stdout.strip()}/pushgateway", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the Pushgateway did not start"
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(10)


def _scraped(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        return [line for line in response.read().decode().splitlines() if line.startswith("fraud_")]


def test_a_step_pushes_duration_counts_and_times_grouped_by_job_and_step(
    pushgateway: str, monkeypatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_PUSHGATEWAY_URL", pushgateway)
    before = time.time()
    result = reported(
        "feature_pipeline",
        "ingest",
        lambda: {"read": 100, "quarantined": 3},
        counts=lambda r: [("transactions", k, v) for k, v in r.items()],
    )
    assert result == {"read": 100, "quarantined": 3}
    push_failure("feature_pipeline", "compute")
    lines = _scraped(pushgateway)
    group = 'instance="",job="feature_pipeline",step="ingest"'
    rows = {_sorted_labels(line) for line in lines}
    assert (
        _sorted_labels(f'fraud_pipeline_rows{{{group},kind="quarantined",table="transactions"}} 3')
        in rows
    )
    assert (
        _sorted_labels(f'fraud_pipeline_rows{{{group},kind="read",table="transactions"}} 100')
        in rows
    )
    [success] = [
        line for line in lines if line.startswith("fraud_pipeline_last_success_timestamp_seconds")
    ]
    assert before <= float(success.split()[-1]) <= time.time()
    assert any(line.startswith("fraud_pipeline_duration_seconds{" + group) for line in lines)
    assert any(
        line.startswith(
            'fraud_pipeline_last_failure_timestamp_seconds{instance="",'
            'job="feature_pipeline",step="compute"}'
        )
        for line in lines
    )

    # A later success of the step keeps its failure time (pushadd replaces only the
    # metrics it sends): the alert compares the two.
    push_failure("feature_pipeline", "ingest")
    reported("feature_pipeline", "ingest", lambda: {})
    names = {line.split("{")[0] for line in _scraped(pushgateway) if group in line}
    assert {
        "fraud_pipeline_last_failure_timestamp_seconds",
        "fraud_pipeline_last_success_timestamp_seconds",
    } <= names


def test_an_unreachable_pushgateway_never_fails_the_run(monkeypatch) -> None:
    monkeypatch.setenv("PROMETHEUS_PUSHGATEWAY_URL", f"http://127.0.0.1:{free_port()}")
    assert reported("materialize_online", "materialize_incremental", lambda: 7) == 7


def _sorted_labels(line: str) -> str:
    """A sample line with its labels in name order: the exposition's order is not part of
    the format."""
    name, _, rest = line.partition("{")
    labels, _, value = rest.partition("}")
    return f"{name}{{{','.join(sorted(labels.split(',')))}}}{value}"
