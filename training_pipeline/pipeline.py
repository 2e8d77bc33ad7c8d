"""The training pipeline: point-in-time training set -> XGBoost -> evaluation -> MLflow.

``run`` is the entry the CLI and Airflow call; it chains :func:`prepare` (the point-in-time
training set), :func:`fit_and_evaluate` (XGBoost and the amount rule, metrics,
thresholds), :func:`plots` and :func:`register_model` (MLflow and the champion gate),
which the notebook calls one by one. It reads only storage (bronze labels and
transactions on S3) and the Feast registry, never another pipeline's code, and returns
small JSON-safe metadata.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraud_platform import point_in_time
from fraud_platform.settings import S3Settings
from training_pipeline import dataset, evaluate, metrics, registry, train
from training_pipeline.evaluate import ThresholdTargets, TimeSplit
from training_pipeline.settings import TrainingSettings
from training_pipeline.train import AmountRule, XGBConfig

if TYPE_CHECKING:
    import xgboost as xgb
    from feast import FeatureStore

log = logging.getLogger(__name__)

MODEL = "xgboost"
BASELINE = "amount_rule"


@dataclass
class SplitFrames:
    """The rows of one split, each with its label as known when it is used."""

    fit: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def labels_as_of(frame: pd.DataFrame, known_at: datetime | None, s3: S3Settings | None = None
                 ) -> pd.DataFrame:
    """The rows of ``frame`` whose label was known at ``known_at``, with that label.

    ``frame`` holds features for transactions labelled by some later time; a training
    window must only see the labels known at its cutoff.
    """
    if known_at is None or frame.empty:
        return frame
    since = frame[dataset.REQUEST_TIMESTAMP].min().date()
    known = dataset.read_labels(known_at, since=since, s3=s3)[
        [dataset.ROW_ID, "is_fraud", "label_timestamp"]]
    return (frame.drop(columns=["is_fraud", "label_timestamp"])
            .merge(known, on=dataset.ROW_ID, how="inner"))


def split_frames(features: pd.DataFrame, split: TimeSplit, s3: S3Settings | None = None,
                 test_labels_known_at: datetime | None = None) -> SplitFrames:
    """Fit, validation and test rows of a split from one feature frame.

    Training rows (fit and validation) carry the labels known at the split's cutoff;
    test rows the labels known at ``test_labels_known_at`` (all labels read if None).
    """
    training = labels_as_of(
        evaluate.in_window(features, split.train_start, split.train_end), split.label_cutoff,
        s3)
    test = labels_as_of(evaluate.in_window(features, split.test_start, split.test_end),
                        test_labels_known_at, s3)
    return SplitFrames(
        fit=evaluate.in_window(training, split.train_start, split.validation_start),
        validation=evaluate.in_window(training, split.validation_start, split.train_end),
        test=test,
    )


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    return {"rows": len(frame), "frauds": int(frame["is_fraud"].sum())}


def _scores(booster: xgb.Booster, rule: AmountRule, frame: pd.DataFrame,
            features: list[str]) -> dict[str, np.ndarray]:
    return {MODEL: train.predict(booster, frame, features),
            BASELINE: rule.score(frame["amount"].to_numpy())}


def evaluate_scores(frame: pd.DataFrame, scores: dict[str, np.ndarray],
                    probabilities: dict[str, np.ndarray], k: int) -> dict[str, dict[str, float]]:
    """The metric table: one row of metrics per named score."""
    table = {}
    for name, values in scores.items():
        evaluated = evaluate.evaluation_frame(
            frame, {"score": values, "probability": probabilities[name]})
        table[name] = metrics.metric_table(evaluated, "score", "probability", k=k)
    return table


def fit_and_evaluate(
    frames: SplitFrames,
    features: list[str],
    config: XGBConfig | None = None,
    targets: ThresholdTargets | None = None,
    card_precision_k: int = 10,
) -> dict[str, Any]:
    """Train the model and the rule on one split and evaluate both on its test window.

    Returns:
        ``booster``, ``rule``, ``thresholds``, ``training`` (XGBoost's info),
        ``test_metrics`` and ``validation_metrics`` (per score name),
        ``decisions_on_test`` (what the thresholds do on the test window), and the test
        scores and probabilities.
    """
    booster, info = train.train_xgboost(frames.fit, frames.validation, features, config)
    rule = AmountRule.fit(frames.fit["amount"].to_numpy(), frames.fit["is_fraud"].to_numpy())
    val_scores = _scores(booster, rule, frames.validation, features)
    test_scores = _scores(booster, rule, frames.test, features)
    val_probs = {MODEL: val_scores[MODEL],
                 BASELINE: rule.probability(frames.validation["amount"].to_numpy())}
    test_probs = {MODEL: test_scores[MODEL],
                  BASELINE: rule.probability(frames.test["amount"].to_numpy())}
    thresholds = evaluate.choose_thresholds(frames.validation["is_fraud"].to_numpy(),
                                            val_scores[MODEL], targets)
    y_test = frames.test["is_fraud"].to_numpy()
    decisions = thresholds.decide(test_scores[MODEL])
    on_test = {
        "decline_share": float(np.mean(decisions == "decline")) if len(y_test) else None,
        "review_share": float(np.mean(decisions == "review")) if len(y_test) else None,
        "decline_precision": _precision(y_test, decisions == "decline"),
        "decline_recall": _recall(y_test, decisions == "decline"),
        "review_or_decline_recall": _recall(y_test, decisions != "approve"),
    }
    return {
        "booster": booster,
        "rule": rule,
        "thresholds": thresholds,
        "training": info,
        "validation_metrics": evaluate_scores(frames.validation, val_scores, val_probs,
                                              card_precision_k),
        "test_metrics": evaluate_scores(frames.test, test_scores, test_probs,
                                        card_precision_k),
        "decisions_on_test": on_test,
        "test_scores": test_scores,
        "test_probabilities": test_probs,
    }


def _precision(y: np.ndarray, flagged: np.ndarray) -> float | None:
    return float(y[flagged].mean()) if flagged.any() else None


def _recall(y: np.ndarray, flagged: np.ndarray) -> float | None:
    return float(y[flagged].sum() / y.sum()) if y.sum() else None


def _labelled_windows(splits: list[TimeSplit], known_at: datetime | None,
                      s3: S3Settings) -> pd.DataFrame:
    """Labelled transactions of every training and test window (not of the gaps)."""
    windows = sorted({(s.train_start, s.train_end) for s in splits}
                     | {(s.test_start, s.test_end) for s in splits})
    merged: list[list[datetime]] = []
    for start, end in windows:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    frames = [dataset.labelled_transactions(start, end, known_at, s3) for start, end in merged]
    return pd.concat(frames, ignore_index=True)


def _prequential(features_frame: pd.DataFrame, split: TimeSplit, folds: int,
                 features: list[str], config: XGBConfig | None, k: int,
                 s3: S3Settings) -> list[dict[str, Any]]:
    """Train and evaluate each earlier fold (see ``evaluate.prequential_splits``)."""
    results = []
    for i, fold in enumerate(evaluate.prequential_splits(split, folds), start=1):
        frames = split_frames(features_frame, fold, s3)
        try:
            fitted = fit_and_evaluate(frames, features, config, card_precision_k=k)
        except ValueError as exc:
            results.append({"fold": i, "windows": fold.as_dict(), "skipped": str(exc)})
            continue
        results.append({"fold": i, "windows": fold.as_dict(),
                        "test": _counts(frames.test),
                        "test_metrics": fitted["test_metrics"]})
    return results


@dataclass
class Prepared:
    """A split with its point-in-time training set, ready to train on.

    Attributes:
        split: The windows.
        training_set: Features of every labelled transaction of the split's windows.
        features: The model's inputs, in order (the service's features less the
            absolute instants, see ``train.model_features``).
        frames: Fit, validation and test rows, each with its label as known when used.
    """

    split: TimeSplit
    training_set: dataset.TrainingSet
    features: list[str]
    frames: SplitFrames
    test_labels_mature: bool = True
    """Whether labels are known up to a label delay (the split's gap) past the end of the
    test window. If not, its last genuine transactions are not labelled yet and are left
    out, which inflates the test fraud rate and flatters the metrics."""


def labelled_for(split: TimeSplit, folds: int = 0, known_at: datetime | None = None,
                 s3: S3Settings | None = None) -> pd.DataFrame:
    """Labelled transactions of the split's windows (and of its prequential folds)."""
    return _labelled_windows([split, *evaluate.prequential_splits(split, folds)], known_at,
                             s3 or S3Settings())


def prepare(
    split: TimeSplit,
    feature_service: str | None = None,
    folds: int = 0,
    test_labels_known_at: datetime | None = None,
    store: FeatureStore | None = None,
    s3: S3Settings | None = None,
) -> Prepared:
    """Read the labelled transactions of the split and join the feature service to them.

    Raises:
        ValueError: if the fit, validation or test window has no labelled fraud.
    """
    s3 = s3 or S3Settings()
    store = store or dataset.open_store()
    labelled = labelled_for(split, folds, test_labels_known_at, s3)
    training_set = dataset.historical_features(store, labelled, feature_service)
    frames = split_frames(training_set.frame, split, s3, test_labels_known_at)
    for name, frame in (("fit", frames.fit), ("validation", frames.validation),
                        ("test", frames.test)):
        if frame.empty or frame["is_fraud"].sum() == 0:
            raise ValueError(f"the {name} window has no labelled fraud: widen the windows")
    mature_at = split.test_end + split.gap
    if test_labels_known_at is not None:
        mature = test_labels_known_at >= mature_at
    else:
        # The feed is read through the end of its latest label day.
        latest = dataset.latest_label_day(s3)
        mature = latest is not None and evaluate.day_start(
            latest + timedelta(days=1)) >= mature_at
    prepared = Prepared(split, training_set, train.model_features(training_set.features),
                        frames, mature)
    if not prepared.test_labels_mature:
        log.warning("the labels read end before %s: the test window's last genuine "
                    "transactions are unlabelled and left out, which inflates its fraud "
                    "rate; end the test window a label delay earlier",
                    split.test_end + split.gap)
    return prepared


def counts(prepared: Prepared) -> dict[str, Any]:
    """Rows of the training set (with and without features) and of each window."""
    return {
        **prepared.training_set.counts,
        "fit": _counts(prepared.frames.fit),
        "validation": _counts(prepared.frames.validation),
        "test": _counts(prepared.frames.test),
        "test_labels_mature": prepared.test_labels_mature,
    }


def model_metadata(prepared: Prepared, fitted: dict[str, Any], model_name: str,
                   config: XGBConfig | None = None) -> dict[str, Any]:
    """What serving needs beside the Booster: the feature order, the feature service,
    the thresholds, and how the training set was built."""
    split = prepared.split
    return metrics.json_safe({
        "model_name": model_name,
        "feature_service": prepared.training_set.feature_service,
        "features": prepared.features,
        "excluded_service_features": [f for f in prepared.training_set.features
                                      if f not in prepared.features],
        "thresholds": fitted["thresholds"].as_dict(),
        "windows": split.as_dict(),
        "label_cutoff": split.label_cutoff.isoformat(),
        "entity_offset_microseconds": point_in_time.ENTITY_OFFSET // timedelta(microseconds=1),
        "baseline": {"name": BASELINE, **fitted["rule"].as_dict()},
        "xgboost": {**(config or XGBConfig()).as_dict(), **fitted["training"]},
    })


def plots(prepared: Prepared, fitted: dict[str, Any], out_dir: Path | None = None
          ) -> dict[str, Path]:
    """PR, ROC, calibration and feature-importance PNGs of the test window."""
    return evaluate.plot_curves(
        prepared.frames.test["is_fraud"].to_numpy(), fitted["test_scores"],
        out_dir or registry.plots_dir(),
        importance=train.feature_importance(fitted["booster"], prepared.features),
        probabilities=fitted["test_probabilities"], thresholds=fitted["thresholds"],
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
    split = TimeSplit.from_days(train_start, train_end, test_start, test_end,
                                validation_days, label_delay)
    log.info("training %s, label cutoff %s, feature service %s", split.as_dict(),
             split.label_cutoff, feature_service)
    store = store or dataset.open_store()
    if prepared is None:
        prepared = prepare(split, feature_service, folds, test_labels_known_at, store, s3)
    elif prepared.split != split or prepared.training_set.feature_service != feature_service:
        raise ValueError("the prepared training set is of another split or feature service")
    fitted = fit_and_evaluate(prepared.frames, prepared.features, config, targets,
                              card_precision_k)
    prequential = (_prequential(prepared.training_set.frame, split, folds,
                                prepared.features, config, card_precision_k, s3)
                   if folds else [])
    importance = train.feature_importance(fitted["booster"], prepared.features)
    result: dict[str, Any] = {
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
        "seconds": {"training_set": prepared.training_set.seconds.get("features")},
    }
    if register:
        registered = register_model(
            prepared, fitted, model_name=model_name, experiment_name=experiment_name,
            config=config, card_precision_k=card_precision_k,
            min_improvement=min_improvement, store=store, prequential=prequential,
        )
        result["mlflow"] = registered
        # The headline for schedulers' small metadata (XCom): what was registered and
        # which version serving now loads.
        result["version"] = registered["version"]
        result["alias"] = registered["decision"]
        result["champion_version"] = (
            registered["version"] if registered["decision"] == registry.CHAMPION
            else registered["previous_champion_version"])
    result["seconds"]["total"] = round(time.perf_counter() - started, 2)
    return metrics.json_safe(result)


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
    feature_service = prepared.training_set.feature_service
    flat_metrics = {
        f"{split_name}_{score}_{metric}": value
        for split_name, table in (("test", fitted["test_metrics"]),
                                  ("validation", fitted["validation_metrics"]))
        for score, row in table.items() for metric, value in row.items()
    }
    flat_metrics.update({f"test_{key}": value
                         for key, value in fitted["decisions_on_test"].items()
                         if value is not None})
    flat_metrics.update({f"threshold_{name}": getattr(fitted["thresholds"], name)
                         for name in ("review", "decline")})
    flat_metrics.update({f"rows_{name}": float(len(frame)) for name, frame in (
        ("fit", frames.fit), ("validation", frames.validation), ("test", frames.test))})
    flat_metrics.update({f"training_set_{key}": float(value)
                         for key, value in prepared.training_set.counts.items()})
    for fold in prequential or []:
        for score, row in fold.get("test_metrics", {}).items():
            flat_metrics[f"fold{fold['fold']}_{score}_average_precision"] = row[
                "average_precision"]
    params = {
        **{f"xgb_{key}": value for key, value in (config or XGBConfig()).as_dict().items()},
        **{f"target_{key}": value for key, value in fitted["thresholds"].targets.items()},
        **{f"window_{key}": value for key, value in split.as_dict().items()},
        "label_cutoff": split.label_cutoff.isoformat(),
        "feature_service": feature_service,
        "n_features": len(prepared.features),
        "card_precision_k": card_precision_k,
        "prequential_folds": len(prequential or []),
        "best_iteration": fitted["training"]["best_iteration"],
        "scale_pos_weight": fitted["training"]["scale_pos_weight"],
        "baseline_amount_threshold": fitted["rule"].threshold,
    }
    tags = {
        "feature_service": feature_service,
        "training_window": f"{split.train_start.isoformat()}/{split.train_end.isoformat()}",
        "validation_window": (f"{split.validation_start.isoformat()}/"
                              f"{split.train_end.isoformat()}"),
        "test_window": f"{split.test_start.isoformat()}/{split.test_end.isoformat()}",
        "label_cutoff": split.label_cutoff.isoformat(),
        "s3_prefix": s3.prefix or "",
    }
    logged = registry.log_training_run(
        fitted["booster"], prepared.features,
        model_metadata(prepared, fitted, model_name, config), params, flat_metrics, tags,
        plot_files or plots(prepared, fitted), frames.validation, model_name=model_name,
        experiment_name=experiment_name, s3=s3,
        run_name=f"train-{split.test_start:%Y%m%d}",
    )
    new_ap = fitted["test_metrics"][MODEL]["average_precision"]

    def score_version(champion: xgb.Booster, champion_meta: dict[str, Any]) -> float:
        test = frames.test
        wanted = champion_meta.get("features") or []
        if not wanted:
            raise ValueError("the champion's metadata has no feature order")
        if any(f not in test.columns for f in wanted):
            # Bound to another feature service: rebuild the same rows with it.
            rebuilt = dataset.historical_features(
                store or dataset.open_store(),
                test.drop(columns=prepared.training_set.features, errors="ignore"),
                champion_meta.get("feature_service"))
            test = rebuilt.frame
        return metrics.average_precision(test["is_fraud"].to_numpy(),
                                         train.predict(champion, test, wanted))

    gate = registry.promote_if_better(model_name, logged.version, new_ap, score_version,
                                      min_improvement)
    return {
        "run_id": logged.run_id,
        "model_uri": logged.model_uri,
        "artifact_uri": logged.artifact_uri,
        "model_name": model_name,
        "version": logged.version,
        **gate,
    }
