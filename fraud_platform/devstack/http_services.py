"""The HTTP servers of the local stack beside its stores: the scoring API, and
Prometheus with its Pushgateway (the monitoring ``make monitor`` adds)."""

from __future__ import annotations

import json
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from fraud_platform.devstack.services import METRICS_DIR_VARIABLES, Service

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO_ROOT / "docker" / "prometheus"


def http_ready(port: int, path: str) -> bool:
    """Whether ``http://127.0.0.1:port/path`` answers with a success."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
            return True
    except OSError:
        return False


@dataclass
class ApiService(Service):
    """The scoring API (``inference-pipeline serve``), started by the demo once a model is
    registered; ready when ``/healthz`` answers (``/readyz`` also needs the model)."""

    @property
    def metrics_dir(self) -> Path:
        """The API's own folder of metric files (prometheus_client's multiprocess mode,
        as in compose): ``/metrics`` exports what the API's processes wrote, nothing else."""
        return self.config.run_dir / "api-metrics"

    def prepare(self) -> None:
        """An empty metrics folder: files of an earlier server would be counted again,
        and its model version read as still served."""
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir(parents=True)
        self.env = {**self.env, **dict.fromkeys(METRICS_DIR_VARIABLES, str(self.metrics_dir))}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "inference_pipeline.cli", "serve", "--port", str(self.port)]

    def is_ready(self) -> bool:
        return http_ready(self.port, "/healthz")


@dataclass
class PushgatewayService(Service):
    """The Pushgateway the pipelines push their run metrics to; pushes persist in its data
    folder across restarts."""

    def command(self) -> list[str]:
        return [
            str((self.config.monitoring_bin or Path()) / "pushgateway"),
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--persistence.file={self.data_dir / 'metrics'}",
        ]

    def is_ready(self) -> bool:
        return http_ready(self.port, "/-/ready")


@dataclass
class PrometheusService(Service):
    """Prometheus with the compose stack's own ``prometheus.yml`` and rules (copied,
    unchanged, under the stack's folder); only the target files differ: the local API and
    the local Pushgateway."""

    @property
    def home(self) -> Path:
        return self.config.dir / "prometheus"

    def command(self) -> list[str]:
        return [
            str((self.config.monitoring_bin or Path()) / "prometheus"),
            f"--config.file={self.home / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]

    def is_ready(self) -> bool:
        return http_ready(self.port, "/-/ready")

    def prepare(self) -> None:
        shutil.rmtree(self.home / "rules", ignore_errors=True)
        shutil.copytree(PROMETHEUS_DIR / "rules", self.home / "rules")
        shutil.copy(PROMETHEUS_DIR / "prometheus.yml", self.home / "prometheus.yml")
        targets = self.home / "targets"
        targets.mkdir(parents=True, exist_ok=True)
        for job, port in (
            ("scoring-api", self.config.api_port),
            ("pushgateway", self.config.pushgateway_port),
        ):
            (targets / f"{job}.json").write_text(
                json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"service": job}}])
            )
