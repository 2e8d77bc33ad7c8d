"""Typed settings from the environment, one class per concern.

Nothing is read at import time: each class reads the environment when instantiated.
Variable names are the standard ones where a standard exists (the AWS variables that
boto3, s3fs, pyarrow and Hadoop's s3a understand), so the same code runs against the local
stack, the compose stack and AWS with only the environment changed.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER = re.compile(r"change[-_]?me", re.IGNORECASE)
"""What ``.env.example`` puts where a secret goes."""


def default_cache_dir() -> Path:
    """Where heavy, reusable downloads (the MinIO binary, Spark's jars) are kept.

    ``FRAUD_CACHE_DIR`` if set and not empty (the folder ``scripts/install.sh`` fills), else
    ``~/.cache/fraud-feature-store``: outside the clone so that fresh clones on the same
    machine reuse them. Read when called, like every setting.
    """
    import os

    configured = os.environ.get("FRAUD_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "fraud-feature-store"


class SecretSettings(BaseSettings):
    """Settings holding secrets: outside the local stack, a placeholder is refused.

    ``.env.example`` ships ``change-me`` values; copied as is, they would become the real
    credentials of a compose or cloud deployment. ``FRAUD_ENVIRONMENT=local`` (what the
    local stack's environment file sets) is the only place they are tolerated.
    """

    environment: str = Field(default="production", validation_alias="FRAUD_ENVIRONMENT")

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Self:
        if self.environment == "local":
            return self
        placeholders = [
            str(info.validation_alias or name)
            for name, info in type(self).model_fields.items()
            if isinstance(value := getattr(self, name), SecretStr)
            and PLACEHOLDER.search(value.get_secret_value())
        ]
        if placeholders:
            raise ValueError(
                f"{', '.join(placeholders)} still hold the placeholder of .env.example "
                f"(FRAUD_ENVIRONMENT={self.environment}): set real secrets"
            )
        return self


class S3Settings(SecretSettings):
    """The object store: MinIO or SeaweedFS locally, MinIO in compose, S3 on AWS.

    Credentials are optional because on AWS they come from the instance or task role
    through the default credential chain.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    endpoint_url: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    )
    access_key_id: str | None = Field(default=None, validation_alias="AWS_ACCESS_KEY_ID")
    secret_access_key: SecretStr | None = Field(
        default=None, validation_alias="AWS_SECRET_ACCESS_KEY"
    )
    region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    bucket: str = Field(default="fraud-feature-store", validation_alias="FRAUD_S3_BUCKET")
    prefix: str = Field(default="", validation_alias="FRAUD_S3_PREFIX")
    """Optional folder inside the bucket under which all zones live (one bucket, several
    environments; the tests use one prefix per run)."""
    healthcheck_path: str | None = Field(
        default="/minio/health/live", validation_alias="S3_HEALTHCHECK_PATH"
    )
    """Path of the store's liveness endpoint under the endpoint URL; empty for AWS S3,
    which has none (readiness is then the bucket check alone)."""

    def key(self, *parts: str) -> str:
        """An object key (or key prefix) in the project's bucket, below ``prefix``."""
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))

    def uri(self, *parts: str) -> str:
        """An ``s3://`` URI in the project's bucket, below ``prefix``."""
        key = self.key(*parts)
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"

    def s3a_uri(self, *parts: str) -> str:
        """The same location as :meth:`uri` in the scheme Hadoop's connector reads."""
        return "s3a" + self.uri(*parts)[2:]

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``boto3.client("s3", ...)``."""
        kwargs: dict[str, Any] = {"region_name": self.region}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.access_key_id and self.secret_access_key:
            kwargs["aws_access_key_id"] = self.access_key_id
            kwargs["aws_secret_access_key"] = self.secret_access_key.get_secret_value()
        return kwargs


class RedisSettings(SecretSettings):
    """The online store, by one connection string in Feast's own format.

    ``host:port,password=...,ssl=true,db=0``: the format ``feature_store.yaml`` passes to
    Feast, so one variable configures both Feast and the project's own clients. Required:
    a missing connection string fails loudly instead of silently reaching localhost.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    connection_string: SecretStr = Field(validation_alias="REDIS_CONNECTION_STRING")

    @cached_property
    def _parsed(self) -> tuple[str, int, dict[str, Any]]:
        # The same grammar as feast.infra.online_stores.redis.RedisOnlineStore.
        host, port, params = "localhost", 6379, {}
        for part in self.connection_string.get_secret_value().split(","):
            part = part.strip()
            if "=" in part:
                key, value = part.split("=", 1)
                try:
                    params[key] = json.loads(value)
                except json.JSONDecodeError:
                    params[key] = value
            elif part:
                host, _, port_text = part.partition(":")
                port = int(port_text or 6379)
        return host, port, params

    @property
    def host(self) -> str:
        return self._parsed[0]

    @property
    def port(self) -> int:
        return self._parsed[1]

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis(...)``."""
        host, port, params = self._parsed
        kwargs: dict[str, Any] = {"host": host, "port": port}
        for key in (
            "password",
            "username",
            "db",
            "ssl",
            "socket_timeout",
            "socket_connect_timeout",
        ):
            if key in params:
                kwargs[key] = str(params[key]) if key in ("password", "username") else params[key]
        return kwargs


class SparkSettings(BaseSettings):
    """How the feature pipeline gets its Spark: local mode by default, a cluster when
    ``SPARK_MASTER`` names one."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    master: str = Field(default="local[*]", validation_alias="SPARK_MASTER")
    driver_memory: str = Field(default="4g", validation_alias="SPARK_DRIVER_MEMORY")
    shuffle_partitions: int = Field(default=8, validation_alias="SPARK_SHUFFLE_PARTITIONS")
    local_ip: str = Field(default="127.0.0.1", validation_alias="SPARK_LOCAL_IP")
    jars_dir: Path = Field(
        default_factory=lambda: default_cache_dir() / "jars", validation_alias="SPARK_JARS_DIR"
    )
    """Folder holding hadoop-aws and the AWS SDK bundle (``make install`` fetches them)."""
    executor_memory: str | None = Field(default=None, validation_alias="SPARK_EXECUTOR_MEMORY")
    """Heap of each executor on a cluster (Spark's default, 1g, when unset); a worker starts
    an executor only if it offers this much memory."""
    executor_cores: int | None = Field(default=None, validation_alias="SPARK_EXECUTOR_CORES")
    """Cores of each executor on a cluster; unset, one executor per worker takes all of the
    worker's cores."""


MLFLOW_ZONE = "mlflow"
"""The S3 zone (prefix below ``FRAUD_S3_PREFIX``) that holds MLflow's artifacts."""


class MLflowSettings(BaseSettings):
    """The MLflow tracking server (or database) and where its artifacts go.

    The variables are MLflow's own (``MLFLOW_TRACKING_URI``, ``MLFLOW_S3_ENDPOINT_URL``), so
    the library and the pipelines read the same values; the artifact location follows the
    project's bucket and prefix like every other zone.

    ``MLFLOW_TRACKING_URI`` is required: without it MLflow would silently write to
    ``./mlruns`` in the working directory.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    tracking_uri: str = Field(validation_alias="MLFLOW_TRACKING_URI")
    s3_endpoint_url: str | None = Field(default=None, validation_alias="MLFLOW_S3_ENDPOINT_URL")

    def artifact_location(self, s3: S3Settings | None = None) -> str:
        """The experiment's artifact root: ``s3://<bucket>/<prefix>/mlflow``."""
        return (s3 or S3Settings()).uri(MLFLOW_ZONE)
