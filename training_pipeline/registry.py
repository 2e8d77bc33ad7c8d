"""MLflow tracking and the model registry: one run per training, one version per model,
and the ``champion`` alias that serving loads.

The tracking store is ``MLFLOW_TRACKING_URI`` (SQLite under ``.local/mlflow`` locally,
PostgreSQL in compose and on AWS). Artifacts go to S3, at the experiment's explicit
artifact location ``s3://<bucket>/<prefix>/mlflow``: an experiment created without one
would default to ``./mlruns`` of whatever directory the process runs in.

Promotion is a gate, not a default: the new version takes ``champion`` only if its
average precision on the test window beats the current champion's, re-scored on the very
same rows; otherwise it becomes ``challenger`` and serving keeps the champion.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraud_platform.model_registry import (
    CHAMPION,
    METADATA_FILE,
    MODEL_ARTIFACT,
    alias_version,
    client,
    load_version,
)
from fraud_platform.settings import MLflowSettings, S3Settings
from training_pipeline.settings import TrainingSettings

if TYPE_CHECKING:
    import xgboost as xgb
    from mlflow import MlflowClient
    from mlflow.models.model import ModelInfo

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"


def ensure_experiment(
    name: str | None = None, settings: MLflowSettings | None = None, s3: S3Settings | None = None
) -> str:
    """The experiment's id, created with its S3 artifact location if it does not exist.

    Raises:
        ValueError: if an experiment of that name stores its artifacts elsewhere (another
            bucket or prefix, or ``./mlruns``): runs would scatter their artifacts.
    """
    settings = settings or MLflowSettings()
    name = name or TrainingSettings().experiment_name
    location = settings.artifact_location(s3)
    mlflow_client = client(settings)
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is None:
        experiment_id = mlflow_client.create_experiment(name, artifact_location=location)
        log.info("created experiment %s with artifacts at %s", name, location)
        return experiment_id
    if experiment.lifecycle_stage == "deleted":
        mlflow_client.restore_experiment(experiment.experiment_id)
    if experiment.artifact_location.rstrip("/") != location.rstrip("/"):
        raise ValueError(
            f"experiment {name!r} stores artifacts at {experiment.artifact_location}, not "
            f"{location}; use another experiment name (FRAUD_MLFLOW_EXPERIMENT)"
        )
    return experiment.experiment_id


@dataclass
class LoggedModel:
    """What a training run left in MLflow."""

    run_id: str
    model_uri: str
    version: str
    artifact_uri: str


def log_training_run(
    booster: xgb.Booster,
    features: list[str],
    metadata: dict[str, Any],
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    plots: dict[str, Path],
    input_example: pd.DataFrame,
    model_name: str | None = None,
    experiment_name: str | None = None,
    settings: MLflowSettings | None = None,
    s3: S3Settings | None = None,
    run_name: str | None = None,
) -> LoggedModel:
    """Log one training run and register its model as a new version.

    Args:
        booster: The trained model.
        features: The model's feature order (the columns ``inplace_predict`` expects).
        metadata: Feature order, thresholds, feature service and windows; stored as the
            ``model_metadata.json`` run artifact and in the model's MLmodel metadata.
        params: Flat parameters (hyperparameters, windows, targets).
        metrics: Flat numeric metrics (NaN entries are skipped).
        tags: Run and model-version tags (feature service, training window, ...).
        plots: PNG files, logged under ``plots/``.
        input_example: A few rows of model input for the signature and example.

    Returns:
        The run id, the model's URI, the registered version and the run's artifact URI.
    """
    import mlflow

    settings = settings or MLflowSettings()
    training = TrainingSettings()
    model_name = model_name or training.model_name
    experiment_id = ensure_experiment(experiment_name or training.experiment_name, settings, s3)
    example = input_example[features].astype("float32").head(5)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        _log_records(tags, params, metrics, metadata, plots)
        info = _log_model(booster, example, model_name, metadata)
        artifact_uri = run.info.artifact_uri
    version = str(info.registered_model_version)
    mlflow_client = client(settings)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(model_name, version, key, value)
    log.info("run %s logged; %s version %s", run.info.run_id, model_name, version)
    return LoggedModel(
        run_id=run.info.run_id, model_uri=info.model_uri, version=version, artifact_uri=artifact_uri
    )


def _log_records(
    tags: dict[str, str],
    params: dict[str, Any],
    metrics: dict[str, float],
    metadata: dict[str, Any],
    plots: dict[str, Path],
) -> None:
    """The active run's tags, parameters, finite metrics, metadata file and plots."""
    import mlflow

    mlflow.set_tags(tags)
    mlflow.log_params({k: _param(v) for k, v in params.items()})
    mlflow.log_metrics(
        {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
    )
    mlflow.log_dict(metadata, METADATA_FILE)
    for path in plots.values():
        mlflow.log_artifact(str(path), artifact_path="plots")


def _log_model(
    booster: xgb.Booster, example: pd.DataFrame, model_name: str, metadata: dict[str, Any]
) -> ModelInfo:
    """The model logged in the active run and registered as a new version of
    ``model_name``, with its signature and input example."""
    import mlflow.xgboost
    from mlflow.models import infer_signature

    signature = infer_signature(example, np.asarray(booster.inplace_predict(example)))
    return mlflow.xgboost.log_model(
        booster,
        name=MODEL_ARTIFACT,
        signature=signature,
        input_example=example,
        registered_model_name=model_name,
        metadata=metadata,
        model_format="ubj",
        # Stated rather than inferred: inference imports the model in a subprocess
        # (seconds per run) and can pick up whatever else the process imported.
        pip_requirements=[_xgboost_requirement()],
    )


def _xgboost_requirement() -> str:
    """The installed XGBoost distribution pinned (``xgboost-cpu`` or ``xgboost``)."""
    from importlib.metadata import PackageNotFoundError, version

    for distribution in ("xgboost-cpu", "xgboost"):
        try:
            return f"{distribution}=={version(distribution)}"
        except PackageNotFoundError:
            continue
    import xgboost

    return f"xgboost=={xgboost.__version__}"


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]


