"""The decision rule, shared by training (which chooses the thresholds for it) and scoring
(which applies them): one copy, so a served decision is the one the model was tuned for."""

from __future__ import annotations

from typing import Literal

import numpy as np

Decision = Literal["approve", "review", "decline"]


def decide(probability: float, review: float, decline: float) -> Decision:
    """``decline`` at or above the decline threshold, ``review`` at or above the review
    threshold, else ``approve``."""
    if probability >= decline:
        return "decline"
    return "review" if probability >= review else "approve"


def decide_all(scores: np.ndarray, review: float, decline: float) -> np.ndarray:
    """:func:`decide` for an array of scores, vectorized."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.where(scores >= decline, "decline", np.where(scores >= review, "review", "approve"))
