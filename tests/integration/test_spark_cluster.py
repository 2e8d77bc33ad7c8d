"""The feature pipeline on a Spark standalone cluster: a master and two workers started as
processes from the pinned pyspark, not local mode.

The same day is generated under two S3 prefixes; ``feature-pipeline run`` with
``SPARK_MASTER`` pointing at the cluster processes one while the local-mode session ingests
and computes the other. The switch is configuration only, and the published tables must
hold the same rows.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from feature_pipeline import pipeline
from fraud_platform.devstack.services import free_port
from tests.conftest import REPO_ROOT
from tests.faults.tables import digests, gzipped, put_landing, transactions

pytestmark = pytest.mark.integration

DAY = date(2026, 5, 1)
WORKERS = 2
PLANTED = 100


class Cluster:
    """A standalone master and its workers, each a process group of this test."""

    def __init__(self, folder: Path) -> None:
        import pyspark

        self.folder = folder
        self.spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
        self.port, self.ui_port = free_port(), free_port()
        self.worker_ui_ports = [free_port() for _ in range(WORKERS)]
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "SPARK_HOME": str(self.spark_class.parents[1]),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOCAL_DIRS": str(folder / "local"),
            # Executors' Python workers import the feature windows' kernels from here.
            "PYTHONPATH": str(REPO_ROOT),
        }

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def start(self, name: str, *args: str) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                [str(self.spark_class), *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def state(self, ui_port: int | None = None) -> dict[str, Any]:
        """The master's view (its web UI's JSON): workers, running and finished apps; or a
        worker's (``ui_port``): its executors."""
        url = f"http://127.0.0.1:{ui_port or self.ui_port}/json/"
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.load(response))

    def stop(self) -> None:
        """Workers first (they take their executors down), then the master."""
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
            for log in sorted(self.folder.glob("*.log"))
        )


def _wait(check: Callable[[], bool], what: str, cluster: Cluster, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"{what} not within {timeout} s\n{cluster.logs()}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("spark-cluster")
    cluster = Cluster(folder)
    try:
        cluster.start(
            "master",
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(cluster.port)),
            *("--webui-port", str(cluster.ui_port)),
        )
        _wait(lambda: cluster.state()["status"] == "ALIVE", "master", cluster)
        for n, ui_port in enumerate(cluster.worker_ui_ports):
            cluster.start(
                f"worker-{n}",
                "org.apache.spark.deploy.worker.Worker",
                *("--host", "127.0.0.1", "--cores", "1", "--memory", "1g"),
                *("--webui-port", str(ui_port), "--work-dir", str(folder / f"work-{n}")),
                cluster.url,
            )
        _wait(lambda: cluster.state()["aliveworkers"] == WORKERS, "workers", cluster)
        yield cluster
    finally:
        cluster.stop()
        # Each executor's copy of the s3a jars (about 650 MB).
        for work in folder.glob("work-*"):
            shutil.rmtree(work, ignore_errors=True)


def _land(monkeypatch: pytest.MonkeyPatch, prefix: str) -> int:
    """DAY's generated feeds landed under ``prefix``, with a file of transactions a tenth
    of which are bad, so that the quarantine runs too; returns the transactions landed."""
    monkeypatch.setenv("FRAUD_S3_PREFIX", prefix)
    generated = pipeline.generate(DAY, 1, n_cards=300, n_merchants=200, n_transactions=2_000)
    planted, _ = transactions(DAY, PLANTED, bad_share=0.1, seed=3)
    put_landing(DAY, "part-planted.jsonl.gz", gzipped(planted))
    return int(generated["rows_written"]["transactions"]) + PLANTED


def _start_on(cluster: Cluster, log: Path) -> subprocess.Popen[bytes]:
    """``feature-pipeline run`` of DAY as its own driver process, on the cluster, for the
    data below the current ``FRAUD_S3_PREFIX``."""
    env = {
        **os.environ,
        "SPARK_MASTER": cluster.url,
        "SPARK_EXECUTOR_MEMORY": "1g",
        "SPARK_EXECUTOR_CORES": "1",
        "SPARK_DRIVER_MEMORY": "1g",
        # The executors' Python: this interpreter, with the project's packages.
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": str(REPO_ROOT),
    }
    command = [str(Path(sys.executable).parent / "feature-pipeline"), "run"]
    return subprocess.Popen(
        [*command, "--start", str(DAY), "--end", str(DAY)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
    )


def _result(driver: subprocess.Popen[bytes], cluster: Cluster, log: Path) -> dict[str, Any]:
    """The run's JSON, once the driver has finished."""
    try:
        stdout, _ = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=30)
    failure = log.read_text(errors="replace")[-4000:] + cluster.logs()
    assert driver.returncode == 0, failure
    return dict(json.loads(stdout))


def _counts(result: dict[str, Any]) -> dict[str, Any]:
    """What a run reports that does not depend on when or where it ran."""
    feeds = result["ingest"]["feeds"]
    return {
        "ingest": {
            name: {k: feed[k] for k in ("read", "bronze", "quarantined", "duplicates")}
            for name, feed in feeds.items()
        },
        "compute": result["compute"]["rows"],
    }


def test_feature_pipeline_on_a_standalone_cluster_publishes_what_local_mode_does(
    cluster: Cluster, spark, stack_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    base = os.environ["FRAUD_S3_PREFIX"]
    landed = _land(monkeypatch, f"{base}/cluster")
    # The cluster's run and the local one side by side: most of each is waiting.
    driver = _start_on(cluster, tmp_path / "driver.log")

    assert _land(monkeypatch, f"{base}/local") == landed
    local = {
        "ingest": pipeline.ingest(DAY, DAY, spark=spark),
        "compute": pipeline.compute(DAY, DAY, spark=spark),
    }
    local_digests = digests(spark, DAY)

    on_cluster = _result(driver, cluster, tmp_path / "driver.log")
    monkeypatch.setenv("FRAUD_S3_PREFIX", f"{base}/cluster")
    cluster_digests = digests(spark, DAY)

    assert _counts(on_cluster) == _counts(local)
    counted = _counts(local)["ingest"]["transactions"]
    assert counted["read"] == landed
    assert counted["quarantined"] > 0
    assert counted["read"] == counted["bronze"] + counted["quarantined"] + counted["duplicates"]
    assert cluster_digests == local_digests
    assert "no data file" not in cluster_digests.values()
    # It ran on the cluster, with an executor on each worker.
    apps = [a for a in cluster.state()["completedapps"] if a["name"] == "feature-pipeline"]
    assert len(apps) == 1, cluster.state()
    for ui_port in cluster.worker_ui_ports:
        worker = cluster.state(ui_port)
        assert [e["appid"] for e in worker["finishedexecutors"]] == [apps[0]["id"]], worker
