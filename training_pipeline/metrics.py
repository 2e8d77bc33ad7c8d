"""Metrics of a fraud score, as pure functions of labels and scores.

Fraud is rare (well under 1% of transactions), so accuracy says nothing and ROC AUC says
little: the figures that matter are how much fraud is caught at the few alerts the
business can afford. Besides ROC AUC and average precision (the area under the
precision-recall curve), the set therefore includes recall at a 1% false-positive rate,
card precision at k per day (what a team of investigators who check k cards a day would
find) and the Brier score (whether the score can be read as a probability).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def _arrays(
    y_true: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in shape: {y.shape} vs {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < len(y)


def roc_auc(y_true: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y, s = _arrays(y_true, score)
    return float(roc_auc_score(y, s)) if _both_classes(y) else math.nan


def average_precision(
    y_true: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray
) -> float:
    """Average precision (step-wise area under the precision-recall curve).

    Its baseline is the fraud rate, not 0.5: a random score scores the prevalence.
    """
    from sklearn.metrics import average_precision_score

    y, s = _arrays(y_true, score)
    return float(average_precision_score(y, s)) if y.sum() > 0 else math.nan


def recall_at_fpr(
    y_true: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray, max_fpr: float = 0.01
) -> float:
    """The largest recall reachable by a threshold whose false-positive rate is at most
    ``max_fpr``.

    Only thresholds at observed scores count (no interpolation between ROC points): a
    threshold flags every transaction scoring at or above it, ties included.
    """
    from sklearn.metrics import roc_curve

    y, s = _arrays(y_true, score)
    if not _both_classes(y):
        return math.nan
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    allowed = fpr <= max_fpr + 1e-12
    return float(tpr[allowed].max())


def brier(y_true: Sequence[int] | np.ndarray, probability: Sequence[float] | np.ndarray) -> float:
    """Mean squared error of the probability against the 0/1 label (lower is better)."""
    y, p = _arrays(y_true, probability)
    if len(y) == 0:
        return math.nan
    return float(np.mean((p - y) ** 2))


def card_precision_at_k(
    frame: pd.DataFrame,
    k: int = 100,
    day: str = "day",
    card: str = "card_id",
    label: str = "is_fraud",
    score: str = "score",
) -> float:
    """Card precision at k per day, averaged over days.

    Each day, every card gets the highest score among its transactions of that day and
    counts as compromised if any of them is a fraud. The ``k`` highest-scored cards are
    the day's alerts (fewer when fewer cards transacted); the day's precision is the share
    of them that are compromised. Ties in score are broken by card id, so the figure is
    deterministic.

    Args:
        frame: One row per transaction with the day, card, label and score columns.
        k: Cards investigators can check per day.

    Returns:
        The mean of the daily precisions; NaN for an empty frame.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if frame.empty:
        return math.nan
    per_card = (
        frame.groupby([day, card], sort=False, observed=True)
        .agg(score=(score, "max"), compromised=(label, "max"))
        .reset_index()
        .sort_values([day, "score", card], ascending=[True, False, True], kind="mergesort")
    )
    top = per_card.groupby(day, sort=True, observed=True).head(k)
    daily = top.groupby(day, sort=True, observed=True)["compromised"].mean()
    return float(daily.mean())


def metric_table(
    frame: pd.DataFrame,
    score: str,
    probability: str | None = None,
    label: str = "is_fraud",
    k: int = 100,
    max_fpr: float = 0.01,
) -> dict[str, float]:
    """Every metric of one score over one evaluation frame.

    Args:
        frame: Rows with ``label``, ``score``, ``day`` and ``card_id``.
        score: Column used for ranking metrics.
        probability: Column read as a probability for the Brier score; ``score`` if None.
        k: Cards per day for card precision at k.

    Returns:
        ``roc_auc``, ``average_precision``, ``recall_at_{fpr}fpr``, ``card_precision_at_{k}``,
        ``brier``; floats, NaN where undefined.
    """
    y = frame[label].to_numpy()
    s = frame[score].to_numpy()
    return {
        "roc_auc": roc_auc(y, s),
        "average_precision": average_precision(y, s),
        f"recall_at_{max_fpr:g}_fpr": recall_at_fpr(y, s, max_fpr),
        f"card_precision_at_{k}": card_precision_at_k(frame, k=k, label=label, score=score),
        "brier": brier(y, frame[probability or score].to_numpy()),
    }


def json_safe(value: Any) -> Any:
    """Floats rounded to 6 places and NaN/inf as None, recursively (for JSON and MLflow)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    return value
