"""The local stack as a whole: which services, in which order, and the environment file."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from fraud_platform.devstack.config import StackConfig, load_or_create_secrets
from fraud_platform.devstack.http_services import (
    ApiService,
    PrometheusService,
    PushgatewayService,
)
from fraud_platform.devstack.services import (
    MinioService,
    RedisService,
    SeaweedService,
    Service,
)

log = logging.getLogger(__name__)


@dataclass
class LocalStack:
    """Redis and an S3 server for the pipelines, as processes of this machine.

    The metadata stores of Airflow, MLflow and the Feast registry are SQLite files under the
    same folder locally (see the README); the compose and AWS stacks use PostgreSQL.
    """

    config: StackConfig

    def __post_init__(self) -> None:
        self.secrets = load_or_create_secrets(self.config.secrets_file)
        s3_class = MinioService if self.config.s3_server == "minio" else SeaweedService
        self.s3 = s3_class(
            name="s3",
            port=self.config.s3_port,
            config=self.config,
            process_name="minio" if s3_class is MinioService else "weed",
            access_key=self.secrets["S3_ACCESS_KEY"],
            secret_key=self.secrets["S3_SECRET_KEY"],
        )
        self.redis = RedisService(
            name="redis",
            port=self.config.redis_port,
            config=self.config,
            process_name="redis-server",
            password=self.secrets["REDIS_PASSWORD"],
        )
        self.api = ApiService(
            name="api",
            port=self.config.api_port,
            config=self.config,
            process_name="python",
        )
        self.pushgateway = PushgatewayService(
            name="pushgateway",
            port=self.config.pushgateway_port,
            config=self.config,
            process_name="pushgateway",
        )
        self.prometheus = PrometheusService(
            name="prometheus",
            port=self.config.prometheus_port,
            config=self.config,
            process_name="prometheus",
        )

    @property
    def monitoring(self) -> list[Service]:
        """Prometheus and its Pushgateway: started with the stack when their executables
        are configured (``monitoring_bin``), stopped with it always."""
        return [self.pushgateway, self.prometheus]

    @property
    def services(self) -> list[Service]:
        """What ``up`` starts: the stores the pipelines need, and the monitoring if
        configured."""
        return [self.redis, self.s3, *(self.monitoring if self.config.monitoring_bin else [])]

    def start_api(self, timeout: float = 120.0, env: dict[str, str] | None = None) -> None:
        """(Re)start the scoring API with the stack's environment (plus ``env``), so that
        it runs the current code and configuration."""
        self.api.stop()
        self.api.env = {**self.environment(), **(env or {})}
        self.api.start(timeout)

    def up(self) -> dict[str, float]:
        """Start every service not yet running and write the environment file.

        Returns:
            Seconds each service took to become ready (0 for one already running).
        """
        timings: dict[str, float] = {}
        for service in self.services:
            started = time.perf_counter()
            fresh = service.start()
            timings[service.name] = round(time.perf_counter() - started, 2) if fresh else 0.0
            log.info(
                "%s %s on 127.0.0.1:%d",
                service.name,
                "started" if fresh else "running",
                service.port,
            )
        self.write_env_file()
        return timings

    def down(self) -> list[str]:
        """Stop the API and what ``up`` started, in reverse order; returns the names
        stopped."""
        everything = [self.redis, self.s3, *self.monitoring]
        return [s.name for s in [self.api, *reversed(everything)] if s.stop()]

    def environment(self) -> dict[str, str]:
        """The variables that point the pipelines at this stack."""
        endpoint = f"http://127.0.0.1:{self.config.s3_port}"
        state = self.config.dir.resolve()
        project = state.parent
        monitored = (
            {"PROMETHEUS_PUSHGATEWAY_URL": f"http://127.0.0.1:{self.config.pushgateway_port}"}
            if self.config.monitoring_bin
            else {}
        )
        return {
            **monitored,
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": self.secrets["S3_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": self.secrets["S3_SECRET_KEY"],
            "AWS_REGION": "us-east-1",
            "FRAUD_S3_BUCKET": self.config.bucket,
            "S3_HEALTHCHECK_PATH": self.s3.health_path,
            "REDIS_CONNECTION_STRING": (
                f"127.0.0.1:{self.config.redis_port},password={self.secrets['REDIS_PASSWORD']}"
            ),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "AIRFLOW_HOME": str(state / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(project / "pipelines"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{state / 'airflow' / 'airflow.db'}",
            "FEAST_REGISTRY_PATH": f"sqlite:///{state / 'feast' / 'registry.db'}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{state / 'mlflow' / 'mlflow.db'}",
            "MLFLOW_S3_ENDPOINT_URL": endpoint,
            "FRAUD_API_KEY": self.secrets["FRAUD_API_KEY"],
            "FRAUD_ENVIRONMENT": "local",
        }

    def write_env_file(self) -> Path:
        for folder in ("airflow", "feast", "mlflow"):
            (self.config.dir / folder).mkdir(parents=True, exist_ok=True)
        path = self.config.env_file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        lines = ["# Written by 'fraud-stack up': the environment of the local stack."]
        lines += [f"{key}={value}" for key, value in self.environment().items()]
        path.write_text("\n".join(lines) + "\n")
        return path
