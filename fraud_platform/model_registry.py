"""Reading the MLflow model registry: what training writes and serving loads.

A registered version of ``fraud-detector`` is a native XGBoost Booster plus metadata (the
feature service, the feature order ``inplace_predict`` expects, the decision thresholds),
stored in the version's MLmodel file. Serving finds the version by alias (``champion``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fraud_platform.settings import MLflowSettings

if TYPE_CHECKING:
    import xgboost as xgb
    from mlflow import MlflowClient

CHAMPION = "champion"
METADATA_FILE = "model_metadata.json"
"""Run artifact (and model metadata) holding the feature order and the thresholds."""
MODEL_ARTIFACT = "model"


def client(settings: MLflowSettings | None = None) -> MlflowClient:
    """An MLflow client on the configured tracking and registry store."""
    import mlflow
    from mlflow import MlflowClient

    settings = settings or MLflowSettings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def alias_version(
    model_name: str, alias: str, settings: MLflowSettings | None = None
) -> str | None:
    """The version an alias points at, or None (no such model or alias)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client(settings).get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def load_version(
    model_name: str, version: str, settings: MLflowSettings | None = None
) -> tuple[xgb.Booster, dict[str, Any]]:
    """A registered version's Booster and its metadata (feature order, thresholds)."""
    import mlflow.xgboost
    from mlflow.models import get_model_info

    client(settings)
    uri = f"models:/{model_name}/{version}"
    booster = mlflow.xgboost.load_model(uri)
    metadata = get_model_info(uri).metadata or {}
    return booster, metadata
