"""The drift report's comparison: a day with planted drift is flagged, an ordinary day
is not. Evidently runs for real on frames shaped like the model's vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inference_pipeline.drift import SCORE, DriftSettings, add_label_metrics, compare

FEATURES = [
    "amount_mean_30d",
    "amount_max_30d",
    "last_amount",
    "txn_count_24h",
    "seconds_since_last_txn",
    "merchant_fraud_rate_30d",
    "distance_from_home_km",
]


def _day(rows: int, seed: int) -> pd.DataFrame:
    """Vectors drawn from fixed distributions, scored by a fixed function of them."""
    rng = np.random.default_rng(seed)
    mean = rng.lognormal(3.5, 0.8, rows)
    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{seed}-{i}" for i in range(rows)],
            "amount_mean_30d": mean,
            "amount_max_30d": mean * rng.uniform(1.5, 4.0, rows),
            "last_amount": rng.lognormal(3.5, 1.0, rows),
            "txn_count_24h": rng.poisson(3, rows).astype(float),
            "seconds_since_last_txn": rng.exponential(20_000, rows),
            "merchant_fraud_rate_30d": rng.beta(1, 200, rows),
            "distance_from_home_km": rng.exponential(15, rows),
        }
    )
    frame[SCORE] = _score(frame)
    return frame


def _score(frame: pd.DataFrame) -> np.ndarray:
    logit = (
        -6
        + 0.4 * np.log1p(frame["last_amount"])
        + 0.2 * frame["txn_count_24h"]
        + 80 * frame["merchant_fraud_rate_30d"]
    )
    return 1 / (1 + np.exp(-logit.to_numpy()))


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return _day(5000, seed=1)


def test_an_ordinary_day_is_not_flagged(reference: pd.DataFrame) -> None:
    result, snapshot = compare(reference, _day(2000, seed=2), FEATURES)
    assert result.alerts == []
    assert result.drifted_features == []
    assert set(result.feature_drift) == set(FEATURES)
    assert max(result.feature_drift.values()) < 0.05
    assert result.score_drift is not None and result.score_drift < 0.05
    assert result.missing_share == dict.fromkeys(FEATURES, 0.0)
    assert snapshot.dict()["metrics"]


def test_amounts_tripled_and_a_feature_gone_are_flagged(reference: pd.DataFrame) -> None:
    day = _day(2000, seed=3)
    for column in ("amount_mean_30d", "amount_max_30d", "last_amount"):
        day[column] *= 3
    day["distance_from_home_km"] = np.nan
    day[SCORE] = _score(day)
    result, _ = compare(reference, day, FEATURES)
    assert result.drifted_features == ["amount_max_30d", "amount_mean_30d", "last_amount"]
    assert result.drifted_share == pytest.approx(3 / 7)
    assert result.missing_share["distance_from_home_km"] == 1.0
    assert "distance_from_home_km" not in result.feature_drift  # not testable, reported
    assert result.score_drift > 0.2
    assert len(result.alerts) == 3
    assert result.alerts[0].startswith("43% of features drifted (amount_max_30d")
    assert result.alerts[1] == "distance_from_home_km missing in 100% of rows (training: 0%)"
    assert result.alerts[2].startswith("score distribution drifted (psi ")
    row = result.metrics_row()
    assert row["drift__last_amount"] > 0.2 and row["missing__distance_from_home_km"] == 1.0


def test_thresholds_come_from_one_place(reference: pd.DataFrame, monkeypatch) -> None:
    day = _day(2000, seed=4)
    day["last_amount"] *= 3
    day[SCORE] = _score(day)
    assert compare(reference, day, FEATURES)[0].alerts[0].startswith("score distribution")
    monkeypatch.setenv("FRAUD_DRIFT_FLAG_SCORE_DRIFT", "false")
    monkeypatch.setenv("FRAUD_DRIFT_MAX_DRIFTED_SHARE", "0.1")
    result, _ = compare(reference, day, FEATURES, DriftSettings())
    assert result.alerts == ["14% of features drifted (last_amount)"]


def test_labels_give_ap_and_recall_at_the_review_threshold() -> None:
    day = pd.DataFrame(
        {"transaction_id": [f"t{i}" for i in range(100)], SCORE: np.linspace(0, 1, 100)}
    )
    # Frauds are the 30 highest scores but for five low ones: recall at 0.5 is 25/30.
    frauds = [f"t{i}" for i in range(75, 100)] + [f"t{i}" for i in range(5)]
    labels = pd.DataFrame(
        {
            "transaction_id": day["transaction_id"],
            "is_fraud": day["transaction_id"].isin(frauds).astype(int),
        }
    )
    result, _ = compare(day.assign(x=1.0), day.assign(x=1.0), ["x"])
    add_label_metrics(result, day, labels, review_threshold=0.5, settings=DriftSettings())
    assert result.labelled_frauds == 30
    assert result.recall_at_review == pytest.approx(25 / 30)
    assert 0.7 < result.average_precision < 1.0
    assert result.alerts == []
    add_label_metrics(result, day, labels, 0.5, DriftSettings(min_recall=0.9))
    assert result.alerts == ["recall at the review threshold 83% < 90% (30 labelled frauds)"]
