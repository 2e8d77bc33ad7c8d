"""Evaluation: time-based splits, decision thresholds, metrics per model and plots.

Fraud models are evaluated on time, never on a random split: a random split puts a
card's later transactions in training and its earlier ones in test, and the features
(windows over the card's history) then leak across the split. Between the end of the
training window and the start of the test window lies a gap as long as the label delay:
a model trained at instant ``T`` only knows the labels known at ``T``, and the
transactions of the last ``label_delay`` before ``T`` are not labelled yet (a genuine
transaction is known to be genuine only once its settlement window has passed). The test
window starts at ``T``, the day the model would go live.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraud_platform.decision import decide_all
from training_pipeline import metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_LABEL_DELAY = timedelta(days=7)
"""The settlement window after which an undisputed transaction counts as genuine."""


def day_start(day: date) -> datetime:
    """Midnight UTC of ``day``."""
    return datetime.combine(day, time.min, UTC)


@dataclass(frozen=True)
class TimeSplit:
    """Train, validation and test windows as half-open UTC intervals ``[start, end)``.

    The validation window is the end of the training window: it drives early stopping
    and the choice of the decision thresholds, and is scored like the test window but
    never used to fit trees.

    Attributes:
        train_start: First instant of the training window (validation included).
        validation_start: First instant of the validation window (inside training).
        train_end: End of the training window, exclusive.
        test_start: First instant of the test window; also the training cutoff, the
            instant at which the model is trained and only labels known by then are used.
        test_end: End of the test window, exclusive.
    """

    train_start: datetime
    validation_start: datetime
    train_end: datetime
    test_start: datetime
    test_end: datetime

    def __post_init__(self) -> None:
        if not (self.train_start < self.validation_start < self.train_end
                <= self.test_start < self.test_end):
            raise ValueError(
                "windows must satisfy train_start < validation_start < train_end <= "
                f"test_start < test_end: {self.as_dict()}"
            )

    @property
    def gap(self) -> timedelta:
        return self.test_start - self.train_end

    @property
    def label_cutoff(self) -> datetime:
        """Labels known at or before this instant are used for training."""
        return self.test_start

    @classmethod
    def from_days(
        cls,
        train_start: date,
        train_end: date,
        test_start: date,
        test_end: date,
        validation_days: int = 3,
        min_gap: timedelta = DEFAULT_LABEL_DELAY,
    ) -> TimeSplit:
        """Windows from whole UTC days, each end day included.

        Raises:
            ValueError: if the gap between the windows is shorter than ``min_gap`` (the
                label delay) or the validation window does not fit in the training one.
        """
        split = cls(
            train_start=day_start(train_start),
            validation_start=day_start(train_end + timedelta(days=1 - validation_days)),
            train_end=day_start(train_end + timedelta(days=1)),
            test_start=day_start(test_start),
            test_end=day_start(test_end + timedelta(days=1)),
        )
        if split.gap < min_gap:
            raise ValueError(
                f"the gap between training ({train_end}) and test ({test_start}) is "
                f"{split.gap}, shorter than the label delay {min_gap}: the last days of "
                "training would have labels not known when the model is trained"
            )
        return split

    def as_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in asdict(self).items()}


def time_split(
    cutoff: date,
    train_days: int,
    test_days: int,
    validation_days: int = 3,
    label_delay: timedelta = DEFAULT_LABEL_DELAY,
) -> TimeSplit:
    """The split of a model trained at midnight of ``cutoff``.

    Training covers the ``train_days`` days that end ``label_delay`` (rounded up to whole
    days) before the cutoff; the test window is the ``test_days`` days from the cutoff.
    """
    gap_days = math.ceil(label_delay / timedelta(days=1))
    train_end = cutoff - timedelta(days=gap_days + 1)
    return TimeSplit.from_days(
        train_start=train_end - timedelta(days=train_days - 1),
        train_end=train_end,
        test_start=cutoff,
        test_end=cutoff + timedelta(days=test_days - 1),
        validation_days=validation_days,
        min_gap=label_delay,
    )


def shifted(split: TimeSplit, delta: timedelta) -> TimeSplit:
    """The same split moved by ``delta`` (negative: earlier)."""
    return TimeSplit(split.train_start + delta, split.validation_start + delta,
                     split.train_end + delta, split.test_start + delta, split.test_end + delta)


def prequential_splits(split: TimeSplit, folds: int, step: timedelta | None = None
                       ) -> list[TimeSplit]:
    """``folds`` earlier splits of the same shape, oldest first, each ``step`` (the test
    window's length by default) before the next: the model as it would have been
    retrained and used over time, evaluated fold after fold."""
    step = step or (split.test_end - split.test_start)
    return [shifted(split, -step * i) for i in range(folds, 0, -1)]


def in_window(frame: pd.DataFrame, start: datetime, end: datetime,
              column: str = "transaction_timestamp") -> pd.DataFrame:
    """Rows whose transaction time lies in ``[start, end)``."""
    ts = frame[column]
    return frame[(ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end))]


# --- Decision thresholds -------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdTargets:
    """What the two decisions must achieve on the validation window.

    Attributes:
        decline_precision: A declined transaction must be fraud this often.
        decline_max_share: At most this share of all transactions may be declined, even
            when the precision target would allow more (a decline hurts a customer).
        review_recall: The review queue (review or decline) should catch this share of
            fraud.
        review_max_share: At most this share of transactions may go to review: the
            analysts' capacity.
    """

    decline_precision: float = 0.9
    decline_max_share: float = 0.001
    review_recall: float = 0.8
    review_max_share: float = 0.02


@dataclass(frozen=True)
class Thresholds:
    """Score thresholds: decline when ``score >= decline``, review when
    ``review <= score < decline``, approve below. Achieved figures are on the window the
    thresholds were chosen on."""

    review: float
    decline: float
    decline_precision_met: bool
    review_recall_met: bool
    achieved: dict[str, float]
    targets: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return metrics.json_safe(asdict(self))

    def decide(self, score: np.ndarray) -> np.ndarray:
        """``"decline"``, ``"review"`` or ``"approve"`` per score."""
        return decide_all(score, self.review, self.decline)


def threshold_for_share(score: np.ndarray, share: float) -> float:
    """The lowest threshold flagging at most ``share`` of the rows (ties included).

    With ``share`` too small to flag a single row, a threshold above every score.
    """
    s = np.sort(np.asarray(score, dtype=np.float64))[::-1]
    allowed = math.floor(share * len(s) + 1e-9)
    if len(s) == 0:
        return math.inf
    values, first = np.unique(-s, return_index=True)
    # Rows flagged by the threshold ``-values[i]``: everything before the next value.
    flagged = np.append(first[1:], len(s))
    ok = flagged <= allowed
    if not ok.any():
        return float(np.nextafter(s[0], math.inf))
    return float(-values[ok][-1])


def _flag_stats(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    flagged = s >= threshold
    n_flagged = int(flagged.sum())
    positives = int(y.sum())
    caught = int((flagged & (y == 1)).sum())
    return {
        "share": n_flagged / len(y) if len(y) else math.nan,
        "precision": caught / n_flagged if n_flagged else math.nan,
        "recall": caught / positives if positives else math.nan,
    }


def choose_thresholds(y_true: np.ndarray, score: np.ndarray,
                      targets: ThresholdTargets | None = None) -> Thresholds:
    """Review and decline thresholds meeting ``targets`` on a validation window.

    - Decline: the lowest threshold whose precision reaches ``decline_precision`` (most
      fraud declined at that precision), raised if needed so that no more than
      ``decline_max_share`` of transactions are declined. If no threshold reaches the
      precision, the share cap alone decides and ``decline_precision_met`` is False.
    - Review: the highest threshold whose recall (reviewed or declined) reaches
      ``review_recall``, raised if needed to keep the flagged share within
      ``review_max_share``; never above the decline threshold.

    Thresholds are observed scores, so the figures in ``achieved`` are exact on the
    window they were chosen on.
    """
    targets = targets or ThresholdTargets()
    y, s = metrics._arrays(y_true, score)
    candidates = np.unique(s)[::-1]  # descending
    # Rows flagged by each candidate threshold (score >= candidate, ties included) and
    # the frauds among them.
    flagged = len(s) - np.searchsorted(np.sort(s), candidates, side="left")
    y_by_score = y[np.argsort(-s, kind="mergesort")]
    caught = np.concatenate([[0], np.cumsum(y_by_score)])[flagged]
    precision = caught / np.maximum(flagged, 1)
    positives = int(y.sum())
    recall = caught / positives if positives else np.zeros(len(candidates))

    share_cap = threshold_for_share(s, targets.decline_max_share)
    meets = precision >= targets.decline_precision
    decline = max(float(candidates[meets][-1]), share_cap) if meets.any() else share_cap

    review_cap = threshold_for_share(s, targets.review_max_share)
    reaches = recall >= targets.review_recall
    by_recall = float(candidates[reaches][0]) if reaches.any() else -math.inf
    review = min(max(by_recall, review_cap), decline)
    achieved = {
        **{f"decline_{k}": v for k, v in _flag_stats(y, s, decline).items()},
        **{f"review_or_decline_{k}": v for k, v in _flag_stats(y, s, review).items()},
    }
    # Judged on what the final thresholds achieve, after the caps.
    return Thresholds(
        review=review,
        decline=decline,
        decline_precision_met=bool(
            achieved["decline_precision"] >= targets.decline_precision - 1e-12),
        review_recall_met=bool(
            achieved["review_or_decline_recall"] >= targets.review_recall - 1e-12),
        achieved=achieved,
        targets=asdict(targets),
    )


# --- Evaluation frames and plots ------------------------------------------------------


def evaluation_frame(frame: pd.DataFrame, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """The columns metrics need (label, card, day) plus one column per named score."""
    out = pd.DataFrame(
        {
            "is_fraud": frame["is_fraud"].to_numpy(),
            "card_id": frame["card_id"].to_numpy(),
            "day": frame["transaction_timestamp"].dt.strftime("%Y-%m-%d").to_numpy(),
        }
    )
    for name, values in scores.items():
        out[name] = np.asarray(values, dtype=np.float64)
    return out


def plot_curves(
    y_true: np.ndarray,
    scores: dict[str, np.ndarray],
    out_dir: Path,
    importance: dict[str, float] | None = None,
    probabilities: dict[str, np.ndarray] | None = None,
    thresholds: Thresholds | None = None,
    top_features: int = 25,
) -> dict[str, Path]:
    """PR, ROC and calibration curves of each score, and the model's feature importance,
    as PNG files in ``out_dir``.

    Args:
        y_true: Labels of the evaluation window.
        scores: Named scores to draw (the model and the baseline).
        importance: Gain per feature, drawn as a bar chart when given.
        probabilities: Named probabilities for the calibration plot (``scores`` if None).
        thresholds: Marked on the model's PR curve when given.

    Returns:
        Plot name to file path.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    y = np.asarray(y_true)
    figures = {
        "pr_curve": _pr_figure(y, scores, thresholds),
        "roc_curve": _roc_figure(y, scores),
        "calibration": _calibration_figure(y, probabilities or scores),
    }
    if importance:
        figures["feature_importance"] = _importance_figure(importance, top_features)
    paths: dict[str, Path] = {}
    for name, fig in figures.items():
        paths[name] = out_dir / f"{name}.png"
        fig.savefig(paths[name], dpi=110, bbox_inches="tight")
    return paths


def _pr_figure(y: np.ndarray, scores: dict[str, np.ndarray],
               thresholds: Thresholds | None) -> Figure:
    from matplotlib.figure import Figure
    from sklearn.metrics import precision_recall_curve

    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    for name, s in scores.items():
        precision, recall, _ = precision_recall_curve(y, s)
        ax.step(recall, precision, where="post",
                label=f"{name} (AP {metrics.average_precision(y, s):.3f})")
    if thresholds is not None:
        first = next(iter(scores.values()))
        for label, t in (("review", thresholds.review), ("decline", thresholds.decline)):
            stats = _flag_stats(y, np.asarray(first, dtype=float), t)
            if not math.isnan(stats["precision"]):
                ax.plot(stats["recall"], stats["precision"], "o", label=f"{label} threshold")
    ax.axhline(y.mean(), color="grey", linestyle=":", label=f"fraud rate {y.mean():.4f}")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test window)",
           xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper right", fontsize=8)
    return fig


