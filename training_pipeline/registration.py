"""Logging a trained model to MLflow and the champion gate: what a training run records
(metadata serving needs, metrics, parameters, tags, plots) and whether the new version
takes the ``champion`` alias."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraud_platform import point_in_time
from fraud_platform.feast_repo import open_store
from fraud_platform.settings import S3Settings
from training_pipeline import dataset, metrics, registry, train
from training_pipeline.plots import plot_curves
from training_pipeline.settings import TrainingSettings
from training_pipeline.train import BASELINE, MODEL, XGBConfig

if TYPE_CHECKING:
    import xgboost as xgb
    from feast import FeatureStore

    from training_pipeline.preparation import Prepared


def model_metadata(
    prepared: Prepared, fitted: dict[str, Any], model_name: str, config: XGBConfig | None = None
) -> dict[str, Any]:
    """What serving needs beside the Booster: the feature order, the feature service,
    the thresholds, and how the training set was built."""
    split = prepared.split
    return metrics.json_safe(
        {
            "model_name": model_name,
            "feature_service": prepared.training_set.feature_service,
            "features": prepared.features,
            "excluded_service_features": [
                f for f in prepared.training_set.features if f not in prepared.features
            ],
            "thresholds": fitted["thresholds"].as_dict(),
            "windows": split.as_dict(),
            "label_cutoff": split.label_cutoff.isoformat(),
            "entity_offset_microseconds": point_in_time.ENTITY_OFFSET // timedelta(microseconds=1),
            "baseline": {"name": BASELINE, **fitted["rule"].as_dict()},
            "xgboost": {**(config or XGBConfig()).as_dict(), **fitted["training"]},
        }
    )


def plots(
    prepared: Prepared, fitted: dict[str, Any], out_dir: Path | None = None
) -> dict[str, Path]:
    """PR, ROC, calibration and feature-importance PNGs of the test window."""
    return plot_curves(
        prepared.frames.test["is_fraud"].to_numpy(),
        fitted["test_scores"],
        out_dir or registry.plots_dir(),
        importance=train.feature_importance(fitted["booster"], prepared.features),
        probabilities=fitted["test_probabilities"],
        thresholds=fitted["thresholds"],
    )


def register_model(
    prepared: Prepared,
    fitted: dict[str, Any],
    model_name: str | None = None,
    experiment_name: str | None = None,
    config: XGBConfig | None = None,
    card_precision_k: int = 10,
    min_improvement: float = 0.0,
    store: FeatureStore | None = None,
    prequential: list[dict[str, Any]] | None = None,
    plot_files: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """Log the run to MLflow, register the model and move ``champion`` only if it wins.

    The current champion is re-scored on this split's test rows; the new version takes
    ``champion`` if its average precision is higher by more than ``min_improvement``,
    ``challenger`` otherwise.

    Returns:
        ``run_id``, ``model_uri``, ``artifact_uri``, ``model_name``, ``version``,
        ``decision`` (``champion`` or ``challenger``), ``reason`` and both average
        precisions.
    """
    split, frames = prepared.split, prepared.frames
    s3 = S3Settings()
    model_name = model_name or TrainingSettings().model_name
    flat_metrics = _logged_metrics(prepared, fitted, prequential or [])
    params = _logged_params(prepared, fitted, config, card_precision_k, len(prequential or []))
    tags = _logged_tags(prepared, s3)
    logged = registry.log_training_run(
        fitted["booster"],
        prepared.features,
        model_metadata(prepared, fitted, model_name, config),
        params,
        flat_metrics,
        tags,
        plot_files or plots(prepared, fitted),
        frames.validation,
        model_name=model_name,
        experiment_name=experiment_name,
        s3=s3,
        run_name=f"train-{split.test_start:%Y%m%d}",
    )
    new_ap = fitted["test_metrics"][MODEL]["average_precision"]

    gate = registry.promote_if_better(
        model_name, logged.version, new_ap, _champion_scorer(prepared, store), min_improvement
    )
    return {
        "run_id": logged.run_id,
        "model_uri": logged.model_uri,
        "artifact_uri": logged.artifact_uri,
        "model_name": model_name,
        "version": logged.version,
        **gate,
    }


def _champion_scorer(prepared: Prepared, store: FeatureStore | None) -> registry.ScoreFn:
    """Scores a registered version on this split's test rows: the champion the gate
    compares with, re-scored on the same window as the new version."""

    def score_version(champion: xgb.Booster, champion_meta: dict[str, Any]) -> float:
        test = prepared.frames.test
        wanted = champion_meta.get("features") or []
        if not wanted:
            raise ValueError("the champion's metadata has no feature order")
        if any(f not in test.columns for f in wanted):
            # Bound to another feature service: rebuild the same rows with it.
            rebuilt = dataset.historical_features(
                store or open_store(),
                test.drop(columns=prepared.training_set.features, errors="ignore"),
                champion_meta.get("feature_service"),
            )
            test = rebuilt.frame
        return metrics.average_precision(
            test["is_fraud"].to_numpy(), train.predict(champion, test, wanted)
        )

    return score_version


def _logged_metrics(
    prepared: Prepared, fitted: dict[str, Any], prequential: list[dict[str, Any]]
) -> dict[str, float]:
    """The run's metrics, flat as MLflow keeps them: both windows' tables, the decisions
    on test, the thresholds, row counts and the prequential folds."""
    frames = prepared.frames
    flat_metrics = {
        f"{split_name}_{score}_{metric}": value
        for split_name, table in (
            ("test", fitted["test_metrics"]),
            ("validation", fitted["validation_metrics"]),
        )
        for score, row in table.items()
        for metric, value in row.items()
    }
    flat_metrics.update(
        {
            f"test_{key}": value
            for key, value in fitted["decisions_on_test"].items()
            if value is not None
        }
    )
    flat_metrics.update(
        {f"threshold_{name}": getattr(fitted["thresholds"], name) for name in ("review", "decline")}
    )
    flat_metrics.update(
        {
            f"rows_{name}": float(len(frame))
            for name, frame in (
                ("fit", frames.fit),
                ("validation", frames.validation),
                ("test", frames.test),
            )
        }
    )
    flat_metrics.update(
        {f"training_set_{key}": float(value) for key, value in prepared.training_set.counts.items()}
    )
    for fold in prequential:
        for score, row in fold.get("test_metrics", {}).items():
            flat_metrics[f"fold{fold['fold']}_{score}_average_precision"] = row["average_precision"]
    return flat_metrics


def _logged_params(
    prepared: Prepared,
    fitted: dict[str, Any],
    config: XGBConfig | None,
    card_precision_k: int,
    folds: int,
) -> dict[str, Any]:
    """The run's parameters: hyperparameters, targets, windows and how the set was built."""
    split = prepared.split
    return {
        **{f"xgb_{key}": value for key, value in (config or XGBConfig()).as_dict().items()},
        **{f"target_{key}": value for key, value in fitted["thresholds"].targets.items()},
        **{f"window_{key}": value for key, value in split.as_dict().items()},
        "label_cutoff": split.label_cutoff.isoformat(),
        "feature_service": prepared.training_set.feature_service,
        "n_features": len(prepared.features),
        "card_precision_k": card_precision_k,
        "prequential_folds": folds,
        "best_iteration": fitted["training"]["best_iteration"],
        "scale_pos_weight": fitted["training"]["scale_pos_weight"],
        "baseline_amount_threshold": fitted["rule"].threshold,
    }


def _logged_tags(prepared: Prepared, s3: S3Settings) -> dict[str, str]:
    """Searchable tags: the feature service, the windows and the S3 prefix."""
    split = prepared.split
    return {
        "feature_service": prepared.training_set.feature_service,
        "training_window": f"{split.train_start.isoformat()}/{split.train_end.isoformat()}",
        "validation_window": (
            f"{split.validation_start.isoformat()}/{split.train_end.isoformat()}"
        ),
        "test_window": f"{split.test_start.isoformat()}/{split.test_end.isoformat()}",
        "label_cutoff": split.label_cutoff.isoformat(),
        "s3_prefix": s3.prefix or "",
    }
