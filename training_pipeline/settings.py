"""Typed settings of the training pipeline, read from the environment when instantiated.

Nothing is read at import time. The MLflow variables are MLflow's own
(``MLFLOW_TRACKING_URI``, ``MLFLOW_S3_ENDPOINT_URL``) so that the library and this package
read the same values; the artifact location is derived from the project's S3 settings
(``s3://<FRAUD_S3_BUCKET>/<FRAUD_S3_PREFIX>/mlflow``), so artifacts follow the bucket and
prefix of the environment like every other zone.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fraud_platform.settings import S3Settings

MLFLOW_ZONE = "mlflow"
"""The S3 zone (prefix below ``FRAUD_S3_PREFIX``) that holds MLflow's artifacts."""


def _default_feature_repo() -> Path:
    return Path(__file__).resolve().parents[1] / "feature_repo"


class TrainingSettings(BaseSettings):
    """Where the features come from and under which names models are recorded."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    feature_repo_path: Path = Field(
        default_factory=_default_feature_repo,
        validation_alias=AliasChoices("FEAST_REPO_PATH", "FEATURE_REPO_PATH"),
    )
    """The Feast repo (the folder holding ``feature_store.yaml``); the store is opened with
    ``FeatureStore(repo_path=...)`` and reads its definitions from the registry."""
    feature_service: str = Field(
        default="fraud_detection_v1", validation_alias="FRAUD_FEATURE_SERVICE"
    )
    model_name: str = Field(default="fraud-detector", validation_alias="FRAUD_MODEL_NAME")
    experiment_name: str = Field(
        default="fraud-detector", validation_alias="FRAUD_MLFLOW_EXPERIMENT"
    )
    batch_rows: int = Field(default=5_000, ge=1, validation_alias="FRAUD_TRAINING_BATCH_ROWS")
    """Entity rows per ``get_historical_features`` call. Feast's file offline store joins
    each entity row with every row of its key before keeping the latest, so a call's
    memory grows with rows x feature rows per key (a busy merchant has thousands); each
    call also re-reads the feature tables, so fewer, larger calls are faster."""


class MLflowSettings(BaseSettings):
    """The MLflow tracking server (or database) and where its artifacts go.

    ``MLFLOW_TRACKING_URI`` is required: without it MLflow would silently write to
    ``./mlruns`` in the working directory.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    tracking_uri: str = Field(validation_alias="MLFLOW_TRACKING_URI")
    s3_endpoint_url: str | None = Field(default=None, validation_alias="MLFLOW_S3_ENDPOINT_URL")

    def artifact_location(self, s3: S3Settings | None = None) -> str:
        """The experiment's artifact root: ``s3://<bucket>/<prefix>/mlflow``."""
        return (s3 or S3Settings()).uri(MLFLOW_ZONE)