def _roc_figure(y: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_curve

    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {metrics.roc_auc(y, s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.axvline(0.01, color="grey", linestyle="--", linewidth=0.8, label="1% FPR")
    ax.set(xlabel="false-positive rate", ylabel="recall", title="ROC (test window)")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _calibration_figure(y: np.ndarray, probabilities: dict[str, np.ndarray]) -> Figure:
    from matplotlib.figure import Figure
    from sklearn.calibration import calibration_curve

    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    for name, p in probabilities.items():
        p = np.clip(np.asarray(p, dtype=float), 0, 1)
        observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(predicted, observed, "o-", label=f"{name} (Brier {metrics.brier(y, p):.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="predicted probability", ylabel="observed fraud rate",
           title="Calibration (test window, quantile bins)", xscale="symlog",
           yscale="symlog")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def _importance_figure(importance: dict[str, float], top_features: int) -> Figure:
    from matplotlib.figure import Figure

    top = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:top_features]
    fig = Figure(figsize=(7, max(3.0, 0.28 * len(top) + 1)))
    ax = fig.add_subplot()
    ax.barh([name for name, _ in reversed(top)], [value for _, value in reversed(top)])
    ax.set(xlabel="total gain", title="Feature importance (XGBoost gain)")
    ax.tick_params(axis="y", labelsize=7)
    return fig
