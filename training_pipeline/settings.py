"""Typed settings of the training pipeline, read from the environment when instantiated.

Nothing is read at import time. MLflow's own settings (tracking URI, artifact location)
are shared with serving and live in ``fraud_platform.settings.MLflowSettings``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrainingSettings(BaseSettings):
    """Which feature service models are trained on and under which names they are recorded
    (the Feast repo itself is ``FEAST_REPO_PATH``, see ``fraud_platform.feast_repo``)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    feature_service: str = Field(
        default="fraud_detection_v1", validation_alias="FRAUD_FEATURE_SERVICE"
    )
    model_name: str = Field(default="fraud-detector", validation_alias="FRAUD_MODEL_NAME")
    experiment_name: str = Field(
        default="fraud-detector", validation_alias="FRAUD_MLFLOW_EXPERIMENT"
    )
