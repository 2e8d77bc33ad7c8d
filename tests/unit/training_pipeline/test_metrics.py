"""Metrics, thresholds and time splits on tiny inputs, against hand-computed values."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from training_pipeline import metrics
from training_pipeline.evaluate import (
    TimeSplit,
    prequential_splits,
    window_rows,
    windows_ending,
)
from training_pipeline.thresholds import ThresholdTargets, choose_thresholds, threshold_for_share
from training_pipeline.train import AmountRule, model_features

# Four rows: ranked 0.8 (fraud), 0.4 (genuine), 0.35 (fraud), 0.1 (genuine).
Y4 = [0, 0, 1, 1]
S4 = [0.1, 0.4, 0.35, 0.8]


def test_roc_auc_counts_correctly_ordered_pairs() -> None:
    # Pairs (fraud, genuine): (0.35, 0.1) ok, (0.35, 0.4) wrong, (0.8, *) ok: 3 of 4.
    assert metrics.roc_auc(Y4, S4) == pytest.approx(0.75)


def test_roc_auc_is_nan_with_one_class() -> None:
    assert math.isnan(metrics.roc_auc([0, 0], [0.1, 0.2]))


def test_average_precision_is_the_mean_precision_at_each_fraud() -> None:
    # Fraud at rank 1 (precision 1/1) and rank 3 (precision 2/3): (1 + 2/3) / 2.
    assert metrics.average_precision(Y4, S4) == pytest.approx((1 + 2 / 3) / 2)


def test_recall_at_fpr_uses_only_thresholds_within_the_rate() -> None:
    negatives = [i / 100 for i in range(100)]  # 0.00 .. 0.99
    positives = [2.0, 1.5, 0.985, 0.5]
    y = [0] * 100 + [1] * 4
    s = negatives + positives
    # Threshold 0.985 flags three frauds and one genuine (0.99): FPR 1%, recall 3/4.
    # Threshold 0.98 would flag a second genuine (FPR 2%).
    assert metrics.recall_at_fpr(y, s, max_fpr=0.01) == pytest.approx(0.75)
    # No false positive allowed: only 2.0 and 1.5 are above every genuine score.
    assert metrics.recall_at_fpr(y, s, max_fpr=0.0) == pytest.approx(0.5)


def test_recall_at_fpr_counts_ties_as_flagged_together() -> None:
    # The fraud ties with the only genuine row: flagging it costs a 100% FPR.
    assert metrics.recall_at_fpr([0, 1], [0.5, 0.5], max_fpr=0.01) == 0.0


def test_brier_is_the_mean_squared_error() -> None:
    assert metrics.brier([0, 1], [0.2, 0.6]) == pytest.approx((0.2**2 + 0.4**2) / 2)


def test_nan_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        metrics.roc_auc([0, 1], [0.1, float("nan")])


def card_day_frame() -> pd.DataFrame:
    rows = [
        # day 1: A is compromised (its second transaction), B is not, C is.
        ("d1", "A", 0.9, 0),
        ("d1", "A", 0.1, 1),
        ("d1", "B", 0.8, 0),
        ("d1", "C", 0.7, 1),
        # day 2: D and E compromised, F not.
        ("d2", "D", 0.95, 1),
        ("d2", "E", 0.5, 1),
        ("d2", "F", 0.1, 0),
        # day 3: one card only, genuine.
        ("d3", "G", 0.99, 0),
    ]
    return pd.DataFrame(rows, columns=["day", "card_id", "score", "is_fraud"])


def test_card_precision_at_k_per_day() -> None:
    frame = card_day_frame()
    # Day 1: top 2 cards by max score are A (0.9, compromised) and B (0.8): 1/2.
    # Day 2: D and E, both compromised: 2/2. Day 3: one card, genuine: 0/1.
    assert metrics.card_precision_at_k(frame, k=2) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    # k = 1: A, D, G.
    assert metrics.card_precision_at_k(frame, k=1) == pytest.approx((1 + 1 + 0) / 3)
    # k larger than any day: every card of the day is an alert.
    assert metrics.card_precision_at_k(frame, k=10) == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)


def test_card_precision_breaks_ties_by_card_id() -> None:
    frame = pd.DataFrame(
        {"day": ["d1", "d1"], "card_id": ["Z", "A"], "score": [0.5, 0.5], "is_fraud": [0, 1]}
    )
    assert metrics.card_precision_at_k(frame, k=1) == 1.0


def test_metric_table_names_its_metrics() -> None:
    frame = card_day_frame().assign(probability=lambda f: f["score"].clip(0, 1))
    table = metrics.metric_table(frame, "score", "probability", k=2)
    assert set(table) == {
        "roc_auc",
        "average_precision",
        "recall_at_0.01_fpr",
        "card_precision_at_2",
        "brier",
    }
    assert table["card_precision_at_2"] == pytest.approx(0.5)


def test_json_safe_turns_nan_into_none() -> None:
    assert metrics.json_safe({"a": float("nan"), "b": [np.float32(0.5), np.int64(2)]}) == {
        "a": None,
        "b": [0.5, 2],
    }


# --- Thresholds -------------------------------------------------------------------------

# Ranked: F F G F G G G G G G (F fraud, G genuine).
YV = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
SV = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])


def test_threshold_for_share_never_exceeds_the_share() -> None:
    assert threshold_for_share(SV, 0.2) == 0.9  # flags 2 of 10
    assert threshold_for_share(SV, 0.25) == 0.9  # 2.5 rows: still 2
    tied = np.array([0.9, 0.9, 0.5, 0.1])
    assert threshold_for_share(tied, 0.5) == 0.9  # the tie flags 2 of 4
    above_all = threshold_for_share(tied, 0.25)  # 1 row allowed, the tie is 2
    assert above_all > 0.9 and (tied >= above_all).sum() == 0


def test_decline_is_the_lowest_threshold_at_target_precision() -> None:
    t = choose_thresholds(
        YV,
        SV,
        ThresholdTargets(
            decline_precision=0.9, decline_max_share=0.2, review_recall=1.0, review_max_share=0.5
        ),
    )
    # Precision: 0.95 -> 1, 0.9 -> 2/2, 0.85 -> 2/3: the lowest at >= 0.9 is 0.9.
    assert t.decline == 0.9 and t.decline_precision_met
    # Recall 3/3 first at 0.8 (flags 4 rows, within the 5-row cap).
    assert t.review == 0.8 and t.review_recall_met
    assert t.achieved["decline_precision"] == 1.0
    assert t.achieved["decline_recall"] == pytest.approx(2 / 3)
    assert t.achieved["review_or_decline_recall"] == 1.0
    assert t.achieved["review_or_decline_share"] == pytest.approx(0.4)
    assert list(t.decide(np.array([0.99, 0.9, 0.85, 0.8, 0.1]))) == [
        "decline",
        "decline",
        "review",
        "review",
        "approve",
    ]


def test_caps_raise_the_thresholds() -> None:
    t = choose_thresholds(
        YV,
        SV,
        ThresholdTargets(
            decline_precision=0.9, decline_max_share=0.1, review_recall=1.0, review_max_share=0.3
        ),
    )
    assert t.decline == 0.95  # one row at most
    assert t.review == 0.85  # three rows at most: recall 2/3 only
    assert not t.review_recall_met
    assert t.achieved["review_or_decline_recall"] == pytest.approx(2 / 3)


def test_unreachable_precision_falls_back_to_the_share_cap() -> None:
    y = np.array([0, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    t = choose_thresholds(y, SV, ThresholdTargets(decline_precision=0.9, decline_max_share=0.2))
    assert not t.decline_precision_met
    assert t.decline == 0.9  # the top 20%
    assert t.review <= t.decline


# --- Time splits ---------------------------------------------------------------------


def test_split_from_days_has_the_label_delay_as_gap() -> None:
    split = TimeSplit.from_days(
        date(2026, 9, 1),
        date(2026, 9, 20),
        date(2026, 9, 28),
        date(2026, 10, 4),
        validation_days=3,
        min_gap=timedelta(days=7),
    )
    utc = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    assert split.train_start == utc(2026, 9, 1)
    assert split.validation_start == utc(2026, 9, 18)
    assert split.train_end == utc(2026, 9, 21)  # end day included
    assert split.test_start == utc(2026, 9, 28)
    assert split.test_end == utc(2026, 10, 5)
    assert split.gap == timedelta(days=7)
    assert split.label_cutoff == split.test_start


def test_a_gap_shorter_than_the_label_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="label delay"):
        TimeSplit.from_days(
            date(2026, 9, 1),
            date(2026, 9, 20),
            date(2026, 9, 27),
            date(2026, 10, 4),
            min_gap=timedelta(days=7),
        )


def time_split(
    cutoff: date, train_days: int, test_days: int, label_delay: timedelta = timedelta(days=7)
) -> TimeSplit:
    """The split of a model trained at midnight of ``cutoff``."""
    last = cutoff + timedelta(days=test_days - 1)
    days = windows_ending(last, test_days, label_delay, train_days=train_days)
    return TimeSplit.from_days(**days, validation_days=3, min_gap=label_delay)


def test_time_split_from_a_cutoff() -> None:
    split = time_split(date(2026, 10, 1), train_days=14, test_days=7, label_delay=timedelta(days=7))
    assert split.train_start == datetime(2026, 9, 10, tzinfo=UTC)
    assert split.train_end == datetime(2026, 9, 24, tzinfo=UTC)
    assert split.train_end - split.train_start == timedelta(days=14)
    assert split.gap == timedelta(days=7)
    assert split.test_start == datetime(2026, 10, 1, tzinfo=UTC)
    assert split.test_end == datetime(2026, 10, 8, tzinfo=UTC)
    # A delay in hours is rounded up to whole days.
    assert time_split(
        date(2026, 10, 1), 14, 7, label_delay=timedelta(days=6, hours=1)
    ).gap == timedelta(days=7)


def test_prequential_folds_are_earlier_copies_of_the_split() -> None:
    split = time_split(date(2026, 10, 15), train_days=14, test_days=7)
    folds = prequential_splits(split, folds=2)
    assert [f.test_start.date() for f in folds] == [date(2026, 10, 1), date(2026, 10, 8)]
    assert all(f.gap == split.gap and f.train_end <= f.test_start for f in folds)
    assert folds[-1].test_end == split.test_start


def test_a_window_is_half_open() -> None:
    ts = pd.to_datetime(
        [
            "2026-09-30T23:59:59Z",
            "2026-10-01T00:00:00Z",
            "2026-10-07T23:59:59.999999Z",
            "2026-10-08T00:00:00Z",
        ],
        utc=True,
        format="ISO8601",
    )
    frame = pd.DataFrame({"transaction_timestamp": ts, "i": range(4)})
    kept = window_rows(frame, datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 8, tzinfo=UTC))
    assert list(kept) == [1, 2]


# --- Baseline and feature order ------------------------------------------------------


def test_amount_rule_fits_the_best_f1_threshold() -> None:
    amount = np.array([10.0, 20.0, 500.0, 600.0, 30.0, 500.0])
    y = np.array([0, 0, 1, 1, 0, 1])
    rule = AmountRule.fit(amount, y)
    assert rule.threshold == 500.0
    assert (rule.p_above, rule.p_below) == (1.0, 0.0)
    assert list(rule.probability(np.array([499.0, 500.0]))) == [0.0, 1.0]


def test_model_features_drop_absolute_instants_and_keep_the_service_order() -> None:
    service = [
        "card__txn_count_1h",
        "card__last_txn_timestamp",
        "profile__issue_timestamp",
        "profile__credit_limit",
        "request__card_age_days",
    ]
    assert model_features(service) == [
        "card__txn_count_1h",
        "profile__credit_limit",
        "request__card_age_days",
    ]


def test_windows_ending_leave_the_label_delay_out_of_training() -> None:
    days = windows_ending(date(2026, 10, 28), 7, timedelta(days=7), train_days=28)
    assert days == {
        "train_start": date(2026, 9, 17),
        "train_end": date(2026, 10, 14),
        "test_start": date(2026, 10, 22),
        "test_end": date(2026, 10, 28),
    }
    started = windows_ending(
        date(2026, 10, 28), 2, timedelta(hours=36), first_train_day=date(2026, 10, 1)
    )
    assert (started["train_start"], started["train_end"]) == (date(2026, 10, 1), date(2026, 10, 24))
    with pytest.raises(ValueError, match="exactly one"):
        windows_ending(date(2026, 10, 28), 2)
