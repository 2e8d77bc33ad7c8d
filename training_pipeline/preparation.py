"""The point-in-time training set of a split, cut into its fit, validation and test rows,
each with its label as known when the row is used."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraud_platform.feast_repo import open_store
from fraud_platform.settings import S3Settings
from training_pipeline import dataset, evaluate, progress, train
from training_pipeline.evaluate import TimeSplit
from training_pipeline.preflight import ConfigurationError

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)


@dataclass
class SplitFrames:
    """The rows of one split, each with its label as known when it is used."""

    fit: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def known_labels(
    frame: pd.DataFrame, rows: np.ndarray, known_at: datetime | None, s3: S3Settings | None
) -> pd.DataFrame | None:
    """The labels known at ``known_at`` that may belong to the rows at ``rows`` (None: use
    the frame's own labels)."""
    if known_at is None or len(rows) == 0:
        return None
    since = frame[dataset.REQUEST_TIMESTAMP].iloc[rows].min().date()
    return dataset.read_labels(known_at, since=since, s3=s3)


def labelled_positions(
    frame: pd.DataFrame, rows: np.ndarray, labels: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The positions among ``rows`` of the rows ``labels`` label, and where each one's
    label is in ``labels`` (None if ``labels`` is None: every row, with its own label)."""
    if labels is None:
        return rows, None
    at = pd.Index(labels[dataset.ROW_ID]).get_indexer(frame[dataset.ROW_ID].iloc[rows])
    return rows[at >= 0], at[at >= 0]


def with_labels(
    window: pd.DataFrame, labels: pd.DataFrame | None, found: np.ndarray | None
) -> pd.DataFrame:
    """``window`` indexed from 0, with the labels at ``found`` in ``labels`` if given.

    The training set holds features for transactions labelled by some later time; a
    training window must only see the labels known at its cutoff. Each window is taken
    from it once and its labels set by position: a merge would copy every feature column
    of the window twice more (at the 10M-transaction scale, about 4 GB a copy).
    """
    window.index = pd.RangeIndex(len(window))
    if labels is not None:
        for column in ("is_fraud", "label_timestamp"):
            window[column] = labels[column].take(found).set_axis(window.index)
    return window


def moved_rows(frame: pd.DataFrame, windows: list[np.ndarray]) -> list[pd.DataFrame]:
    """The rows at each of ``windows``, taken column by column, each column removed from
    ``frame`` once taken: the windows hold (nearly) every row, and taking them whole would
    hold two copies of the training set at once (about 5 GB at the 10M-transaction scale)."""
    taken: list[dict[str, Any]] = [{} for _ in windows]
    for name in list(frame.columns):
        values = frame.pop(name).array
        for columns, rows in zip(taken, windows, strict=True):
            columns[name] = values.take(rows)
        del values
    return [pd.DataFrame(columns, copy=False) for columns in taken]


def split_frames(
    features: pd.DataFrame,
    split: TimeSplit,
    s3: S3Settings | None = None,
    test_labels_known_at: datetime | None = None,
    keep: bool = True,
) -> SplitFrames:
    """Fit, validation and test rows of a split from one feature frame.

    Training rows (fit and validation) carry the labels known at the split's cutoff;
    test rows the labels known at ``test_labels_known_at`` (all labels read if None).
    With ``keep`` False the rows are moved out of ``features``, which is left without
    columns.
    """
    fit = evaluate.window_rows(features, split.train_start, split.validation_start)
    validation = evaluate.window_rows(features, split.validation_start, split.train_end)
    test = evaluate.window_rows(features, split.test_start, split.test_end)
    training_labels = known_labels(
        features, np.concatenate([fit, validation]), split.label_cutoff, s3
    )
    test_labels = known_labels(features, test, test_labels_known_at, s3)
    labels = (training_labels, training_labels, test_labels)
    positions = [
        labelled_positions(features, rows, known)
        for rows, known in zip((fit, validation, test), labels, strict=True)
    ]
    rows = [labelled for labelled, _ in positions]
    taken = [features.take(r) for r in rows] if keep else moved_rows(features, rows)
    windows = [
        with_labels(window, known, found)
        for window, known, (_, found) in zip(taken, labels, positions, strict=True)
    ]
    return SplitFrames(*windows)


def check_windows(frames: SplitFrames) -> None:
    """Each window can train or measure a model: it has frauds, and not only frauds.

    Raises:
        ValueError: a window has no labelled fraud.
        ConfigurationError: a window has frauds only (its genuine labels are not known by
            the cutoff).
    """
    for name, frame in (
        ("fit", frames.fit),
        ("validation", frames.validation),
        ("test", frames.test),
    ):
        if frame.empty or frame["is_fraud"].sum() == 0:
            raise ValueError(f"the {name} window has no labelled fraud: widen the windows")
        if frame["is_fraud"].all():
            # Genuine labels come a settlement window after their transaction, chargebacks
            # sooner: too short a gap leaves a window of frauds only, and early stopping
            # on it stops at the first tree.
            raise ConfigurationError(
                f"the {name} window's {len(frame):,} labelled rows are all frauds: no genuine "
                "label of it is known by the cutoff; leave --label-delay-days at the "
                "settlement window (7 days) and end training that much before the test"
            )


def window_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Rows and labelled frauds of a window."""
    return {"rows": len(frame), "frauds": int(frame["is_fraud"].sum())}


def _labelled_windows(
    splits: list[TimeSplit], known_at: datetime | None, s3: S3Settings
) -> pd.DataFrame:
    """Labelled transactions of every training and test window (not of the gaps)."""
    windows = sorted(
        {(s.train_start, s.train_end) for s in splits}
        | {(s.test_start, s.test_end) for s in splits}
    )
    merged: list[list[datetime]] = []
    for start, end in windows:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    frames = [dataset.labelled_transactions(start, end, known_at, s3) for start, end in merged]
    return pd.concat(frames, ignore_index=True)


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


def labelled_for(
    split: TimeSplit, folds: int = 0, known_at: datetime | None = None, s3: S3Settings | None = None
) -> pd.DataFrame:
    """Labelled transactions of the split's windows (and of its prequential folds)."""
    return _labelled_windows(
        [split, *evaluate.prequential_splits(split, folds)], known_at, s3 or S3Settings()
    )


def prepare(
    split: TimeSplit,
    feature_service: str | None = None,
    folds: int = 0,
    test_labels_known_at: datetime | None = None,
    store: FeatureStore | None = None,
    s3: S3Settings | None = None,
    keep_frame: bool = True,
) -> Prepared:
    """Read the labelled transactions of the split and join the feature service to them.

    With ``keep_frame`` False the windows take the training set's rows and
    ``training_set.frame`` is left without columns (a run that needs no other windows of
    it: the peak memory of a 9M-row training set is one copy instead of two).

    Raises:
        ValueError: a window cannot train or measure a model (see :func:`check_windows`).
    """
    s3 = s3 or S3Settings()
    store = store or open_store()
    with progress.step("labelled transactions (bronze)"):
        labelled = labelled_for(split, folds, test_labels_known_at, s3)
    with progress.step(f"point-in-time join of {len(labelled):,} rows"):
        training_set = dataset.historical_features(store, labelled, feature_service)
    del labelled
    with progress.step("fit, validation and test windows"):
        frames = split_frames(training_set.frame, split, s3, test_labels_known_at, keep=keep_frame)
    check_windows(frames)
    mature_at = split.test_end + split.gap
    if test_labels_known_at is not None:
        mature = test_labels_known_at >= mature_at
    else:
        # The feed is read through the end of its latest label day.
        latest = dataset.latest_label_day(s3)
        mature = latest is not None and evaluate.day_start(latest + timedelta(days=1)) >= mature_at
    prepared = Prepared(
        split, training_set, train.model_features(training_set.features), frames, mature
    )
    if not prepared.test_labels_mature:
        log.warning(
            "the labels read end before %s: the test window's last genuine "
            "transactions are unlabelled and left out, which inflates its fraud "
            "rate; end the test window a label delay earlier",
            split.test_end + split.gap,
        )
    return prepared


def counts(prepared: Prepared) -> dict[str, Any]:
    """Rows of the training set (with and without features) and of each window."""
    return {
        **prepared.training_set.counts,
        "fit": window_counts(prepared.frames.fit),
        "validation": window_counts(prepared.frames.validation),
        "test": window_counts(prepared.frames.test),
        "test_labels_mature": prepared.test_labels_mature,
    }
