"""Evaluation plots: PR, ROC and calibration curves and the model's feature importance,
drawn without a display (matplotlib's ``Figure``, imported when a plot is drawn)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from training_pipeline import metrics
from training_pipeline.thresholds import Thresholds, flag_stats

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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


def _pr_figure(
    y: np.ndarray, scores: dict[str, np.ndarray], thresholds: Thresholds | None
) -> Figure:
    from matplotlib.figure import Figure
    from sklearn.metrics import precision_recall_curve

    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    for name, s in scores.items():
        precision, recall, _ = precision_recall_curve(y, s)
        ax.step(
            recall,
            precision,
            where="post",
            label=f"{name} (AP {metrics.average_precision(y, s):.3f})",
        )
    if thresholds is not None:
        first = next(iter(scores.values()))
        for label, t in (("review", thresholds.review), ("decline", thresholds.decline)):
            stats = flag_stats(y, np.asarray(first, dtype=float), t)
            if not math.isnan(stats["precision"]):
                ax.plot(stats["recall"], stats["precision"], "o", label=f"{label} threshold")
    ax.axhline(y.mean(), color="grey", linestyle=":", label=f"fraud rate {y.mean():.4f}")
    ax.set(
        xlabel="recall",
        ylabel="precision",
        title="Precision-recall (test window)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
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
    ax.set(
        xlabel="predicted probability",
        ylabel="observed fraud rate",
        title="Calibration (test window, quantile bins)",
        xscale="symlog",
        yscale="symlog",
    )
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
