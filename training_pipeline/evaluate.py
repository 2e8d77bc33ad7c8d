"""Evaluation windows: time-based splits, the windows of a scheduled run, and the frame
metrics are computed on (thresholds: ``training_pipeline.thresholds``; plots:
``training_pipeline.plots``).

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

import numpy as np
import pandas as pd

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
        if not (
            self.train_start
            < self.validation_start
            < self.train_end
            <= self.test_start
            < self.test_end
        ):
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


def windows_ending(
    last_test_day: date,
    test_days: int,
    label_delay: timedelta = DEFAULT_LABEL_DELAY,
    *,
    train_days: int | None = None,
    first_train_day: date | None = None,
) -> dict[str, date]:
    """The days of a model trained as of its test window's first midnight.

    The test window is the ``test_days`` days that end on ``last_test_day``; training ends
    ``label_delay`` (rounded up to whole days) and a day before it, since those days'
    labels are not known at the cutoff, and covers ``train_days`` days or starts on
    ``first_train_day``. The one copy of this arithmetic: the training DAG and the demo
    use it.

    Returns:
        ``train_start``, ``train_end``, ``test_start``, ``test_end`` (days, included).
    """
    if (train_days is None) == (first_train_day is None):
        raise ValueError("give exactly one of train_days and first_train_day")
    test_start = last_test_day - timedelta(days=test_days - 1)
    gap_days = math.ceil(label_delay / timedelta(days=1))
    train_end = test_start - timedelta(days=gap_days + 1)
    train_start = first_train_day or train_end - timedelta(days=(train_days or 1) - 1)
    return {
        "train_start": train_start,
        "train_end": train_end,
        "test_start": test_start,
        "test_end": last_test_day,
    }


def shifted(split: TimeSplit, delta: timedelta) -> TimeSplit:
    """The same split moved by ``delta`` (negative: earlier)."""
    return TimeSplit(
        split.train_start + delta,
        split.validation_start + delta,
        split.train_end + delta,
        split.test_start + delta,
        split.test_end + delta,
    )


def prequential_splits(
    split: TimeSplit, folds: int, step: timedelta | None = None
) -> list[TimeSplit]:
    """``folds`` earlier splits of the same shape, oldest first, each ``step`` (the test
    window's length by default) before the next: the model as it would have been
    retrained and used over time, evaluated fold after fold."""
    step = step or (split.test_end - split.test_start)
    return [shifted(split, -step * i) for i in range(folds, 0, -1)]


def window_rows(
    frame: pd.DataFrame, start: datetime, end: datetime, column: str = "transaction_timestamp"
) -> np.ndarray:
    """Positions of the rows whose transaction time lies in ``[start, end)`` (positions,
    not a copy: the caller takes each window from the frame once)."""
    ts = frame[column]
    return np.flatnonzero(((ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end))).to_numpy())


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
