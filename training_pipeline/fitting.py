"""Training and evaluation of one split: XGBoost and the amount rule, their metrics on the
validation and test windows, the decision thresholds, and the prequential folds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraud_platform.settings import S3Settings
from training_pipeline import evaluate, metrics, train
from training_pipeline.evaluate import TimeSplit
from training_pipeline.preparation import SplitFrames, split_frames, window_counts
from training_pipeline.thresholds import ThresholdTargets, choose_thresholds
from training_pipeline.train import BASELINE, MODEL, AmountRule, XGBConfig

if TYPE_CHECKING:
    import xgboost as xgb


def _scores(
    booster: xgb.Booster, rule: AmountRule, frame: pd.DataFrame, features: list[str]
) -> dict[str, np.ndarray]:
    return {
        MODEL: train.predict(booster, frame, features),
        BASELINE: rule.score(frame["amount"].to_numpy()),
    }


def evaluate_scores(
    frame: pd.DataFrame, scores: dict[str, np.ndarray], probabilities: dict[str, np.ndarray], k: int
) -> dict[str, dict[str, float]]:
    """The metric table: one row of metrics per named score."""
    table = {}
    for name, values in scores.items():
        evaluated = evaluate.evaluation_frame(
            frame, {"score": values, "probability": probabilities[name]}
        )
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
    config = config or XGBConfig()
    booster, info = train.train_xgboost(frames.fit, frames.validation, features, config)
    rule = AmountRule.fit(frames.fit["amount"].to_numpy(), frames.fit["is_fraud"].to_numpy())
    # Validation scores (and the thresholds) come from the model that has not seen the
    # validation rows; the model registered and tested is refit on the whole window.
    val_scores = _scores(booster, rule, frames.validation, features)
    if config.refit:
        booster, info["refit"] = train.refit_xgboost(
            [frames.fit, frames.validation], features, info["trees"], config
        )
    test_scores = _scores(booster, rule, frames.test, features)
    val_probs = {
        MODEL: val_scores[MODEL],
        BASELINE: rule.probability(frames.validation["amount"].to_numpy()),
    }
    test_probs = {
        MODEL: test_scores[MODEL],
        BASELINE: rule.probability(frames.test["amount"].to_numpy()),
    }
    thresholds = choose_thresholds(
        frames.validation["is_fraud"].to_numpy(), val_scores[MODEL], targets
    )
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
        "validation_metrics": evaluate_scores(
            frames.validation, val_scores, val_probs, card_precision_k
        ),
        "test_metrics": evaluate_scores(frames.test, test_scores, test_probs, card_precision_k),
        "decisions_on_test": on_test,
        "test_scores": test_scores,
        "test_probabilities": test_probs,
    }


def _precision(y: np.ndarray, flagged: np.ndarray) -> float | None:
    return float(y[flagged].mean()) if flagged.any() else None


def _recall(y: np.ndarray, flagged: np.ndarray) -> float | None:
    return float(y[flagged].sum() / y.sum()) if y.sum() else None


def prequential(
    features_frame: pd.DataFrame,
    split: TimeSplit,
    folds: int,
    features: list[str],
    config: XGBConfig | None,
    k: int,
    s3: S3Settings,
) -> list[dict[str, Any]]:
    """Train and evaluate each earlier fold (see ``evaluate.prequential_splits``)."""
    results = []
    for i, fold in enumerate(evaluate.prequential_splits(split, folds), start=1):
        frames = split_frames(features_frame, fold, s3)
        try:
            fitted = fit_and_evaluate(frames, features, config, card_precision_k=k)
        except ValueError as exc:
            results.append({"fold": i, "windows": fold.as_dict(), "skipped": str(exc)})
            continue
        results.append(
            {
                "fold": i,
                "windows": fold.as_dict(),
                "test": window_counts(frames.test),
                "test_metrics": fitted["test_metrics"],
            }
        )
    return results
