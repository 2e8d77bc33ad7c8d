"""Decision thresholds: the review and decline scores chosen on the validation window to
meet precision, recall and capacity targets."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fraud_platform.decision import decide_all
from training_pipeline import metrics


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


def flag_stats(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    """Share of rows flagged at ``threshold``, and the precision and recall of the flag."""
    flagged = s >= threshold
    n_flagged = int(flagged.sum())
    positives = int(y.sum())
    caught = int((flagged & (y == 1)).sum())
    return {
        "share": n_flagged / len(y) if len(y) else math.nan,
        "precision": caught / n_flagged if n_flagged else math.nan,
        "recall": caught / positives if positives else math.nan,
    }


def choose_thresholds(
    y_true: np.ndarray, score: np.ndarray, targets: ThresholdTargets | None = None
) -> Thresholds:
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
        **{f"decline_{k}": v for k, v in flag_stats(y, s, decline).items()},
        **{f"review_or_decline_{k}": v for k, v in flag_stats(y, s, review).items()},
    }
    # Judged on what the final thresholds achieve, after the caps.
    return Thresholds(
        review=review,
        decline=decline,
        decline_precision_met=bool(
            achieved["decline_precision"] >= targets.decline_precision - 1e-12
        ),
        review_recall_met=bool(
            achieved["review_or_decline_recall"] >= targets.review_recall - 1e-12
        ),
        achieved=achieved,
        targets=asdict(targets),
    )
