"""The training pipeline: point-in-time training set -> XGBoost -> evaluation -> MLflow.

``run`` is the entry the CLI and Airflow call; it chains :func:`prepare` (the point-in-time
training set, ``training_pipeline.preparation``), :func:`fit_and_evaluate` (XGBoost and the
amount rule, metrics, thresholds, ``training_pipeline.fitting``) and
:mod:`training_pipeline.registration` (MLflow and the champion gate), which the notebook
calls one by one from here. It reads only storage (bronze labels and transactions on S3)
and the Feast registry, never another pipeline's code, and returns small JSON-safe
metadata.
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fraud_platform.feast_repo import open_store
from fraud_platform.settings import S3Settings
from training_pipeline import evaluate, metrics, preflight, progress, registry, train
from training_pipeline.evaluate import TimeSplit
from training_pipeline.fitting import fit_and_evaluate, prequential
from training_pipeline.preparation import Prepared, counts, labelled_for, prepare
from training_pipeline.registration import register_model
from training_pipeline.settings import TrainingSettings
from training_pipeline.thresholds import ThresholdTargets
from training_pipeline.train import BASELINE, MODEL, XGBConfig

if TYPE_CHECKING:
    from feast import FeatureStore

# The steps the notebook calls one by one, and the score names of the metric tables.
__all__ = [
    "BASELINE",
    "MODEL",
    "Prepared",
    "counts",
    "fit_and_evaluate",
    "labelled_for",
    "prepare",
    "run",
    "run_until",
]

log = logging.getLogger(__name__)


def run_until(
    last_test_day: date,
    test_days: int,
    label_delay: timedelta,
    train_days: int,
    **options: Any,
) -> dict[str, Any]:
    """:func:`run` over the windows that end on ``last_test_day``
    (:func:`training_pipeline.evaluate.windows_ending`): what a scheduled run calls."""
    days = evaluate.windows_ending(last_test_day, test_days, label_delay, train_days=train_days)
    return run(
        days["train_start"],
        days["train_end"],
        days["test_start"],
        days["test_end"],
        label_delay=label_delay,
        **options,
    )


def run(
    train_start: date,
    train_end: date,
    test_start: date,
    test_end: date,
    validation_days: int = 3,
    label_delay: timedelta = evaluate.DEFAULT_LABEL_DELAY,
    test_labels_known_at: datetime | None = None,
    feature_service: str | None = None,
    model_name: str | None = None,
    experiment_name: str | None = None,
    config: XGBConfig | None = None,
    targets: ThresholdTargets | None = None,
    card_precision_k: int = 10,
    folds: int = 0,
    register: bool = True,
    min_improvement: float = 0.0,
    store: FeatureStore | None = None,
    prepared: Prepared | None = None,
) -> dict[str, Any]:
    # long: eighteen options, each documented in Args; the body is a dozen steps
    """Build the training set, train, evaluate against the rule, log and gate the model.

    Args:
        train_start: First training day (UTC); the validation window is its last
            ``validation_days`` days.
        train_end: Last training day, included.
        test_start: First test day; the model is trained as of its midnight, so only
            labels known by then are used for training. Must be at least ``label_delay``
            after the end of ``train_end``.
        test_end: Last test day, included.
        test_labels_known_at: Labels of the test window known at this instant (every
            label in bronze if None).
        feature_service: The Feast feature service (``FRAUD_FEATURE_SERVICE``).
        model_name: The registered model (``FRAUD_MODEL_NAME``).
        config: XGBoost hyperparameters.
        targets: What the review and decline thresholds must achieve on validation.
        card_precision_k: Cards per day for card precision at k.
        folds: Extra prequential folds, each one test window earlier (0: none).
        register: Log to MLflow, register the version and run the champion gate.
        min_improvement: Average precision the new version must gain over the champion.
        store: A Feast store to reuse (opened from ``FEAST_REPO_PATH`` if None).
        prepared: The training set of this very split, already built (see
            :func:`prepare`): trying several configurations then costs one
            point-in-time join, not one per run.

    Returns:
        JSON-safe metadata: windows, counts, the metric table for the model and the
        baseline (``metrics``), thresholds, the registered version and the alias
        decision (``mlflow``).
    """
    started = time.perf_counter()
    settings = TrainingSettings()
    feature_service = feature_service or settings.feature_service
    s3 = S3Settings()
    try:
        split = TimeSplit.from_days(
            train_start, train_end, test_start, test_end, validation_days, label_delay
        )
    except ValueError as exc:
        raise preflight.ConfigurationError(
            f"{exc} (--train-end, --test-start, --label-delay-days)"
        ) from exc
    log.info(
        "training %s, label cutoff %s, feature service %s",
        split.as_dict(),
        split.label_cutoff,
        feature_service,
    )
    store = store or open_store()
    # Configuration fails here, in seconds, not after the training set and the training.
    checks = preflight.preflight(
        store, feature_service, model_name or settings.model_name, experiment_name, register, s3
    )
    prepared = _prepared_for(
        split, feature_service, prepared, folds, test_labels_known_at, store, s3
    )
    fitted = fit_and_evaluate(prepared.frames, prepared.features, config, targets, card_precision_k)
    folds_run = (
        prequential(
            prepared.training_set.frame,
            split,
            folds,
            prepared.features,
            config,
            card_precision_k,
            s3,
        )
        if folds
        else []
    )
    result = _summary(split, feature_service, prepared, fitted, folds_run, checks)
    if register:
        with progress.step("MLflow: log the run, register, champion gate"):
            registered = register_model(
                prepared,
                fitted,
                model_name=model_name,
                experiment_name=experiment_name,
                config=config,
                card_precision_k=card_precision_k,
                min_improvement=min_improvement,
                store=store,
                prequential=folds_run,
            )
        result.update(_registered(registered))
    result["seconds"]["total"] = round(time.perf_counter() - started, 2)
    return metrics.json_safe(result)


def _prepared_for(
    split: TimeSplit,
    feature_service: str,
    prepared: Prepared | None,
    folds: int,
    test_labels_known_at: datetime | None,
    store: FeatureStore,
    s3: S3Settings,
) -> Prepared:
    """The training set given for this split, checked, or a new one."""
    if prepared is None:
        # The prequential folds split the training set again; without them its rows move
        # into the windows.
        return prepare(
            split, feature_service, folds, test_labels_known_at, store, s3, keep_frame=folds > 0
        )
    if prepared.split != split or prepared.training_set.feature_service != feature_service:
        raise ValueError("the prepared training set is of another split or feature service")
    return prepared


def _summary(
    split: TimeSplit,
    feature_service: str,
    prepared: Prepared,
    fitted: dict[str, Any],
    prequential: list[dict[str, Any]],
    checks: dict[str, Any],
) -> dict[str, Any]:
    """The run's metadata before registration: windows, counts, metrics, thresholds."""
    importance = train.feature_importance(fitted["booster"], prepared.features)
    return {
        "feature_service": feature_service,
        "windows": split.as_dict(),
        "label_cutoff": split.label_cutoff.isoformat(),
        "counts": counts(prepared),
        "metrics": fitted["test_metrics"],
        "validation_metrics": fitted["validation_metrics"],
        "thresholds": fitted["thresholds"].as_dict(),
        "decisions_on_test": fitted["decisions_on_test"],
        "training": fitted["training"],
        "top_features": dict(sorted(importance.items(), key=lambda kv: -kv[1])[:10]),
        "prequential": prequential,
        "preflight": checks,
        "seconds": {"training_set": prepared.training_set.seconds.get("features")},
    }


def _registered(registered: dict[str, Any]) -> dict[str, Any]:
    """The registration, and the headline for schedulers' small metadata (XCom): what was
    registered and which version serving now loads."""
    return {
        "mlflow": registered,
        "version": registered["version"],
        "alias": registered["decision"],
        "champion_version": (
            registered["version"]
            if registered["decision"] == registry.CHAMPION
            else registered["previous_champion_version"]
        ),
    }
