"""Boosting on a share of the genuine rows: every fraud read, the classes still balanced,
the validation window untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training_pipeline.train import XGBConfig, sampled, train_xgboost


def _frame(rows: int, frauds: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = np.zeros(rows, dtype=int)
    label[rng.choice(rows, frauds, replace=False)] = 1
    # A feature that separates the classes, and one that is noise.
    return pd.DataFrame(
        {
            "amount": rng.normal(50, 10, rows) + 200 * label,
            "noise": rng.normal(size=rows),
            "is_fraud": label,
        }
    )


def test_every_fraud_and_the_share_of_genuine_rows_are_read() -> None:
    frame = _frame(20_000, 200, seed=1)
    kept = sampled(frame, XGBConfig(genuine_fraction=0.25))
    assert int(kept["is_fraud"].sum()) == 200
    genuine = int((kept["is_fraud"] == 0).sum())
    assert 0.23 * 19_800 < genuine < 0.27 * 19_800
    # Drawn with the config's seed: the same rows each run.
    assert kept.index.equals(sampled(frame, XGBConfig(genuine_fraction=0.25)).index)
    assert sampled(frame, XGBConfig()) is frame


@pytest.mark.parametrize("fraction", [1.0, 0.25])
def test_the_classes_weigh_the_same_and_validation_is_whole(fraction: float) -> None:
    train, validation = _frame(8_000, 80, seed=2), _frame(3_000, 30, seed=3)
    config = XGBConfig(genuine_fraction=fraction, num_boost_round=20, early_stopping_rounds=5)
    booster, info = train_xgboost(train, validation, ["amount", "noise"], config)
    assert info["train_frauds"] == 80
    assert info["scale_pos_weight"] == (info["train_rows"] - 80) / 80
    assert info["validation_rows"] == 3_000
    if fraction < 1.0:
        assert info["train_rows"] < 0.3 * 8_000
    assert info["best_validation_aucpr"] > 0.9
