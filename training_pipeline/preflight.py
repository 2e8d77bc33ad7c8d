"""Configuration checks a training run makes before its expensive work.

Building the training set and training take minutes; a wrong experiment location, model
name or feature service, or an unreachable S3 store or registry, would otherwise only
surface at registration, after them. Each check is cheap and names what to change.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fraud_platform.settings import MLflowSettings, S3Settings
from training_pipeline import registry

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)


class ConfigurationError(ValueError):
    """A setting the run cannot go on with; the message names it and the fix."""


def _first_line(exc: BaseException) -> str:
    """The cause in one line (SQLAlchemy, botocore and others append more lines)."""
    return next(iter(str(exc).splitlines()), type(exc).__name__)


def check_s3(s3: S3Settings) -> dict[str, Any]:
    """The S3 store answers and holds the bronze labels the training set is built from."""
    from fraud_platform import layout
    from fraud_platform.errors import StackNotReadyError
    from fraud_platform.s3 import check_s3_ready, list_keys

    try:
        ready = check_s3_ready(s3)
    except StackNotReadyError as exc:
        raise ConfigurationError(f"{_first_line(exc)} (FRAUD_S3_* / AWS_* settings)") from exc
    labels = layout.table_key(s3, layout.BRONZE, layout.LABELS)
    if not any(key.endswith(".parquet") for key in list_keys(labels + "/", s3)):
        raise ConfigurationError(
            f"no bronze labels at s3://{s3.bucket}/{labels}: run the feature pipeline's "
            "ingest first, or point FRAUD_S3_PREFIX at the data"
        )
    return ready


def check_feature_service(store: FeatureStore, name: str) -> int:
    """The registry answers and has the feature service; returns its feature count."""
    from feast.errors import FeatureServiceNotFoundException

    try:
        service = store.get_feature_service(name)
    except FeatureServiceNotFoundException as exc:
        known = sorted(s.name for s in store.list_feature_services())
        raise ConfigurationError(
            f"feature service {name!r} is not in the Feast registry (it has {known}): run "
            "`make feast-apply` or set FRAUD_FEATURE_SERVICE"
        ) from exc
    except Exception as exc:  # noqa: BLE001 (any registry backend's connection error)
        raise ConfigurationError(
            f"the Feast registry cannot be read: {_first_line(exc)} (FEAST_REGISTRY_PATH)"
        ) from exc
    return sum(len(p.features) for p in service.feature_view_projections)


def check_mlflow(
    model_name: str,
    experiment_name: str | None,
    settings: MLflowSettings | None = None,
    s3: S3Settings | None = None,
) -> str:
    """The tracking store answers, the model name is valid and the experiment stores its
    artifacts where this run would (created if missing); returns the experiment id."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_model_name

    try:
        _validate_model_name(model_name)
    except MlflowException as exc:
        raise ConfigurationError(f"{exc.message} (FRAUD_MODEL_NAME)") from exc
    try:
        return registry.ensure_experiment(experiment_name, settings, s3)
    except ValueError as exc:
        raise ConfigurationError(_first_line(exc)) from exc
    except MlflowException as exc:
        raise ConfigurationError(
            f"the MLflow tracking store cannot be used: {_first_line(exc)} (MLFLOW_TRACKING_URI)"
        ) from exc


def preflight(
    store: FeatureStore,
    feature_service: str,
    model_name: str,
    experiment_name: str | None,
    register: bool,
    s3: S3Settings | None = None,
) -> dict[str, Any]:
    """Every configuration check of a training run, cheapest first.

    Raises:
        ConfigurationError: The first check that fails, naming the setting to change.
    """
    s3 = s3 or S3Settings()
    result: dict[str, Any] = {
        "s3": check_s3(s3)["bucket"],
        "feature_service_features": check_feature_service(store, feature_service),
    }
    if register:
        result["experiment_id"] = check_mlflow(model_name, experiment_name, s3=s3)
    log.info("preflight passed: %s", result)
    return result