ScoreFn = Callable[["xgb.Booster", dict[str, Any]], float]
"""Average precision of a (booster, metadata) on the evaluation window."""


def promote_if_better(
    model_name: str,
    new_version: str,
    new_average_precision: float,
    score_version: ScoreFn,
    min_improvement: float = 0.0,
    settings: MLflowSettings | None = None,
) -> dict[str, Any]:
    """Move ``champion`` to the new version if it beats the current champion.

    The champion is re-scored on the same test window as the new version (its metrics
    from its own training run were on another window and are not comparable).

    Args:
        model_name: The registered model.
        new_version: The version just registered.
        new_average_precision: Its average precision on the test window.
        score_version: Scores a loaded version on that window.
        min_improvement: How much higher the new average precision must be.

    Returns:
        ``{"decision": "champion" | "challenger", "reason", "champion_version" (before),
        "champion_average_precision", "new_average_precision", "alias"}``.
    """
    mlflow_client = client(settings)
    current = alias_version(model_name, CHAMPION, settings)
    result: dict[str, Any] = {
        "previous_champion_version": current,
        "new_version": new_version,
        "new_average_precision": new_average_precision,
        "champion_average_precision": None,
    }
    if current is None:
        decision, reason = CHAMPION, "no champion yet"
    elif current == new_version:
        decision, reason = CHAMPION, "already champion"
    else:
        booster, metadata = load_version(model_name, current, settings)
        champion_ap = float(score_version(booster, metadata))
        result["champion_average_precision"] = champion_ap
        decision, reason = _compare(current, champion_ap, new_average_precision, min_improvement)
    _move_aliases(mlflow_client, model_name, current, new_version, decision, settings)
    mlflow_client.set_model_version_tag(model_name, new_version, "gate_decision", decision)
    mlflow_client.set_model_version_tag(model_name, new_version, "gate_reason", reason)
    result.update({"decision": decision, "reason": reason, "alias": decision})
    log.info("%s v%s -> %s (%s)", model_name, new_version, decision, reason)
    return result


def _compare(
    champion: str, champion_ap: float, new_ap: float, min_improvement: float
) -> tuple[str, str]:
    """The gate's decision and its reason, from both average precisions on one window."""
    if new_ap > champion_ap + min_improvement:
        return CHAMPION, (
            f"average precision {new_ap:.4f} beats champion "
            f"v{champion} at {champion_ap:.4f} on the same test window"
        )
    return CHALLENGER, (
        f"average precision {new_ap:.4f} does not beat "
        f"champion v{champion} at {champion_ap:.4f} on the same test window"
    )


def _move_aliases(
    mlflow_client: MlflowClient,
    model_name: str,
    current: str | None,
    new_version: str,
    decision: str,
    settings: MLflowSettings | None,
) -> None:
    """A new champion takes ``champion`` (the old one takes ``previous_champion`` and the
    new one drops ``challenger``); a loser takes ``challenger``."""
    if decision == CHAMPION:
        if current is not None and current != new_version:
            mlflow_client.set_registered_model_alias(model_name, PREVIOUS_CHAMPION, current)
        mlflow_client.set_registered_model_alias(model_name, CHAMPION, new_version)
        if alias_version(model_name, CHALLENGER, settings) == new_version:
            mlflow_client.delete_registered_model_alias(model_name, CHALLENGER)
    else:
        mlflow_client.set_registered_model_alias(model_name, CHALLENGER, new_version)


def plots_dir() -> Path:
    """A fresh temporary folder for plots before they are logged."""
    return Path(tempfile.mkdtemp(prefix="training-plots-"))
